"""The acknowledgement path: the real webhook endpoint against a bare one, per store.

One server subprocess per store runs ``create_app(service)`` under uvicorn exactly
as ``gate serve --no-worker`` does (uvloop, httptools, JSON logs to a file, no
workers), plus a bare Starlette route ``/bare`` that reads the body and answers
202. Both endpoints therefore share process, server settings and run; the only
difference is the work the receiver does: HMAC check, JSON parse, routing, one
log line and the durable ``store.accept``.

Load comes from another process: ``wrk`` (Debian package) for throughput, a small
open-loop asyncio client (``python -m benchmarks.bench_ack load``) for latency at a
fixed 200 requests/s, measured from each request's scheduled send time. Bodies are
GitHub's own ``pull_request.synchronize`` example (~24 kB) for 16 PRs, correctly
signed; every request carries a fresh ``X-GitHub-Delivery`` so none is a duplicate.

Figures: requests/s of each endpoint (median of alternating rounds), their ratio
(goal >= 0.5), p50/p99 latency at 200 req/s. SQLite lives in a temporary directory;
Redis (127.0.0.1:6379) under a throwaway prefix deleted between rounds and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import IO, Any

import httpx

from benchmarks.common import (
    LOOPBACK,
    REDIS_URL,
    WEBHOOK_PATH,
    free_port,
    ms_summary,
    redis_available,
    redis_delete_prefix,
    wait_until,
)

RATE = 200.0
CONNECTIONS = 32
PRS = 16


# --- the server (subprocess) -------------------------------------------------------


async def _serve(port: int, redis_url: str | None, prefix: str) -> None:
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from webhooks import logs
    from webhooks.app import create_app
    from webhooks.service import build
    from webhooks.settings import load
    from webhooks.store import open_store

    logs.configure()  # as `gate serve`: one JSON line per accepted delivery
    settings = load(os.environ)
    service = await build(settings)
    if redis_url:
        # A throwaway prefix, so nothing here can touch another user's queue.
        await service.store.close()
        service.store = await open_store(
            data_dir=settings.data_dir, redis_url=redis_url, prefix=prefix
        )

    async def bare(request: Request) -> Response:
        await request.body()
        return JSONResponse({"message": "accepted"}, status_code=202)

    app = create_app(service)
    app.router.routes.append(Route("/bare", bare, methods=["POST"]))
    config = uvicorn.Config(
        app,
        host=LOOPBACK,
        port=port,
        loop="none",
        http="httptools",
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await service.close()


# --- the fixed-rate client (subprocess) --------------------------------------------


def _request(path: str, port: int, body: bytes, signature: str, delivery: str) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n"
        "Content-Type: application/json\r\nUser-Agent: GitHub-Hookshot/bench\r\n"
        f"X-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {delivery}\r\n"
        f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _fixed_rate(
    *, port: int, path: str, bodies: list[tuple[bytes, str]], rate: float, seconds: float
) -> dict[str, Any]:
    """Open loop: request i is due at start + i/rate whatever happened before."""
    total = int(rate * seconds)
    tag = uuid.uuid4().hex[:12]
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(16):
        pool.put_nowait(await asyncio.open_connection(LOOPBACK, port))
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    loop = asyncio.get_running_loop()

    async def one(i: int, due: float) -> None:
        reader, writer = await pool.get()
        body, signature = bodies[i % len(bodies)]
        try:
            status = await _exchange(
                reader, writer, _request(path, port, body, signature, f"rate-{tag}-{i}")
            )
            statuses[str(status)] += 1
        except (OSError, asyncio.IncompleteReadError):
            statuses["error"] += 1
            writer.close()
            reader, writer = await asyncio.open_connection(LOOPBACK, port)
        finally:
            pool.put_nowait((reader, writer))
        latencies.append(loop.time() - due)

    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    while not pool.empty():
        pool.get_nowait()[1].close()
    return {
        "rate": rate,
        "requests": total,
        "achieved_rate": round(total / max(loop.time() - start, 1e-9), 1),
        "statuses": dict(statuses),
        **ms_summary(latencies),
    }


async def _closed_loop(
    *, port: int, path: str, bodies: list[tuple[bytes, str]], seconds: float, connections: int
) -> dict[str, Any]:
    """Throughput without wrk: ``connections`` clients sending back to back."""
    tag = uuid.uuid4().hex[:12]
    statuses: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    done = 0

    async def client(c: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        i = 0
        while loop.time() < deadline:
            body, signature = bodies[(c + i) % len(bodies)]
            data = _request(path, port, body, signature, f"loop-{tag}-{c}-{i}")
            statuses[str(await _exchange(reader, writer, data))] += 1
            i += 1
            done += 1
        writer.close()

    start = loop.time()
    await asyncio.gather(*(client(c) for c in range(connections)))
    return {"requests_per_second": done / (loop.time() - start), "statuses": dict(statuses)}


def _load_main(args: argparse.Namespace) -> None:
    manifest = json.loads(Path(args.manifest).read_text())
    bodies = [(Path(b["file"]).read_bytes(), b["signature"]) for b in manifest["bodies"]]
    if args.mode == "rate":
        result = asyncio.run(
            _fixed_rate(
                port=args.port, path=args.path, bodies=bodies, rate=args.rate, seconds=args.seconds
            )
        )
    else:
        result = asyncio.run(
            _closed_loop(
                port=args.port,
                path=args.path,
                bodies=bodies,
                seconds=args.seconds,
                connections=args.connections,
            )
        )
    print(json.dumps(result))


# --- the benchmark (parent) --------------------------------------------------------


def _write_bodies(directory: Path) -> Path:
    """Signed ``pull_request.synchronize`` bodies for PRS pull requests, and a manifest."""
    from tests.fakegithub import deliveries
    from tests.harness import SECRET

    items = []
    for number in range(1, PRS + 1):
        payload = deliveries.build(
            "pull_request",
            "synchronize",
            repo="acme/app",
            installation_id=1001,
            number=number,
            head_sha=f"{number:040x}",
        )
        body = deliveries.encode(payload)
        path = directory / f"body{number}.json"
        path.write_bytes(body)
        items.append({"file": str(path), "signature": deliveries.sign(body, SECRET)})
    manifest = directory / "bodies.json"
    manifest.write_text(json.dumps({"bodies": items}))
    return manifest


def _lua_script(manifest: Path, directory: Path) -> Path:
    """A wrk script sending the signed bodies in turn, each with a fresh delivery id."""
    items = json.loads(manifest.read_text())["bodies"]
    level = "=" * 8
    bodies = []
    for item in items:
        text = Path(item["file"]).read_text()
        if f"]{level}]" in text:
            raise ValueError("body contains the Lua long-bracket terminator")
        bodies.append(f"[{level}[{text}]{level}]")
    signatures = ", ".join(json.dumps(item["signature"]) for item in items)
    script = f"""
local bodies = {{ {", ".join(bodies)} }}
local sigs = {{ {signatures} }}
local run = "{uuid.uuid4().hex[:12]}"
local threads = 0
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
wrk.headers["X-GitHub-Event"] = "pull_request"
function setup(thread)
  threads = threads + 1
  thread:set("tid", tostring(threads))
end
request = function()
  counter = counter + 1
  local i = (counter % #bodies) + 1
  wrk.headers["X-GitHub-Delivery"] = run .. "-" .. (tid or "0") .. "-" .. counter
  wrk.headers["X-Hub-Signature-256"] = sigs[i]
  return wrk.format(nil, nil, nil, bodies[i])
end
"""
    path = directory / "webhook.lua"
    path.write_text(script)
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _wrk_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, latency percentiles and errors from ``wrk --latency`` output."""
    result: dict[str, Any] = {"non_2xx": 0, "socket_errors": 0}
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("Requests/sec:"):
            result["requests_per_second"] = float(line.split()[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            result["non_2xx"] = int(line.split(":")[1])
        elif line.startswith("Socket errors:"):
            result["socket_errors"] = sum(int(n) for n in re.findall(r"\d+", line))
        elif re.fullmatch(r"(50|99)(\.0+)?% +[\d.]+\w+", line):
            pct, value = line.split()
            result[f"p{pct.split('%')[0].split('.')[0]}_ms"] = round(_wrk_ms(value), 3)
        elif m := re.match(r"(\d+) requests in ([\d.]+)(\w+)", line):
            result["requests"] = int(m.group(1))
    return result


class _Server:
    """The receiver subprocess for one store."""

    def __init__(self, directory: Path, redis_url: str | None, prefix: str) -> None:
        from tests.fakegithub import auth
        from tests.harness import SECRET

        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
        env.update(
            {
                "GATE_APP_ID": "1",
                "GATE_PRIVATE_KEY": auth.key_pair().private_pem,
                "GATE_WEBHOOK_SECRET": SECRET,
                # Never called: the ack path makes no GitHub request.
                "GATE_GITHUB_API_URL": f"http://{LOOPBACK}:9",
                "GATE_DATA_DIR": str(directory / "data"),
            }
        )
        args = [sys.executable, "-m", "benchmarks.bench_ack", "serve", "--port", str(self.port)]
        if redis_url:
            args += ["--redis-url", redis_url, "--prefix", prefix]
        self.log_path = directory / "server.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=self._log)
        try:
            wait_until(self._up, timeout=60, what="the ack server")
        except BaseException:
            self.close()
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"ack server exited: {self.log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _throughput(
    server: _Server, path: str, manifest: Path, script: Path | None, seconds: float
) -> dict[str, Any]:
    timeout = seconds + 60
    if script is not None:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "--latency",
                "-s",
                str(script),
                server.url + path,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return {"tool": "wrk", **parse_wrk(done.stdout)}
    loop = _load(server, "loop", path, manifest, seconds, "--connections", str(CONNECTIONS))
    return {"tool": "python (client-bound: ratios understate the gap)", **loop}


def _load(
    server: _Server, mode: str, path: str, manifest: Path, seconds: float, *extra: str
) -> dict[str, Any]:
    """Run the asyncio load generator in its own process; its JSON result."""
    args = ["--port", str(server.port), "--path", path, "--manifest", str(manifest)]
    args += ["--mode", mode, "--seconds", str(seconds), *extra]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_ack", "load", *args],
        capture_output=True,
        text=True,
        timeout=seconds + 90,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _at_rate(server: _Server, path: str, manifest: Path, seconds: float) -> dict[str, Any]:
    return _load(server, "rate", path, manifest, seconds, "--rate", str(RATE))


def _one_store(
    store: str, directory: Path, manifest: Path, script: Path | None, quick: bool
) -> dict[str, Any]:
    prefix = f"merge-gate-bench-ack-{uuid.uuid4().hex}"
    redis_url = REDIS_URL if store == "redis" else None
    seconds = 2.0 if quick else 4.0
    rounds = 1 if quick else 3
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "webhook": []}
    paths = {"bare": "/bare", "webhook": WEBHOOK_PATH}

    def reset() -> None:
        if redis_url:
            redis_delete_prefix(prefix)

    try:
        with _Server(directory / store, redis_url, prefix) as server:
            for name in ("bare", "webhook"):  # warm-up: imports, connections, caches
                _throughput(server, paths[name], manifest, script, 1.0)
            reset()
            for _ in range(rounds):  # alternate, so drift hits both alike
                for name in ("bare", "webhook"):
                    runs[name].append(_throughput(server, paths[name], manifest, script, seconds))
                    reset()
            at_rate = {
                name: _at_rate(server, paths[name], manifest, 2.0 if quick else 10.0)
                for name in ("bare", "webhook")
            }
            reset()
    finally:
        reset()
    rps = {
        name: statistics.median(r["requests_per_second"] for r in results)
        for name, results in runs.items()
    }
    return {
        "bare_rps": round(rps["bare"]),
        "webhook_rps": round(rps["webhook"]),
        "ratio": round(rps["webhook"] / rps["bare"], 3),
        "rounds": runs,
        "at_200_rps": at_rate,
        "errors": sum(
            r.get("non_2xx", 0) + r.get("socket_errors", 0) for rs in runs.values() for r in rs
        ),
    }


def run(*, quick: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {
        "connections": CONNECTIONS,
        "body_bytes": None,
        "load_tool": "wrk" if shutil.which("wrk") else "python",
    }
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        directory = Path(tmp)
        manifest = _write_bodies(directory)
        first = json.loads(manifest.read_text())["bodies"][0]["file"]
        results["body_bytes"] = Path(first).stat().st_size
        script = _lua_script(manifest, directory) if shutil.which("wrk") else None
        for store in ("sqlite", "redis"):
            if store == "redis" and not redis_available():
                results[store] = {"skipped": f"no Redis at {REDIS_URL}"}
                continue
            (directory / store).mkdir()
            started = time.monotonic()
            results[store] = _one_store(store, directory, manifest, script, quick)
            results[store]["seconds"] = round(time.monotonic() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_ack")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="(internal) the receiver under test")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--redis-url")
    serve.add_argument("--prefix", default="merge-gate-bench-ack")
    load = sub.add_parser("load", help="(internal) the load generator")
    load.add_argument("--mode", choices=("rate", "loop"), required=True)
    load.add_argument("--port", type=int, required=True)
    load.add_argument("--path", required=True)
    load.add_argument("--manifest", required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--rate", type=float, default=RATE)
    load.add_argument("--connections", type=int, default=CONNECTIONS)
    bench = sub.add_parser("run", help="run the benchmark (the default)")
    bench.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.command == "serve":
        import uvloop

        uvloop.run(_serve(args.port, args.redis_url, args.prefix))
    elif args.command == "load":
        _load_main(args)
    else:
        print(json.dumps(run(quick=getattr(args, "quick", False)), indent=2))


if __name__ == "__main__":
    main()
