"""Prometheus metrics, one registry per service instance.

Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/

Every label value is bounded: each distinct value is a time series held in memory
for the life of the process and in Prometheus after it, so a label built from
request data (an unverified ``X-GitHub-Event`` header, a URL, a tier name from
some repository's policy) would let anyone who can reach the receiver or open a
pull request grow both without limit. See
https://prometheus.io/docs/practices/naming/#labels ("do not use labels to store
dimensions with high cardinality").
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from webhooks.permissions import ALL_EVENTS

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The value a label takes when its real value is not one of the bounded set.
OTHER = "other"

#: Events GitHub sends this App: those it subscribes to, those every App gets, and ping.
EVENTS = frozenset({*ALL_EVENTS, "ping", "unknown"})
DELIVERY_RESULTS = frozenset(
    {
        "accepted",
        "duplicate",
        "ignored",
        "bad_signature",
        "bad_request",
        "too_large",
        "unavailable",
    }
)


class Bounded:
    """A labelled counter whose label values come from a fixed set, or are the first
    ``limit`` distinct values seen; anything else is counted as ``other``."""

    def __init__(
        self,
        metric: Counter,
        *,
        allowed: Mapping[str, frozenset[str]] | None = None,
        limit: int = 32,
    ) -> None:
        self.metric = metric
        self._allowed = dict(allowed or {})
        self._limit = limit
        self._seen: dict[str, set[str]] = {}

    def _bound(self, label: str, value: str) -> str:
        allowed = self._allowed.get(label)
        if allowed is not None:
            return value if value in allowed else OTHER
        seen = self._seen.setdefault(label, set())
        if value in seen:
            return value
        if len(seen) >= self._limit:
            return OTHER
        seen.add(value)
        return value

    def labels(self, **values: str) -> Counter:
        child: Counter = self.metric.labels(**{k: self._bound(k, v) for k, v in values.items()})
        return child


def package_version() -> str:
    try:
        return version("merge-gate")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Gauge(
            "merge_gate_build_info",
            "Always 1; the version label says which merge-gate is running",
            ["version"],
            registry=r,
        )
        self.build_info.labels(version=package_version()).set(1)
        self.deliveries = Bounded(
            Counter(
                "merge_gate_deliveries",
                "Webhook deliveries by event and result",
                ["event", "result"],
                registry=r,
            ),
            allowed={"event": EVENTS, "result": DELIVERY_RESULTS},
        )
        self.decisions = Bounded(
            Counter(
                "merge_gate_decisions",
                "Decisions by conclusion and tier",
                ["conclusion", "tier"],
                registry=r,
            ),
            limit=32,
        )
        self.github_calls = Bounded(
            Counter(
                "merge_gate_github_calls",
                "GitHub REST calls by route and status class",
                ["route", "status"],
                registry=r,
            ),
            limit=64,
        )
        self.rate_limit_remaining = Gauge(
            "merge_gate_github_rate_limit_remaining", "Last seen x-ratelimit-remaining", registry=r
        )
        # GraphQL is counted apart: its budget is GitHub's "graphql" resource, in points.
        self.graphql_calls = Counter(
            "merge_gate_github_graphql_calls",
            "GitHub GraphQL queries by result (failed: an HTTP error or errors in the body)",
            ["result"],
            registry=r,
        )
        self.graphql_points = Counter(
            "merge_gate_github_graphql_points", "GraphQL rate-limit points spent", registry=r
        )
        self.graphql_remaining = Gauge(
            "merge_gate_github_graphql_rate_limit_remaining",
            "Last seen x-ratelimit-remaining of the graphql resource",
            registry=r,
        )
        self.queue_depth = Gauge("merge_gate_queue_depth", "Pending deliveries", registry=r)
        self.queue_lag = Gauge(
            "merge_gate_queue_lag_seconds", "Age of the oldest pending delivery", registry=r
        )
        self.evaluation_seconds = Histogram(
            "merge_gate_evaluation_seconds",
            "Time from claiming a job to publishing its decision",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.would_block = Counter(
            "merge_gate_would_block",
            "Decisions that would have blocked, published as passing (advisory mode)",
            registry=r,
        )
        self.dead_letters = Counter(
            "merge_gate_dead_letters", "Jobs given up after retries", registry=r
        )

    def github_call(self, method: str, route: str, status: int) -> None:
        """Count one GitHub call; ``route`` is the caller's fixed template, never a URL."""
        # Callers write "GET /pulls/{n}" or "/pulls/{n}"; the label has the method once.
        route = route.removeprefix(f"{method} ") or "unnamed"
        label = f"{method} {route}"
        self.github_calls.labels(route=label[:80], status=f"{status // 100}xx").inc()

    def github_graphql(self, status: int, points: int) -> None:
        """Count one GraphQL query; status 0 when it was refused for its body."""
        ok = 200 <= status < 300
        self.graphql_calls.labels(result="ok" if ok else "failed").inc()
        self.graphql_points.inc(points)

    def render(self) -> bytes:
        return generate_latest(self.registry)
