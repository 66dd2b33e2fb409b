"""The HTTP surface: webhook receiver, probes, metrics, JWKS, decision pages.

The receiver answers fast and durably: the signature is checked over the raw
body before anything is parsed, and 202 means the delivery is in the store.
https://docs.github.com/webhooks/using-webhooks/best-practices-for-using-webhooks
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from webhooks import agent_events, audit_http, details, events, probes, signature
from webhooks.routed import NotJson, NotRoutable, routed_fields
from webhooks.service import Service
from webhooks.store import Delivery, StoreUnavailable

log = logging.getLogger("merge_gate.receiver")

#: GitHub caps webhook payloads at 25 MB.
MAX_BODY = 25 * 1024 * 1024


class TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    """The raw body, refusing early (without buffering it all) when over ``MAX_BODY``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _label(event: str) -> str:
    """A metric label from a header anyone can send: bounded to the events we know."""
    return event if event in events.HANDLED else "other"


def _answer(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, **extra}, status_code=status)


def create_app(service: Service) -> Starlette:
    secret = service.settings.webhook_secret.get_secret_value()
    metrics = service.metrics

    async def webhook(request: Request) -> Response:
        try:
            body = await _read_body(request)
        except TooLarge:
            metrics.deliveries.labels(event="unknown", result="too_large").inc()
            return _answer(413, "payload over 25 MiB")
        event = request.headers.get("x-github-event", "")
        delivery_id = request.headers.get("x-github-delivery", "")
        if not signature.valid(
            body=body, header=request.headers.get("x-hub-signature-256"), secret=secret
        ):
            # Counted and logged, never written to the audit log: anyone can post
            # here, and a stranger must not be able to grow the log.
            metrics.deliveries.labels(event=_label(event), result="bad_signature").inc()
            log.warning(
                "delivery rejected: bad signature",
                extra={"delivery": delivery_id[:80], "event": event[:40]},
            )
            return _answer(401, "signature missing or invalid")
        if not event or not delivery_id:
            metrics.deliveries.labels(event=_label(event), result="bad_request").inc()
            return _answer(400, "X-GitHub-Event and X-GitHub-Delivery are required")
        try:
            payload = routed_fields(body)
        except NotJson:
            metrics.deliveries.labels(event=_label(event), result="bad_request").inc()
            return _answer(400, "body is not JSON")
        except NotRoutable as error:
            metrics.deliveries.labels(event=_label(event), result="bad_request").inc()
            return _answer(400, f"body is not a JSON object of GitHub's shape: {error}")
        action = payload.get("action") if isinstance(payload.get("action"), str) else None
        context = {"delivery": delivery_id, "event": event, "action": action}
        if not events.handled(event, action):
            metrics.deliveries.labels(event=_label(event), result="ignored").inc()
            log.info("delivery ignored", extra=context)
            return _answer(202, "ignored: merge-gate does not act on this event")
        unchanged = events.unchanged_decision(event, action, payload)
        if unchanged is not None:
            metrics.deliveries.labels(event=_label(event), result="ignored").inc()
            log.debug("delivery ignored", extra=context)
            return _answer(202, f"ignored: {unchanged} changes no decision")
        try:
            route = events.route(event, payload, action=action)
        except events.NotACommand:
            metrics.deliveries.labels(event=_label(event), result="ignored").inc()
            return _answer(202, "ignored: not a merge-gate command")
        except (events.MalformedPayload, ValueError, TypeError) as error:
            metrics.deliveries.labels(event=_label(event), result="bad_request").inc()
            return _answer(400, f"malformed {event} payload: {error}")
        delivery = Delivery(
            id=delivery_id,
            event=event,
            action=action,
            key=route.key.text,
            body=events.encode(route.intent),
            received_at=service.wall(),
        )
        try:
            fresh = await service.store.accept(delivery)
        except StoreUnavailable as error:
            metrics.deliveries.labels(event=event, result="unavailable").inc()
            log.error("store unavailable: delivery refused", extra={**context, "error": str(error)})
            return _answer(
                503, "cannot record the delivery right now; GitHub marks it failed for redelivery"
            )
        if not fresh:
            metrics.deliveries.labels(event=event, result="duplicate").inc()
            return _answer(200, "duplicate delivery: already accepted")
        metrics.deliveries.labels(event=event, result="accepted").inc()
        service.wakeup.set()
        log.debug("delivery accepted", extra={**context, "key": route.key.text, "repo": route.repo})
        return _answer(202, "accepted", key=route.key.text)

    async def healthz(request: Request) -> Response:
        return _answer(200, "ok")

    async def readyz(request: Request) -> Response:
        problems = []
        try:
            await service.store.ping()
        except StoreUnavailable as error:
            problems.append(f"store: {error}")
        if problems:
            return _answer(503, "not ready", problems=problems)
        return _answer(200, "ready")

    async def metrics_endpoint(request: Request) -> Response:
        return await probes.metrics_response(service)

    async def jwks(request: Request) -> Response:
        return JSONResponse(
            service.keyring.jwks(), headers={"Cache-Control": "public, max-age=300"}
        )

    routes = [
        Route("/api/github/webhooks", webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    ]
    routes += details.routes(service)
    routes += audit_http.routes(service)
    routes += agent_events.routes(service)
    return Starlette(routes=routes)
