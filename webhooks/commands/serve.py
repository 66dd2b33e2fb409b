"""``gate serve`` (receiver + workers), ``gate serve --no-worker`` and ``gate worker``."""

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
    return [
        asyncio.create_task(Worker(service, name=f"{host}-{os.getpid()}-{i}").run(stop))
        for i in range(count)
    ]


async def _stop_workers(
    tasks: list[asyncio.Task[None]], stop: asyncio.Event, grace: float = 20.0
) -> None:
    """Let in-flight jobs finish; cancel (which releases the job) after ``grace``."""
    stop.set()
    _done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def _shutting_down(signum: int, frame: object) -> None:
    """A signal uvicorn already acted on (it stopped serving); shutdown is under way."""


async def _serve(args: argparse.Namespace, settings: Any) -> int:
    import uvicorn

    from webhooks import logs
    from webhooks.app import create_app
    from webhooks.service import build

    logs.configure()
    service = await build(settings)
    app = create_app(service)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    count = 0 if args.no_worker else (args.workers or settings.workers)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop="none",
        http="httptools",
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    # uvicorn catches SIGTERM/SIGINT while serving, then restores the handlers it
    # found and raises the signal again: with the default ones that killed the
    # process before the workers drained and the audit log wrote its final
    # checkpoint. Found the handlers already taken, it re-raises into a no-op.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _shutting_down)
    try:
        tasks = await _workers(service, count, stop)
        await server.serve()
    finally:
        await _stop_workers(tasks, stop)
        await service.close()
    return 0


async def _work(args: argparse.Namespace, settings: Any) -> int:
    from webhooks import logs
    from webhooks.service import build

    logs.configure()
    service = await build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = await _workers(service, args.workers or settings.workers, stop)
    try:
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
