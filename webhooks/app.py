"""The HTTP surface: webhook receiver, probes, metrics, JWKS, decision pages.

The receiver answers fast and durably: the signature is checked over the raw
body before anything is parsed, and 202 means the delivery is in the store.
https://docs.github.com/webhooks/using-webhooks/best-practices-for-using-webhooks

``POST /api/github/webhooks`` is answered by :class:`App` itself, before
Starlette's middleware and routing (plain ASGI:
https://asgi.readthedocs.io/en/latest/specs/www.html): Starlette's middleware,
routing, ``Request`` and ``JSONResponse`` cost ~35 µs a request here, a third of
an accept's CPU (114 against 170 µs with SQLite), and the path needs none of them.
The same :class:`Receiver` also sits behind a Starlette route, which answers any
other method on the path (405) and a path reached under a ``root_path``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import msgspec
from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from webhooks import agent_events, audit_http, details, events, probes, signature
from webhooks.routed import NotJson, NotRoutable, routed_fields
from webhooks.service import Service
from webhooks.store import Delivery, StoreUnavailable

log = logging.getLogger("merge_gate.receiver")

#: GitHub caps webhook payloads at 25 MB.
MAX_BODY = 25 * 1024 * 1024
WEBHOOK_PATH = "/api/github/webhooks"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADERS = ((b"content-type", b"application/json"),)


class TooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its body was complete: there is nobody to answer."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes  # JSON


def _answer(status: int, message: str, **extra: Any) -> Answer:
    return Answer(status, msgspec.json.encode({"message": message, **extra}))


_TOO_LARGE = _answer(413, "payload over 25 MiB")
_BAD_SIGNATURE = _answer(401, "signature missing or invalid")
_NO_HEADERS = _answer(400, "X-GitHub-Event and X-GitHub-Delivery are required")
_NOT_JSON = _answer(400, "body is not JSON")
_IGNORED = _answer(202, "ignored: merge-gate does not act on this event")
_NOT_A_COMMAND = _answer(202, "ignored: not a merge-gate command")
_UNAVAILABLE = _answer(
    503, "cannot record the delivery right now; GitHub marks it failed for redelivery"
)
_DUPLICATE = _answer(200, "duplicate delivery: already accepted")


def _too_large(declared: str | None) -> bool:
    # A length of more digits than any body could have is too large, not an int()
    # of thousands of digits (which Python refuses with ValueError).
    if not (declared and declared.isascii() and declared.isdigit()):
        return False
    digits = declared.lstrip("0")
    return len(digits) > len(str(MAX_BODY)) or int(digits or "0") > MAX_BODY


async def _read_body(request: Request) -> bytes:
    """The raw body, refusing early (without buffering it all) when over ``MAX_BODY``."""
    if _too_large(request.headers.get("content-length")):
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise TooLarge
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone from None
    return b"".join(chunks)


async def _receive_body(receive: Receive) -> bytes:
    """The raw body from ASGI ``http.request`` messages, refused once over ``MAX_BODY``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)  # one chunk: that very object, not a copy


def _label(event: str) -> str:
    """A metric label from a header anyone can send: bounded to the events we know."""
    return event if event in events.HANDLED else "other"


class Receiver:
    """What ``POST /api/github/webhooks`` does with a delivery's headers and raw body."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._secret = service.settings.webhook_secret.get_secret_value()
        # Labelled counters resolved once per (event, result): both labels are bounded.
        self._counters: dict[tuple[str, str], Counter] = {}

    def count(self, event: str, result: str) -> None:
        self._count(_label(event), result)

    def _count(self, label: str, result: str) -> None:
        counter = self._counters.get((label, result))
        if counter is None:
            counter = self._service.metrics.deliveries.labels(event=label, result=result)
            self._counters[label, result] = counter
        counter.inc()

    def too_large(self) -> Answer:
        self._count("unknown", "too_large")  # the event is not read before the body
        return _TOO_LARGE

    async def handle(
        self, *, event: str, delivery_id: str, signed: str | None, body: bytes
    ) -> Answer:
        if not signature.valid(body=body, header=signed, secret=self._secret):
            # Counted and logged, never written to the audit log: anyone can post
            # here, and a stranger must not be able to grow the log.
            self.count(event, "bad_signature")
            log.warning(
                "delivery rejected: bad signature",
                extra={"delivery": delivery_id[:80], "event": event[:40]},
            )
            return _BAD_SIGNATURE
        if not event or not delivery_id:
            self.count(event, "bad_request")
            return _NO_HEADERS
        try:
            payload = routed_fields(body)
        except NotJson:
            self.count(event, "bad_request")
            return _NOT_JSON
        except NotRoutable as error:
            self.count(event, "bad_request")
            return _answer(400, f"body is not a JSON object of GitHub's shape: {error}")
        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        if not events.handled(event, action):
            self.count(event, "ignored")
            log.info(
                "delivery ignored",
                extra={"delivery": delivery_id, "event": event, "action": action},
            )
            return _IGNORED
        unchanged = events.unchanged_decision(event, action, payload)
        if unchanged is not None:
            self.count(event, "ignored")
            return _answer(202, f"ignored: {unchanged} changes no decision")
        try:
            route = events.route(event, payload, action=action)
        except events.NotACommand:
            self.count(event, "ignored")
            return _NOT_A_COMMAND
        except (events.MalformedPayload, ValueError, TypeError) as error:
            self.count(event, "bad_request")
            return _answer(400, f"malformed {event} payload: {error}")
        key = route.key.text
        service = self._service
        delivery = Delivery(
            id=delivery_id,
            event=event,
            action=action,
            key=key,
            body=events.encode(route.intent),
            received_at=service.wall(),
        )
        try:
            fresh = await service.store.accept(delivery)
        except StoreUnavailable as error:
            self.count(event, "unavailable")
            log.error(
                "store unavailable: delivery refused",
                extra={
                    "delivery": delivery_id,
                    "event": event,
                    "action": action,
                    "error": str(error),
                },
            )
            return _UNAVAILABLE
        if not fresh:
            self.count(event, "duplicate")
            return _DUPLICATE
        self.count(event, "accepted")
        service.wakeup.set()
        # DEBUG: one line per delivery costs more than the rest of the ack path's
        # Python; the counter above keeps the figure.
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "delivery accepted",
                extra={
                    "delivery": delivery_id,
                    "event": event,
                    "action": action,
                    "key": key,
                    "repo": route.repo,
                },
            )
        return _answer(202, "accepted", key=key)

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The receiver as a plain ASGI endpoint (an ``http`` scope)."""
        # Header names arrive lower-cased (ASGI); the first of a repeated header
        # counts, as with Starlette's ``Headers.get``.
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in _WANTED and name not in found:
                found[name] = value
        try:
            if _too_large(found.get(b"content-length", b"").decode("latin-1")):
                raise TooLarge
            body = await _receive_body(receive)
        except TooLarge:
            answer = self.too_large()
        except ClientGone:
            return
        else:
            answer = await self.handle(
                event=found.get(b"x-github-event", b"").decode("latin-1"),
                delivery_id=found.get(b"x-github-delivery", b"").decode("latin-1"),
                signed=_text(found.get(b"x-hub-signature-256")),
                body=body,
            )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(b"content-length", b"%d" % len(answer.body)), *_JSON_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def starlette(self, request: Request) -> Response:
        """The receiver as a Starlette endpoint: the same answers."""
        try:
            body = await _read_body(request)
        except TooLarge:
            answer = self.too_large()
        except ClientGone:
            return Response(status_code=400)  # nobody reads it
        else:
            headers = request.headers
            answer = await self.handle(
                event=headers.get("x-github-event", ""),
                delivery_id=headers.get("x-github-delivery", ""),
                signed=headers.get("x-hub-signature-256"),
                body=body,
            )
        return Response(answer.body, status_code=answer.status, media_type="application/json")


_WANTED = frozenset(
    {b"content-length", b"x-github-event", b"x-github-delivery", b"x-hub-signature-256"}
)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


class App(Starlette):
    """Starlette, except that a delivery goes straight to the :class:`Receiver`.

    Only an exact ``POST /api/github/webhooks`` with no ``root_path`` takes the
    short path; anything else, including other methods on that path, goes through
    Starlette's middleware and routing as before. An exception on the short path
    reaches the server, which answers 500 as Starlette's error middleware would.
    """

    def __init__(self, *, receiver: Receiver, routes: list[BaseRoute]) -> None:
        super().__init__(routes=routes)
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == WEBHOOK_PATH
            and not scope.get("root_path")
        ):
            await self.receiver.asgi(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(service: Service) -> App:
    receiver = Receiver(service)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"message": "ok"})

    async def readyz(request: Request) -> Response:
        problems = []
        try:
            await service.store.ping()
        except StoreUnavailable as error:
            problems.append(f"store: {error}")
        if problems:
            return JSONResponse({"message": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"message": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        return await probes.metrics_response(service)

    async def jwks(request: Request) -> Response:
        return JSONResponse(
            service.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"}
        )

    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, receiver.starlette, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
    routes += details.routes(service)
    routes += audit_http.routes(service)
    routes += agent_events.routes(service)
    return App(receiver=receiver, routes=routes)
