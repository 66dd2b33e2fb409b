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
  (``stale_updates``: the same for ``PATCH``es of an existing run);
- ``evaluations_per_pr`` (goal ≤ 1.2) and ``rest_calls_per_pr`` (goal ≤ 3): the
  flood's evaluations and REST calls (the quiet repository's taken out) per PR;
- ``lost_deliveries``: deliveries not acknowledged with 202, dead-lettered, or of a
  PR left without a check run on its final head.

``run`` adds a quiet repository, in another organisation (another installation):
its one pull request gets a push every few seconds, first while nothing else
happens, then throughout the flood. ``quiet.flood_over_idle`` is its p95 decision
latency (webhook sent -> its check run created) during the flood divided by the
idle p95 of the same run (goal ≤ 2): what a flood elsewhere costs a quiet team.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
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
    Stamp,
    metric_with,
    ms_summary,
    parse_metrics,
    percentile,
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
    unanswered: list[int] = []
    for number in sorted(driver.final_head):
        head, expected = scenario.expected_conclusion(number)
        runs = [r for r in fake.check_runs(scenario.repo, head) if r.name == "merge-gate"]
        got = runs[-1].conclusion if runs else None
        conclusions[expected] += 1
        if got != expected:
            wrong.append(f"#{number}@{head[-6:]}: expected {expected}, got {got}")
        if got is None:
            unanswered.append(number)
    stale_creates, stale_updates = _stale(clock, fake, driver.superseded)
    deliveries = len(steps)
    pushes_total = sum(1 for s in steps if s.action == "synchronize")
    evaluations = delta("merge_gate_evaluation_seconds_count")
    # The flood's own calls: none to another repository (the quiet one), GraphQL apart.
    mine = f"/repos/{scenario.repo}/".lower()
    flood_calls = [
        c for c in calls if not c.path.startswith("/repos/") or c.path.lower().startswith(mine)
    ]
    graphql_calls = sum(1 for c in flood_calls if c.path.endswith("/graphql"))
    rest_calls = len(flood_calls) - graphql_calls
    per_pr = Counter(step.number for step in steps)
    dead = delta("merge_gate_dead_letters_total")
    return {
        "prs": prs,
        "pushes_per_pr": pushes,
        "deliveries": deliveries,
        "pushes": pushes_total,
        "reviews": sum(1 for s in steps if s.event == "pull_request_review"),
        "comment_reviews": sum(1 for s in steps if s.review == "COMMENTED"),
        "accepted": delta("merge_gate_deliveries_total", result="accepted"),
        # answered 202 but never queued: comment-only reviews change no decision
        "ignored": delta("merge_gate_deliveries_total", result="ignored"),
        "http_statuses": {str(k): v for k, v in sorted(driver.statuses.items())},
        "send_seconds": round(sent - started, 2),
        "drained": drained is not None,
        "drain_seconds": round((drained or done) - started, 2),
        "evaluations": evaluations,
        "evaluations_per_push": round(evaluations / max(pushes_total, 1), 3),
        "evaluations_per_pr": round(evaluations / max(prs, 1), 3),
        "decisions": delta("merge_gate_decisions_total"),
        "dead_letters": dead,
        "lost_deliveries": deliveries
        - driver.statuses[202]
        + dead
        + sum(per_pr[number] for number in unanswered),
        "github_calls": len(calls),
        "rest_calls": rest_calls,
        "rest_calls_per_pr": round(rest_calls / max(prs, 1), 2),
        "graphql_calls": graphql_calls,
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


class Quiet:
    """One pull request in another repository, pushed every ``period`` seconds.

    Each push's latency runs from its webhook being sent to the end of the
    ``POST .../check-runs`` that decided it, or decided a later head of the same
    PR (a decision on the newest head answers every push before it).
    """

    def __init__(self, scenario: Scenario, url: str, clock: CallClock, *, period: float) -> None:
        self.scenario = scenario
        self.url = url
        self.period = period
        self.rng = random.Random(7)
        self.version = 0
        self.head = sha(9_000_000)
        #: (head, time.monotonic() just before its webhook was sent), in order.
        self.sent: list[tuple[str, float]] = []
        #: head -> end of the POST that created its check run.
        self.decided: dict[str, float] = {}
        #: start of every request about the quiet repository (a worker has its job)
        self.requests: list[float] = []
        self._lock = threading.Lock()
        self._repo = f"/repos/{scenario.repo}/".lower()
        self._runs = f"/repos/{scenario.repo}/check-runs".lower()
        clock.listeners.append(self._on_call)

    def _on_call(self, stamp: Stamp) -> None:
        if stamp.path.lower().startswith(self._repo):
            with self._lock:
                self.requests.append(stamp.start)
        if stamp.method == "POST" and stamp.status == 201 and stamp.path.lower() == self._runs:
            head = (stamp.body or {}).get("head_sha", "")
            with self._lock:
                self.decided.setdefault(head, stamp.end)

    def _send(self, client: httpx.Client, action: str) -> None:
        body, headers = self.scenario.delivery("pull_request", action, number=1, head=self.head)
        with self._lock:
            self.sent.append((self.head, time.monotonic()))
        client.post(WEBHOOK_PATH, content=body, headers=headers).raise_for_status()

    def open(self, client: httpx.Client, *, timeout: float = 30.0) -> None:
        """Open the PR and wait for its first (cold: token, policy, teams) decision."""
        self.scenario.open_pull(1, "docs", self.head)
        self._send(client, "opened")
        deadline = time.monotonic() + timeout
        while self.head not in self.decided and time.monotonic() < deadline:
            time.sleep(0.02)

    def push(self, client: httpx.Client) -> None:
        self.version += 1
        self.head = sha(9_000_000 + self.version)
        self.scenario.push(1, "docs", self.head, self.version)
        self._send(client, "synchronize")

    def pause(self) -> None:
        time.sleep(self.period + self.rng.uniform(-0.25, 0.25))

    def loop(self, stop: threading.Event) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not stop.is_set():
                self.push(client)
                stop.wait(self.period + self.rng.uniform(-0.25, 0.25))

    def latencies(self, start: float, end: float) -> tuple[list[float], list[float], int]:
        """For the pushes sent in [start, end): latencies, pickups (sent -> the first
        request about the repository after it: the wait for a worker), and how many
        were never decided."""
        with self._lock:
            sent, decided = list(self.sent), dict(self.decided)
            requests = sorted(self.requests)
        found: list[float] = []
        pickups: list[float] = []
        missing = 0
        for i, (_, at) in enumerate(sent):
            if not start <= at < end:
                continue
            answers = [decided[h] for h, _ in sent[i:] if h in decided and decided[h] >= at]
            if answers:
                found.append(min(answers) - at)
            else:
                missing += 1
            first = next((r for r in requests if r >= at), None)
            if first is not None:
                pickups.append(first - at)
        return found, pickups, missing

    def decisions(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for at in self.decided.values() if start <= at < end)


def _p95(samples: list[float]) -> float:
    return round(percentile(samples, 0.95) * 1e3, 1)


def run(*, quick: bool = False, debounce: float = DEBOUNCE_SECONDS) -> dict[str, Any]:
    """The flood with the quiet repository beside it; ``debounce``: the service's window."""
    prs = 50 if quick else 500
    # p95 by nearest rank: of 12 samples the second highest, of 5 the highest
    idle_samples = 5 if quick else 12
    with started_fake(rate_limit=RATE_LIMIT) as fake:
        scenario = Scenario(fake)
        calm = Scenario(fake, org="calm", name="service")
        # the production debounce window (tests run the service without one)
        window = {"GATE_DEBOUNCE_SECONDS": str(debounce)}
        with GateProcess(fake, extra_env=window) as gate, CallClock(fake) as clock:
            # a push every 3 s: more than the debounce window apart, as a person pushes
            quiet = Quiet(calm, gate.url, clock, period=3.0)
            with httpx.Client(base_url=gate.url, timeout=30) as client:
                quiet.open(client)
                quiet.pause()  # its next push comes after a quiet window, as all of them do
                idle_start = time.monotonic()
                for _ in range(idle_samples):
                    quiet.push(client)
                    quiet.pause()
                idle_end = time.monotonic()
            stop = threading.Event()
            prober = threading.Thread(target=quiet.loop, args=(stop,), daemon=True)
            flood_start = time.monotonic()
            prober.start()
            try:
                result = flood(
                    fake,
                    gate.url,
                    prs=prs,
                    pushes=5,
                    timeout=120 if quick else 600,
                    scenario=scenario,
                )
            finally:
                flood_end = time.monotonic()
                stop.set()
                prober.join(timeout=60)
            drained_at = flood_start + result["drain_seconds"]
            # the quiet PR's decisions ran during the flood's metrics window: not the flood's
            quiet_evaluations = quiet.decisions(flood_start, flood_end)
            result["evaluations_per_pr"] = round(
                (result["evaluations"] - quiet_evaluations) / max(prs, 1), 3
            )
            result["quiet_evaluations_subtracted"] = quiet_evaluations
            time.sleep(quiet.period)  # the last quiet push's decision
            idle, idle_pickup, idle_missing = quiet.latencies(idle_start, idle_end)
            busy, busy_pickup, busy_missing = quiet.latencies(flood_start, drained_at)
            result["quiet"] = {
                "period_s": quiet.period,
                "idle": ms_summary(idle),
                "flood": ms_summary(busy),
                "idle_pickup": ms_summary(idle_pickup),
                "flood_pickup": ms_summary(busy_pickup),
                "idle_p95_ms": _p95(idle),
                "flood_p95_ms": _p95(busy),
                "flood_over_idle": round(percentile(busy, 0.95) / percentile(idle, 0.95), 2)
                if idle and busy
                else None,
                "undecided": idle_missing + busy_missing,
            }
            result["service_rss_mb"] = round(gate.rss_kb() / 1024, 1)
            result["service_log_tail"] = gate.log_tail(3) if not result["drained"] else ""
    result["fits_base_rate_limit"] = result["rate_limit_used"] <= BASE_RATE_LIMIT
    result["debounce_seconds"] = debounce
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
