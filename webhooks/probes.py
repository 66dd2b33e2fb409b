"""``/metrics`` and ``/healthz`` for processes that serve no webhooks (``gate worker``).

A worker has no receiver port, yet it is where decisions, GitHub calls and
evaluation times are counted; Prometheus scrapes it on its own port (``gate worker
--metrics-port``, 9090 by default), and the orchestrator's liveness probe asks
``/healthz``, which fails once a worker task has died so the process is restarted.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from webhooks.metrics import CONTENT_TYPE
from webhooks.service import Service
from webhooks.store import StoreUnavailable


async def metrics_response(service: Service) -> Response:
    """The Prometheus exposition, with the queue gauges read from the store just now."""
    metrics = service.metrics
    try:
        metrics.queue_depth.set(await service.store.depth())
        metrics.queue_lag.set(await service.store.lag(now=service.wall()))
    except StoreUnavailable:
        pass
    if service.gh.stats.rate_limit_remaining is not None:
        metrics.rate_limit_remaining.set(service.gh.stats.rate_limit_remaining)
    if service.gh.stats.graphql_remaining is not None:
        metrics.graphql_remaining.set(service.gh.stats.graphql_remaining)
    return Response(metrics.render(), media_type=CONTENT_TYPE)


def create_app(service: Service, *, alive: Callable[[], bool]) -> Starlette:
    """``alive`` says whether every worker task is still running."""

    async def metrics(request: Request) -> Response:
        return await metrics_response(service)

    async def healthz(request: Request) -> Response:
        if not alive():
            return JSONResponse({"message": "a worker task has stopped"}, status_code=503)
        return JSONResponse({"message": "ok"})

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
