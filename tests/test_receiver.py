"""The receiver's short ASGI path against the same receiver behind Starlette's routing.

``POST /api/github/webhooks`` is answered before Starlette's middleware and
routing; the Starlette route stays for a path under a ``root_path`` (a prefix a
proxy strips). Two real uvicorn servers share one service here: one with no
``root_path`` (the short path), one with ``root_path="/gate"`` (Starlette's
route), so every answer can be compared over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.fakegithub import deliveries
from tests.fakegithub.front import InProcessTransport
from tests.fakegithub.server import FakeGitHub
from tests.harness import SECRET, settings_env
from webhooks.app import WEBHOOK_PATH, create_app
from webhooks.service import Service, build
from webhooks.settings import load
from webhooks.store import Delivery


@dataclass
class Servers:
    service: Service
    short: str  # base URL whose webhook requests take the short path
    routed: str  # base URL whose webhook requests go through Starlette's routing
    client: httpx.AsyncClient


@contextlib.asynccontextmanager
async def _serving(app: Any, *, root_path: str) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        loop="none",
        http="httptools",
        lifespan="off",
        log_config=None,
        access_log=False,
        root_path=root_path,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20)


@pytest.fixture
async def servers(fake_github_server: FakeGitHub, tmp_path: Path) -> AsyncIterator[Servers]:
    settings = load(settings_env(fake_github_server, tmp_path))
    service = await build(settings, github_transport=InProcessTransport(fake_github_server))
    app = create_app(service)
    try:
        async with (
            _serving(app, root_path="") as short,
            _serving(app, root_path="/gate") as routed,
            httpx.AsyncClient(timeout=30) as client,
        ):
            yield Servers(service, short, routed, client)
    finally:
        await service.close()


def _signed(event: str, delivery: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    return deliveries.headers(event, delivery, body, secret)


def _pull_request(number: int) -> bytes:
    payload = deliveries.build(
        "pull_request",
        "synchronize",
        repo="acme/app",
        installation_id=1001,
        number=number,
        head_sha=f"{number:040x}",
    )
    return deliveries.encode(payload)


def _count(service: Service, event: str, result: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "merge_gate_deliveries_total", {"event": event, "result": result}
    )
    return value or 0.0


#: (name, event, body, signed): each request is sent to both servers.
CASES: list[tuple[str, str, bytes, bool]] = [
    ("accepted", "pull_request", _pull_request(1), True),
    ("unsigned", "pull_request", _pull_request(2), False),
    ("not json", "pull_request", b"{not json", True),
    ("not an object", "pull_request", b"[1, 2]", True),
    ("wrong shape", "pull_request", b'{"action": "opened", "repository": 7}', True),
    ("no repository", "pull_request", b'{"action": "opened"}', True),
    ("ignored event", "star", b'{"action": "created"}', True),
    (
        "not a command",
        "issue_comment",
        deliveries.encode(
            deliveries.build("issue_comment", "created", repo="acme/app", installation_id=1001)
        ),
        True,
    ),
    ("no event", "", b"{}", True),
]


@pytest.mark.parametrize(("name", "event", "body", "signed"), CASES, ids=[c[0] for c in CASES])
async def test_short_path_answers_as_starlette_route_does(
    servers: Servers, name: str, event: str, body: bytes, signed: bool
) -> None:
    answers = []
    for base in (servers.short, servers.routed):
        delivery = f"{name}-{uuid.uuid4()}"
        headers = _signed(event, delivery, body, SECRET if signed else "wrong-secret-0123")
        if not event:
            del headers["X-GitHub-Event"]
        response = await servers.client.post(base + WEBHOOK_PATH, content=body, headers=headers)
        answers.append(
            (
                response.status_code,
                response.json(),
                response.headers["content-type"],
                int(response.headers["content-length"]),
            )
        )
    short, routed = answers
    assert short == routed
    assert short[1]["message"]


async def test_short_path_accepts_dedupes_and_counts_as_the_route_does(
    servers: Servers,
) -> None:
    service = servers.service
    body = _pull_request(3)
    for base in (servers.short, servers.routed):
        delivery = str(uuid.uuid4())
        codes = [
            (
                await servers.client.post(
                    base + WEBHOOK_PATH,
                    content=body,
                    headers=_signed("pull_request", delivery, body),
                )
            ).status_code
            for _ in range(2)
        ]
        assert codes == [202, 200]
    assert await service.store.depth() == 2
    assert _count(service, "pull_request", "accepted") == 2
    assert _count(service, "pull_request", "duplicate") == 2


async def test_other_methods_on_the_path_still_get_405(servers: Servers) -> None:
    response = await servers.client.get(servers.short + WEBHOOK_PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def _raw(base: str, data: bytes, *, read: bool = True) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(256), timeout=10) if read else b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_declared_length_over_the_cap_is_413_before_the_body(servers: Servers) -> None:
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\n"
        "X-GitHub-Delivery: big\r\nContent-Length: 27262976\r\n\r\n"
    ).encode()
    answer = await _raw(servers.short, head + b"x" * 1024)
    assert answer.startswith(b"HTTP/1.1 413")
    assert _count(servers.service, "unknown", "too_large") == 1


async def test_chunked_body_over_the_cap_is_413(servers: Servers) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(27):
            yield b"x" * (1024 * 1024)

    response = await servers.client.post(
        servers.short + WEBHOOK_PATH,
        content=chunks(),
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "big2"},
    )
    assert response.status_code == 413
    assert response.json() == {"message": "payload over 25 MiB"}


async def test_a_client_gone_mid_body_is_neither_recorded_nor_counted(servers: Servers) -> None:
    body = _pull_request(4)
    headers = _signed("pull_request", "gone-1", body)
    head = f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    await _raw(servers.short, head.encode() + body[: len(body) // 2], read=False)
    # The server goes on answering; the half delivery left no trace.
    response = await servers.client.post(
        servers.short + WEBHOOK_PATH, content=body, headers=headers
    )
    assert response.status_code == 202
    assert await servers.service.store.depth() == 1
    assert _count(servers.service, "pull_request", "bad_signature") == 0


async def test_an_unexpected_error_is_a_500_never_an_ack(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(delivery: Delivery) -> bool:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(servers.service.store, "accept", broken)
    body = _pull_request(5)
    for base in (servers.short, servers.routed):
        response = await servers.client.post(
            base + WEBHOOK_PATH,
            content=body,
            headers=_signed("pull_request", str(uuid.uuid4()), body),
        )
        assert response.status_code == 500
    assert _count(servers.service, "pull_request", "accepted") == 0


def test_a_declared_length_of_any_size_is_judged_without_error() -> None:
    from webhooks.app import MAX_BODY, _too_large

    # int() of more than 4,300 digits raises ValueError: a 500, not a 413.
    assert _too_large("9" * 5_000)
    assert _too_large("0" * 5_000 + str(MAX_BODY + 1))
    assert not _too_large("0" * 5_000 + str(MAX_BODY))
    assert _too_large(str(MAX_BODY + 1))
    assert not _too_large(str(MAX_BODY))
    for odd in ("", "-1", "1e9", "\u0663", " 12", None):
        assert not _too_large(odd)
