"""The fake GitHub in process: an httpx transport at the GitHub client's call seam.

Requests go through :meth:`FakeGitHub.handle` (the same spec validation, faults,
authentication and state as over HTTP) without a socket, so the service's read
and write halves can be tested in milliseconds. End-to-end and durability tests
keep the real HTTP server.
"""

from __future__ import annotations

import httpx

from tests.fakegithub.server import FakeGitHub, RawRequest


class InProcessTransport(httpx.AsyncBaseTransport):
    def __init__(self, fake: FakeGitHub) -> None:
        self._fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        raw = RawRequest(
            method=request.method,
            target=target,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        answer = self._fake.handle(raw)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            content=answer.body,
            request=request,
        )
