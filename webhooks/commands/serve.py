"""``gate serve`` (receiver + workers), ``gate serve --no-worker`` and ``gate worker``.

Both log one start line (version, store, workers, public URL) at ``GATE_LOG_LEVEL``;
``gate worker`` serves ``/metrics`` and ``/healthz`` on ``--metrics-port`` (9090).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from typing import Any


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the webhook receiver (and workers)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--no-worker", action="store_true", help="receiver only")
    serve.add_argument(
        "--workers", type=int, default=None, help="worker tasks (default GATE_WORKERS or 4)"
    )
    serve.set_defaults(func=run_serve)
    worker = subparsers.add_parser("worker", help="run workers only")
    worker.add_argument("--workers", type=int, default=None)
    worker.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of /metrics and /healthz"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=9090,
        help="port of /metrics and /healthz (default 9090; 0: none)",
    )
    worker.set_defaults(func=run_worker)


def _settings() -> Any:
    from webhooks.settings import SettingsError, load

    try:
        return load(os.environ)
    except SettingsError as error:
        print(f"gate: error: cannot start: {error}", file=sys.stderr)
        return None


async def _workers(service: Any, count: int, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    from webhooks.worker import Worker

    host = socket.gethostname()
    tasks = [
        asyncio.create_task(Worker(service, name=f"{host}-{os.getpid()}-{i}").run(stop))
        for i in range(count)
    ]
    # spare workers: only repositories no worker is busy with (webhooks.worker);
    # a receiver without workers (--no-worker) has none either
    tasks += [
        asyncio.create_task(
            Worker(service, name=f"{host}-{os.getpid()}-spare{i}", spare=True).run(stop)
        )
        for i in range(service.settings.spare_workers if count else 0)
    ]
    return tasks


def _started(settings: Any, *, role: str, workers: int, **extra: Any) -> None:
    """One line saying what runs, so a log search answers "which version, which store"."""
    import logging

    from webhooks.metrics import package_version

    logging.getLogger("merge_gate.serve").info(
        "merge-gate started",
        extra={
            "role": role,
            "version": package_version(),
            "store": "redis" if settings.redis else "sqlite",
            "workers": workers,
            "public_url": settings.public_url,
            **extra,
        },
    )


def _uvicorn(app: Any, *, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return uvicorn.Server(config)


def _keep_signals(stop: asyncio.Event) -> None:
    """Python-level SIGTERM/SIGINT handlers that ask the workers to stop.

    uvicorn catches these while it serves, then restores the handlers it found and
    raises the signal again; with the default handlers that killed the process
    before the workers could finish their jobs and the store could close.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))


async def _stop_workers(
    tasks: list[asyncio.Task[None]], stop: asyncio.Event, grace: float = 20.0
) -> None:
    """Let in-flight jobs finish; cancel (which releases the job) after ``grace``."""
    stop.set()
    if not tasks:  # a receiver alone (--no-worker): nothing to wait for
        return
    _done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def _serve(args: argparse.Namespace, settings: Any) -> int:
    from webhooks import logs
    from webhooks.app import create_app
    from webhooks.service import build

    logs.configure(settings.log_level)
    service = await build(settings)
    app = create_app(service)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    count = 0 if args.no_worker else (args.workers or settings.workers)
    server = _uvicorn(app, host=args.host, port=args.port)
    _keep_signals(stop)
    try:
        tasks = await _workers(service, count, stop)
        _started(settings, role="serve", workers=count, port=args.port)
        await server.serve()
    finally:
        await _stop_workers(tasks, stop)
        await service.close()
    return 0


async def _work(args: argparse.Namespace, settings: Any) -> int:
    from webhooks import logs, probes
    from webhooks.service import build

    logs.configure(settings.log_level)
    service = await build(settings)
    stop = asyncio.Event()
    count = args.workers or settings.workers
    tasks = await _workers(service, count, stop)
    _started(settings, role="worker", workers=count, metrics_port=args.metrics_port)
    try:
        if args.metrics_port:
            # uvicorn handles SIGTERM/SIGINT: when it returns, the workers stop.
            app = probes.create_app(service, alive=lambda: not any(t.done() for t in tasks))
            _keep_signals(stop)
            await _uvicorn(app, host=args.metrics_host, port=args.metrics_port).serve()
        else:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        await _stop_workers(tasks, stop)
        await service.close()
    return 0


def _run(coro_factory: Any, args: argparse.Namespace) -> int:
    settings = _settings()
    if settings is None:
        return 2
    import uvloop

    result: int = uvloop.run(coro_factory(args, settings))
    return result


def run_serve(args: argparse.Namespace) -> int:
    return _run(_serve, args)


def run_worker(args: argparse.Namespace) -> int:
    return _run(_work, args)
