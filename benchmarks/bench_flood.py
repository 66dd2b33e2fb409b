"""Flood: many agent PRs pushing and being reviewed at once.

500 agent PRs (``--quick``: 50), each opened, pushed 5 times, with reviews
interleaved (an approval on an intermediate head, which the next push makes stale,
and for half of the app/auth PRs a final approval). Eight senders deliver the
webhooks as fast as the service acknowledges them, each PR's events in order and
every PR's state changed on the fake GitHub just before its delivery, as GitHub
does. A real ``gate serve`` (four workers, SQLite, the default debounce window)
drains the queue.

Figures (no pass/fail):

- ``drain_seconds``: first delivery sent -> queue empty (every decision published);
- ``github_calls``: requests the service made; ``rate_limit_used``: those that cost
  rate limit (a 304 revalidation is free);
- ``evaluations``: jobs the workers ran; a job takes every pending delivery of its PR
  (coalescing), so this is far below the number of pushes when the queue backs up;
- ``final_correct``: PRs whose check run on the final head has the conclusion the
  engine gives the final state (computed here from the fake's records);
- ``stale_check_runs``: check runs *created* (``POST .../check-runs``) for a head sha
  whose request reached GitHub after a push had replaced that head on the PR
  (``stale_updates``: the same for ``PATCH``es of an existing run).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from benchmarks.common import (
    KINDS,
    WEBHOOK_PATH,
    CallClock,
    GateProcess,
    Scenario,
    metric_with,
    parse_metrics,
    sha,
    started_fake,
)
from tests.fakegithub.server import FakeGitHub
from webhooks.store import DEBOUNCE_SECONDS

#: GitHub's installation rate limit grows with repositories and users up to 12,500
#: requests an hour (15,000 on Enterprise Cloud); a flood this size needs the top.
RATE_LIMIT = 12_500
BASE_RATE_LIMIT = 5_000
_RUN_PATH = re.compile(r"/repos/[^/]+/[^/]+/check-runs/(\d+)$")


@dataclass(frozen=True, slots=True)
class Step:
    """One thing happening to one PR on GitHub, and the webhook it causes."""

    number: int
    kind: str
    event: str
    action: str
    #: The PR's head after this step.
    head: str
    #: 0 when opened, n for the n-th push.
    version: int
    #: Review state for review steps.
    review: str | None = None


def plan(*, prs: int, pushes: int, seed: int, first: int = 1) -> list[Step]:
    """Every PR's steps in order, the PRs interleaved at random (reproducibly)."""
    rng = random.Random(seed)
    queues: list[list[Step]] = []
    for number in range(first, first + prs):
        kind = KINDS[number % len(KINDS)]
        head = [sha(number * 1000 + v) for v in range(pushes + 1)]
        steps = [Step(number, kind, "pull_request", "opened", head[0], 0)]
        steps += [
            Step(number, kind, "pull_request", "synchronize", head[v], v)
            for v in range(1, pushes + 1)
        ]
        # A review of an intermediate head, made stale by the next push.
        early = rng.randrange(pushes) if pushes else 0
        state = "COMMENTED" if kind == "docs" else "APPROVED"
        review = Step(number, kind, "pull_request_review", "submitted", head[early], early, state)
        steps.insert(early + 1, review)
        if kind != "docs" and rng.random() < 0.5:
            steps.append(
                Step(
                    number,
                    kind,
                    "pull_request_review",
                    "submitted",
                    head[-1],
                    pushes,
                    "APPROVED",
                )
            )
        queues.append(list(reversed(steps)))
    order: list[Step] = []
    while queues:
        i = rng.randrange(len(queues))
        order.append(queues[i].pop())
        if not queues[i]:
            queues[i] = queues[-1]
            queues.pop()
    return order


class Driver:
    """Applies steps to the fake and delivers their webhooks over ``lanes`` connections."""

    def __init__(self, scenario: Scenario, url: str, steps: list[Step], lanes: int) -> None:
        self.scenario = scenario
        self.url = url
        # Deliveries are built before the clock starts (2 ms each from GitHub's examples).
        self.work = [
            (
                step,
                scenario.delivery(
                    step.event,
                    step.action,
                    number=step.number,
                    head=step.head,
                    review=step.review or "APPROVED",
                ),
            )
            for step in steps
        ]
        self.lanes = lanes
        #: head sha -> time.monotonic() right after a push replaced it on the fake.
        self.superseded: dict[str, float] = {}
        self.statuses: Counter[int] = Counter()
        self.final_head: dict[int, str] = {}

    def _apply(self, step: Step) -> None:
        s = self.scenario
        if step.action == "opened":
            s.open_pull(step.number, step.kind, step.head)
        elif step.action == "synchronize":
            old = self.final_head[step.number]
            s.push(step.number, step.kind, step.head, step.version)
            self.superseded[old] = time.monotonic()
        else:
            s.review(step.number, step.kind, step.head, step.review or "APPROVED")
        if step.event == "pull_request":
            self.final_head[step.number] = step.head

    async def _lane(self, client: httpx.AsyncClient, lane: int) -> None:
        for step, (body, headers) in self.work:
            if step.number % self.lanes != lane:
                continue
            self._apply(step)
            response = await client.post(WEBHOOK_PATH, content=body, headers=headers)
            self.statuses[response.status_code] += 1

    async def _drive(self) -> None:
        limits = httpx.Limits(max_connections=self.lanes, max_keepalive_connections=self.lanes)
        async with httpx.AsyncClient(base_url=self.url, timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._lane(client, lane) for lane in range(self.lanes)))

    def drive(self) -> None:
        asyncio.run(self._drive())


def _wait_drained(url: str, fake: FakeGitHub, *, timeout: float) -> float | None:
    """When the queue emptied (time.monotonic()), or None after ``timeout``.

    Gives up early once the rate limit is spent: the service then waits for its
    reset, an hour away, and that is the figure to report.
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline and fake.rate_limit_remaining > 0:
            depth = parse_metrics(client.get("/metrics").text).get("merge_gate_queue_depth", 1)
            if depth == 0:
                return time.monotonic()
            time.sleep(0.05)
    return None


def _stale(clock: CallClock, fake: FakeGitHub, superseded: dict[str, float]) -> tuple[int, int]:
    """(check runs created, check runs updated) on a head after it was superseded."""
    creates = updates = 0
    with fake.lock:
        run_heads = {run_id: run.head_sha for run_id, run in fake.runs.items()}
    for stamp in clock.stamps:
        if stamp.method == "POST" and stamp.path.endswith("/check-runs") and stamp.status == 201:
            head = (stamp.body or {}).get("head_sha", "")
            if head in superseded and stamp.start > superseded[head]:
                creates += 1
        elif stamp.method == "PATCH" and (match := _RUN_PATH.search(stamp.path)):
            head = run_heads.get(int(match.group(1)), "")
            if head in superseded and stamp.start > superseded[head]:
                updates += 1
    return creates, updates


def flood(
    fake: FakeGitHub,
    url: str,
    *,
    prs: int,
    pushes: int,
    seed: int = 1,
    lanes: int = 8,
    timeout: float = 600.0,
    scenario: Scenario | None = None,
) -> dict[str, Any]:
    """Run one flood against the service at ``url``; returns the figures."""
    scenario = scenario or Scenario(fake)
    steps = plan(prs=prs, pushes=pushes, seed=seed)
    driver = Driver(scenario, url, steps, lanes)
    with httpx.Client(base_url=url, timeout=10) as client:
        before = client.get("/metrics").text
    calls_before = len(fake.calls)
    remaining_before = fake.rate_limit_remaining
    with CallClock(fake) as clock:
        started = time.monotonic()
        driver.drive()
        sent = time.monotonic()
        drained = _wait_drained(url, fake, timeout=timeout)
        done = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as client:
        after = client.get("/metrics").text

    def delta(name: str, **labels: str) -> int:
        return round(metric_with(after, name, **labels) - metric_with(before, name, **labels))

    calls = fake.calls[calls_before:]
    conclusions: Counter[str] = Counter()
    wrong: list[str] = []
    for number in sorted(driver.final_head):
        head, expected = scenario.expected_conclusion(number)
        runs = [r for r in fake.check_runs(scenario.repo, head) if r.name == "merge-gate"]
        got = runs[-1].conclusion if runs else None
        conclusions[expected] += 1
        if got != expected:
            wrong.append(f"#{number}@{head[-6:]}: expected {expected}, got {got}")
    stale_creates, stale_updates = _stale(clock, fake, driver.superseded)
    deliveries = len(steps)
    pushes_total = sum(1 for s in steps if s.action == "synchronize")
    evaluations = delta("merge_gate_evaluation_seconds_count")
    return {
        "prs": prs,
        "pushes_per_pr": pushes,
        "deliveries": deliveries,
        "pushes": pushes_total,
        "reviews": sum(1 for s in steps if s.event == "pull_request_review"),
        "accepted": delta("merge_gate_deliveries_total", result="accepted"),
        "http_statuses": {str(k): v for k, v in sorted(driver.statuses.items())},
        "send_seconds": round(sent - started, 2),
        "drained": drained is not None,
        "drain_seconds": round((drained or done) - started, 2),
        "evaluations": evaluations,
        "evaluations_per_push": round(evaluations / max(pushes_total, 1), 3),
        "decisions": delta("merge_gate_decisions_total"),
        "dead_letters": delta("merge_gate_dead_letters_total"),
        "github_calls": len(calls),
        "github_calls_304": sum(1 for c in calls if c.status == 304),
        "github_calls_per_evaluation": round(len(calls) / max(evaluations, 1), 2),
        "rate_limit_used": remaining_before - fake.rate_limit_remaining,
        "rate_limit": fake.rate_limit,
        "rate_limit_exhausted": fake.rate_limit_remaining == 0,
        "calls_by_operation": dict(Counter(c.operation or c.path for c in calls).most_common()),
        "final_correct": len(driver.final_head) - len(wrong),
        "final_checked": len(driver.final_head),
        "final_conclusions": dict(conclusions),
        "wrong_examples": wrong[:10],
        "stale_check_runs": stale_creates,
        "stale_updates": stale_updates,
        "violations": len(fake.violations),
    }


def run(*, quick: bool = False) -> dict[str, Any]:
    prs = 50 if quick else 500
    with started_fake(rate_limit=RATE_LIMIT) as fake:
        scenario = Scenario(fake)
        # the production debounce window (tests run the service without one)
        debounce = {"GATE_DEBOUNCE_SECONDS": str(DEBOUNCE_SECONDS)}
        with GateProcess(fake, extra_env=debounce) as gate:
            result = flood(
                fake,
                gate.url,
                prs=prs,
                pushes=5,
                timeout=120 if quick else 600,
                scenario=scenario,
            )
            result["service_rss_mb"] = round(gate.rss_kb() / 1024, 1)
            result["service_log_tail"] = gate.log_tail(3) if not result["drained"] else ""
    result["fits_base_rate_limit"] = result["rate_limit_used"] <= BASE_RATE_LIMIT
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
