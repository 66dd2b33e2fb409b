"""A running merge-gate (receiver + workers) on loopback, for end-to-end tests.

The service runs in a thread with its own event loop and a real uvicorn server;
tests talk to it over HTTP like GitHub does, and watch the fake GitHub for its
effects.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tests.fakegithub import deliveries
from tests.fakegithub.server import FakeGitHub
from webhooks.app import create_app
from webhooks.service import Service, build
from webhooks.settings import load
from webhooks.supplychain import ScanUrls

SECRET = "test-webhook-secret-0123456789"


def settings_env(fake: FakeGitHub, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "GATE_APP_ID": str(fake.app_id),
        "GATE_PRIVATE_KEY": fake.app_private_key_pem,
        "GATE_WEBHOOK_SECRET": SECRET,
        "GATE_GITHUB_API_URL": fake.base_url,
        "GATE_PUBLIC_URL": "http://merge-gate.test",
        "GATE_DATA_DIR": str(data_dir),
        "GATE_LEASE_SECONDS": "5",
        # decisions at once: tests wait for the effect of each delivery
        "GATE_DEBOUNCE_SECONDS": "0",
        **extra,
    }


class RunningService:
    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 2,
        scan_urls: ScanUrls | None = None,
        port: int = 0,
    ) -> None:
        self.env = dict(env)
        self.port = port
        self.workers = workers
        self.scan_urls = scan_urls
        self.url = ""
        self.service: Service | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        # One client: building one per request (an SSL context each) costs ~20 ms.
        self.http = httpx.Client(timeout=30)

    def start(self) -> RunningService:
        self._thread.start()
        if not self._ready.wait(30) or self._error:
            raise RuntimeError(f"service did not start: {self._error!r}")
        return self

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:  # surfaced by start()
            self._error = error
            self._ready.set()

    async def _run(self) -> None:
        from webhooks.worker import Worker

        self._loop = asyncio.get_running_loop()
        self.service = await build(load(self.env), scan_urls=self.scan_urls)
        config = uvicorn.Config(
            create_app(self.service),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="none",
        )
        self._server = uvicorn.Server(config)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(Worker(self.service, name=f"w{i}").run(stop, idle=0.02))
            for i in range(self.workers)
        ]
        serving = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        await serving
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.service.close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(20)
        self.http.close()

    def call(self, fn: Callable[[Service], Any]) -> Any:
        """Run a coroutine against the service on its own loop."""
        assert self._loop is not None
        assert self.service is not None
        return asyncio.run_coroutine_threadsafe(fn(self.service), self._loop).result(30)

    def deliver(
        self,
        event: str,
        action: str | None = None,
        *,
        secret: str = SECRET,
        delivery_id: str | None = None,
        payload: dict[str, Any] | None = None,
        **patches: Any,
    ) -> httpx.Response:
        if payload is None:
            payload = deliveries.build(event, action, **patches)
        body = deliveries.encode(payload)
        headers = deliveries.headers(event, delivery_id or str(uuid.uuid4()), body, secret)
        return self.http.post(f"{self.url}/api/github/webhooks", content=body, headers=headers)


@contextmanager
def running(env: Mapping[str, str], **kw: Any) -> Iterator[RunningService]:
    service = RunningService(env, **kw).start()
    try:
        yield service
    finally:
        service.stop()


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
