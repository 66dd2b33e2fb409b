"""Prometheus metrics, one registry per service instance.

Exposition format: https://prometheus.io/docs/instrumenting/exposition_formats/
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.deliveries = Counter(
            "merge_gate_deliveries",
            "Webhook deliveries by event and result",
            ["event", "result"],
            registry=r,
        )
        self.decisions = Counter(
            "merge_gate_decisions",
            "Decisions by conclusion and tier",
            ["conclusion", "tier"],
            registry=r,
        )
        self.github_calls = Counter(
            "merge_gate_github_calls",
            "GitHub REST calls by route and status class",
            ["route", "status"],
            registry=r,
        )
        self.rate_limit_remaining = Gauge(
            "merge_gate_github_rate_limit_remaining", "Last seen x-ratelimit-remaining", registry=r
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
        self.github_calls.labels(route=f"{method} {route}"[:80], status=f"{status // 100}xx").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
