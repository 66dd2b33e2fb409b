"""Store benchmark: accept throughput and latency, and evaluations per burst.

Run with ``python -m benchmarks.bench_store``. For each store (SQLite in a
temporary directory, Redis at 127.0.0.1:6379 under a throwaway prefix):

- ``accept_sequential`` / ``accept_concurrent``: accepts per second and p50/p99
  latency of one ``accept``, one caller at a time and 64 at once (the receiver
  under a burst of webhooks);
- ``ack_ratio``: requests per second of a Starlette endpoint that calls
  ``accept`` before answering 202, divided by the same endpoint without it,
  driven in-process through ``httpx.ASGITransport`` (no sockets, so harsher on
  the store than any real server);
- ``ack_ratio_http``: the same through uvicorn on 127.0.0.1 in its own process,
  loaded by a minimal keep-alive HTTP/1.1 client here (32 connections);
- ``burst``: 10 ``synchronize`` deliveries accepted back to back for one pull
  request while a worker claims concurrently (an evaluation takes 50 ms, a
  conservative figure for the several GitHub reads it makes); how
  many evaluations each burst caused, and whether every delivery was handled
  exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from webhooks.store import Delivery, Store, open_store

REDIS_URL = "redis://127.0.0.1:6379"
ROOT = Path(__file__).resolve().parents[1]
#: Throughput comparisons alternate bare and accepting runs this often; medians count.
_ROUNDS = 3

Opener = Callable[[], Awaitable[Store]]


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _delivery(key: str, n: int) -> Delivery:
    return Delivery(
        id=str(uuid.uuid4()),
        event="pull_request",
        action="synchronize",
        key=key,
        body=b'{"action": "synchronize", "number": %d, "pad": "%s"}' % (n, b"x" * 2000),
        received_at=time.time(),
    )


async def _accept_latency(store: Store, *, total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []

    async def caller(worker: int) -> None:
        for n in range(worker, total, concurrency):
            delivery = _delivery(f"pr:bench/repo#{n % 500}", n)
            started = time.perf_counter()
            await store.accept(delivery)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller(worker) for worker in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "accepts": total,
        "concurrency": concurrency,
        "per_second": round(total / elapsed),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 3),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 3),
    }


async def _requests_per_second(app: Starlette, path: str, *, total: int, concurrency: int) -> float:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def caller(worker: int) -> None:
            for n in range(worker, total, concurrency):
                response = await client.post(path, content=b'{"n": %d}' % n)
                assert response.status_code == 202

        started = time.perf_counter()
        await asyncio.gather(*(caller(worker) for worker in range(concurrency)))
        return total / (time.perf_counter() - started)


def _app(store: Store) -> Starlette:
    """``/bare`` answers 202 at once; ``/hook`` first records the body, as the receiver does."""

    async def bare(request: Request) -> Response:
        await request.body()
        return Response(status_code=202)

    async def hook(request: Request) -> Response:
        body = await request.body()
        delivery = Delivery(
            id=str(uuid.uuid4()),
            event="pull_request",
            action="synchronize",
            key="pr:bench/ack#1",
            body=body,
            received_at=time.time(),
        )
        await store.accept(delivery)
        return Response(status_code=202)

    return Starlette(
        routes=[Route("/bare", bare, methods=["POST"]), Route("/hook", hook, methods=["POST"])]
    )


def _ratio(bare_rps: float, hook_rps: float) -> dict[str, float]:
    return {
        "bare_per_second": round(bare_rps),
        "accepting_per_second": round(hook_rps),
        "ratio": round(hook_rps / bare_rps, 3),
    }


async def _ack_ratio(store: Store, *, total: int = 2000, concurrency: int = 32) -> dict[str, float]:
    app = _app(store)
    await _requests_per_second(app, "/bare", total=300, concurrency=concurrency)  # warm-up
    bare: list[float] = []
    hook: list[float] = []
    for _ in range(_ROUNDS):  # alternating, so drifting machine load hits both alike
        bare.append(await _requests_per_second(app, "/bare", total=total, concurrency=concurrency))
        hook.append(await _requests_per_second(app, "/hook", total=total, concurrency=concurrency))
    return _ratio(statistics.median(bare), statistics.median(hook))


async def _serve(*, data_dir: str, redis_url: str, prefix: str, port: int) -> None:
    """The server half of :func:`_ack_ratio_http`, in its own process."""
    store = await open_store(data_dir=Path(data_dir), redis_url=redis_url or None, prefix=prefix)
    config = uvicorn.Config(
        _app(store), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await store.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _http_load(*, port: int, path: str, total: int, concurrency: int) -> float:
    """Requests per second from ``concurrency`` keep-alive connections.

    A bare-bones HTTP/1.1 client (as wrk would be): a Python HTTP client costs
    more per request than the server under test and would measure itself.
    """
    body = b'{"action": "synchronize"}'
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def connection(count: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(count):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 202"), head
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:") and int(line[15:]):
                        await reader.readexactly(int(line[15:]))
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.gather(*(connection(total // concurrency) for _ in range(concurrency)))
    return (total // concurrency * concurrency) / (time.perf_counter() - started)


async def _ack_ratio_http(
    *, data_dir: Path, redis_url: str | None, prefix: str, total: int = 4000, concurrency: int = 32
) -> dict[str, float]:
    """The same comparison through uvicorn on 127.0.0.1 in its own process."""
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.bench_store",
        "--serve",
        str(data_dir),
        redis_url or "",
        prefix,
        str(port),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        for _ in range(200):  # wait for the server to listen
            try:
                await _http_load(port=port, path="/bare", total=1, concurrency=1)
                break
            except OSError:
                await asyncio.sleep(0.05)
        await _http_load(port=port, path="/bare", total=600, concurrency=concurrency)  # warm-up
        bare: list[float] = []
        hook: list[float] = []
        for _ in range(_ROUNDS):
            bare.append(
                await _http_load(port=port, path="/bare", total=total, concurrency=concurrency)
            )
            hook.append(
                await _http_load(port=port, path="/hook", total=total, concurrency=concurrency)
            )
    finally:
        server.terminate()
        await server.wait()
    return _ratio(statistics.median(bare), statistics.median(hook))


async def _bursts(
    store: Store, *, bursts: int = 20, evaluation: float = 0.05, gap: float = 0.0
) -> dict[str, Any]:
    evaluations: dict[str, int] = {}
    handled: dict[str, list[str]] = {}
    stop = asyncio.Event()

    async def worker() -> None:
        while not stop.is_set():
            job = await store.claim(worker="bench-worker", lease_seconds=10.0)
            if job is None:
                await asyncio.sleep(0.001)
                continue
            evaluations[job.key] = evaluations.get(job.key, 0) + 1
            handled.setdefault(job.key, []).extend(d.id for d in job.deliveries)
            await asyncio.sleep(evaluation)  # re-reading the pull request from GitHub
            await store.complete(job)

    task = asyncio.create_task(worker())
    expected: dict[str, list[str]] = {}
    for burst in range(bursts):
        key = f"pr:bench/burst#{burst}"
        expected[key] = []
        for n in range(10):
            delivery = _delivery(key, n)
            expected[key].append(delivery.id)
            await store.accept(delivery)
            if gap:
                await asyncio.sleep(gap)
        while await store.depth() > 0:
            await asyncio.sleep(0.002)
    stop.set()
    await task
    counts = [evaluations.get(key, 0) for key in expected]
    return {
        "bursts": bursts,
        "evaluation_ms": evaluation * 1000,
        "evaluations_mean": round(statistics.mean(counts), 2),
        "evaluations_max": max(counts),
        "exactly_once_in_order": all(handled.get(key) == ids for key, ids in expected.items()),
    }


async def _bench(
    opener: Opener, *, data_dir: Path, redis_url: str | None, prefix: str
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    store = await opener()
    try:
        figures["accept_sequential"] = await _accept_latency(store, total=2000, concurrency=1)
        figures["accept_concurrent"] = await _accept_latency(store, total=5000, concurrency=64)
        figures["ack_ratio"] = await _ack_ratio(store)
    finally:
        await store.close()
    figures["ack_ratio_http"] = await _ack_ratio_http(
        data_dir=data_dir, redis_url=redis_url, prefix=prefix
    )
    store = await opener()  # an empty queue for the bursts
    try:
        figures["burst"] = await _bursts(store)
    finally:
        await store.close()
    return figures


def _redis_reachable() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


async def _run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        runs = 0

        async def sqlite_store() -> Store:
            nonlocal runs
            runs += 1
            return await open_store(data_dir=Path(tmp) / f"run{runs}", redis_url=None)

        results["sqlite"] = await _bench(
            sqlite_store, data_dir=Path(tmp) / "http", redis_url=None, prefix=""
        )

    if not _redis_reachable():
        results["redis"] = {"skipped": f"no Redis at {REDIS_URL}"}
        return results
    prefixes = [f"merge-gate-bench-{uuid.uuid4().hex}"]

    async def redis_store() -> Store:
        prefixes.append(f"merge-gate-bench-{uuid.uuid4().hex}")
        return await open_store(
            data_dir=Path(tempfile.gettempdir()), redis_url=REDIS_URL, prefix=prefixes[-1]
        )

    try:
        results["redis"] = await _bench(
            redis_store,
            data_dir=Path(tempfile.gettempdir()),
            redis_url=REDIS_URL,
            prefix=prefixes[0],
        )
    finally:
        client = aioredis.Redis.from_url(REDIS_URL)
        for prefix in prefixes:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)
        await client.aclose()
    return results


def run() -> dict[str, Any]:
    """Measure both stores; returns the figures and prints a summary."""
    results = asyncio.run(_run())
    for kind, figures in results.items():
        if "skipped" in figures:
            print(f"{kind}: skipped ({figures['skipped']})")
            continue
        for name in ("accept_sequential", "accept_concurrent"):
            f = figures[name]
            print(
                f"{kind:6} {name:18} {f['per_second']:>7}/s  p50 {f['p50_ms']:.3f} ms"
                f"  p99 {f['p99_ms']:.3f} ms  (concurrency {f['concurrency']})"
            )
        for name, how in (("ack_ratio", "in-process ASGI"), ("ack_ratio_http", "uvicorn")):
            ack = figures[name]
            print(
                f"{kind:6} {name:18} {ack['ratio']:.3f}  ({ack['accepting_per_second']}/s"
                f" accepting vs {ack['bare_per_second']}/s bare, {how})"
            )
        burst = figures["burst"]
        print(
            f"{kind:6} burst of 10        {burst['evaluations_mean']} evaluations on average,"
            f" max {burst['evaluations_max']}, exactly once in order: "
            f"{burst['exactly_once_in_order']}"
        )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        data_dir, redis_url, prefix, port = sys.argv[2:6]
        asyncio.run(_serve(data_dir=data_dir, redis_url=redis_url, prefix=prefix, port=int(port)))
    else:
        print(json.dumps(run(), indent=2))
