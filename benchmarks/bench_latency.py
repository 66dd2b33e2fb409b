"""Webhook -> check-run latency, in GitHub round trips.

A real ``gate serve`` (production defaults: four workers polling an idle queue
every 0.2 s) and the fake GitHub answering every request after ``fake.latency``
seconds (0.05: one round trip to api.github.com from a nearby region). One agent
PR is opened at a time; the latency is from the moment the delivery is POSTed to
the moment the fake has created the PR's check run (the end of its
``POST .../check-runs``). Expressed in round trips (latency / 0.05): the goal is
two round trips (read the PR's facts in parallel, write the check run) + 30 ms.

Each sample is split into ``ack`` (POST answered), ``pickup`` (answer -> the
worker's first GitHub request: queue polling), and ``github`` (first request ->
check run created); ``sequential_round_trips`` counts the waves of GitHub requests
that did not overlap (the critical path). The first PR is reported apart
(``cold``): it also fetches the token, the policy, CODEOWNERS and team members.
Kinds: a docs-only PR (no review request) and an auth PR (asks @org/security).
Samples are spaced by a random 0-0.25 s so they land at random points of the
workers' polling cycle.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from typing import Any

from benchmarks.common import (
    CallClock,
    GateProcess,
    Scenario,
    Stamp,
    ms_summary,
    sha,
    started_fake,
)
from tests.fakegithub.server import FakeGitHub

ROUND_TRIP = 0.05
GOAL_SECONDS = 2 * ROUND_TRIP + 0.030


def _waves(stamps: list[Stamp]) -> int:
    """How many groups of requests ran one after another (overlapping ones are one wave)."""
    waves = 0
    busy_until = float("-inf")
    for stamp in sorted(stamps, key=lambda s: s.start):
        if stamp.start >= busy_until:
            waves += 1
        busy_until = max(busy_until, stamp.end)
    return waves


class _Probe:
    def __init__(self, fake: FakeGitHub, gate: GateProcess, scenario: Scenario) -> None:
        self.fake = fake
        self.gate = gate
        self.scenario = scenario
        self.clock = CallClock(fake)
        self._created: dict[str, threading.Event] = {}
        self.clock.listeners.append(self._on_call)

    def _on_call(self, stamp: Stamp) -> None:
        if stamp.method == "POST" and stamp.path.endswith("/check-runs") and stamp.status == 201:
            head = (stamp.body or {}).get("head_sha", "")
            if head in self._created:
                self._created[head].set()

    def sample(self, number: int, kind: str) -> dict[str, float]:
        head = sha(number * 1000)
        self.scenario.open_pull(number, kind, head)
        body, headers = self.scenario.delivery("pull_request", "opened", number=number, head=head)
        created = self._created[head] = threading.Event()
        t0 = time.monotonic()
        response = self.gate.post(body, headers)
        acked = time.monotonic()
        if response.status_code != 202 or not created.wait(30):
            raise RuntimeError(f"no check run for #{number} ({response.status_code})")
        stamps = self.clock.since(t0)
        run = next(
            s
            for s in stamps
            if s.path.endswith("/check-runs") and (s.body or {}).get("head_sha") == head
        )
        mine = [s for s in stamps if s.start <= run.start]
        first = min(s.start for s in mine)
        return {
            "total": run.end - t0,
            "ack": acked - t0,
            "pickup": first - acked,
            "github": run.end - first,
            "calls": len(mine),
            "waves": _waves(mine),
        }


def _summary(samples: list[dict[str, float]], latency: float) -> dict[str, Any]:
    totals = [s["total"] for s in samples]
    out: dict[str, Any] = ms_summary(totals)
    for part in ("ack", "pickup", "github"):
        out[f"{part}_p50_ms"] = round(statistics.median(s[part] for s in samples) * 1e3, 1)
    out["calls_median"] = statistics.median(s["calls"] for s in samples)
    out["sequential_round_trips_median"] = statistics.median(s["waves"] for s in samples)
    if latency:
        out["p50_round_trips"] = round(out["p50_ms"] / 1e3 / latency, 2)
        out["p90_round_trips"] = round(out["p90_ms"] / 1e3 / latency, 2)
    return out


def run(*, quick: bool = False) -> dict[str, Any]:
    samples = 3 if quick else 20
    rng = random.Random(3)
    results: dict[str, Any] = {
        "round_trip_ms": ROUND_TRIP * 1e3,
        "goal_ms": GOAL_SECONDS * 1e3,
        "goal_round_trips": GOAL_SECONDS / ROUND_TRIP,
    }
    with started_fake() as fake:
        scenario = Scenario(fake)
        with GateProcess(fake) as gate:
            probe = _Probe(fake, gate, scenario)
            with probe.clock:
                fake.latency = ROUND_TRIP
                cold = probe.sample(1, "auth")  # an auth PR also lists a docs file: both teams
                results["cold"] = {k: round(v, 4) for k, v in cold.items()}
                number = 1
                for latency in (ROUND_TRIP, 0.0):
                    fake.latency = latency
                    label = f"latency_{round(latency * 1e3)}ms"
                    results[label] = {}
                    for kind in ("docs", "auth"):
                        measured = []
                        for _ in range(samples):
                            number += 1
                            time.sleep(rng.uniform(0.0, 0.25))
                            measured.append(probe.sample(number, kind))
                        results[label][kind] = _summary(measured, latency)
            results["violations"] = len(fake.violations)
    lat = results[f"latency_{round(ROUND_TRIP * 1e3)}ms"]
    results["p50_ms"] = max(lat[k]["p50_ms"] for k in ("docs", "auth"))
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
