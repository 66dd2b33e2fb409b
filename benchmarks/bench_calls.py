"""GitHub calls per decision, against the fake GitHub, compared with the minimum.

A real ``gate serve`` decides one event at a time (the queue is empty between
steps, so nothing coalesces) and the fake's call log is sliced per step:

- ``first_cold``: the first PR the service sees (installation token, policy and
  CODEOWNERS, team members are all read here once);
- ``first``: an agent PR opened in the same repository, per kind (docs only, app
  logic, auth code), configuration cached;
- ``review``: an approval of that PR's head (``pull_request_review.submitted``);
- ``push``: a new head (``pull_request.synchronize``).

The minimum a decision needs, configuration cached: one GraphQL query (the head's
pull requests with their reviews and commits), and by REST the files list (patches
are REST-only) and one check-run write, plus one review request when the decision
asks for reviewers it has not asked for yet (the engine's verdict on the same state
says so). REST and GraphQL are reported apart: each has its own budget (REST:
5,000 requests an hour per installation; GraphQL: 5,000 points, and this query
costs 1). A 304 (ETag revalidation) is a call and a round trip but costs no rate
limit.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from benchmarks.common import (
    KINDS,
    GateProcess,
    Scenario,
    parse_metrics,
    sha,
    started_fake,
    wait_until,
)
from gate.result import Outcome
from tests.fakegithub.server import FakeGitHub

REST_MINIMUM = 2  # list files + one check-run write
GRAPHQL_MINIMUM = 1  # the head's pull requests, reviews and commits
GRAPHQL = "POST /graphql"


def _decided(gate: GateProcess, decisions: float) -> bool:
    figures = parse_metrics(gate.metrics_text())
    return (
        figures.get("merge_gate_queue_depth", 1) == 0
        and figures.get("merge_gate_decisions_total", 0) >= decisions
    )


class _Counter:
    """Delivers one event, waits for its decision, and counts what it cost."""

    def __init__(self, fake: FakeGitHub, gate: GateProcess, scenario: Scenario) -> None:
        self.fake = fake
        self.gate = gate
        self.scenario = scenario
        self.decisions = parse_metrics(gate.metrics_text()).get("merge_gate_decisions_total", 0)

    def step(self, event: str, action: str, number: int, head: str) -> dict[str, Any]:
        # What the decision needs is judged on the state before it: once the service
        # requested reviewers, the PR lists them and the engine asks nobody again.
        decision = self.scenario.expected_decision(number)
        asks = bool(decision.request_users or decision.request_teams)
        rest_needed = REST_MINIMUM + int(asks and decision.outcome is not Outcome.DENIED)
        before = len(self.fake.calls)
        body, headers = self.scenario.delivery(event, action, number=number, head=head)
        response = self.gate.post(body, headers)
        if response.status_code != 202:
            raise RuntimeError(f"delivery refused: {response.status_code} {response.text}")
        self.decisions += 1
        wait_until(
            lambda: _decided(self.gate, self.decisions), timeout=60, what=f"decision on #{number}"
        )
        calls = self.fake.calls[before:]
        rest = [c for c in calls if c.operation != GRAPHQL]
        needed = rest_needed + GRAPHQL_MINIMUM
        return {
            "calls": len(calls),
            "rest_calls": len(rest),
            "graphql_calls": len(calls) - len(rest),
            "rate_limited_calls": sum(1 for c in rest if c.status != 304),
            "rest_minimum": rest_needed,
            "minimum": needed,
            "ratio": round(len(calls) / needed, 2),
            "by_operation": dict(Counter(c.operation or c.path for c in calls)),
        }


def _mean(steps: list[dict[str, Any]], key: str) -> float:
    return round(statistics.fmean(s[key] for s in steps), 2)


def run(*, quick: bool = False) -> dict[str, Any]:
    per_kind = 1 if quick else 3
    steps: dict[str, list[dict[str, Any]]] = {"first": [], "review": [], "push": []}
    with started_fake() as fake:
        scenario = Scenario(fake)
        with GateProcess(fake) as gate:
            counter = _Counter(fake, gate, scenario)
            scenario.open_pull(1, "docs", sha(1_000))
            cold = counter.step("pull_request", "opened", 1, sha(1_000))
            number = 1
            for _ in range(per_kind):
                for kind in KINDS:
                    number += 1
                    head = sha(number * 1000)
                    scenario.open_pull(number, kind, head)
                    steps["first"].append(counter.step("pull_request", "opened", number, head))
                    if kind == "docs":
                        continue
                    scenario.review(number, kind, head)
                    steps["review"].append(
                        counter.step("pull_request_review", "submitted", number, head)
                    )
                    new_head = sha(number * 1000 + 1)
                    scenario.push(number, kind, new_head, 1)
                    steps["push"].append(
                        counter.step("pull_request", "synchronize", number, new_head)
                    )
            violations = len(fake.violations)
            points = fake.graphql_rate_limit - fake.graphql_rate_limit_remaining
    summary: dict[str, Any] = {
        "first_cold": cold,
        "violations": violations,
        "graphql_points": points,
    }
    for name, measured in steps.items():
        summary[name] = {
            "samples": len(measured),
            "calls_mean": _mean(measured, "calls"),
            "rest_calls_mean": _mean(measured, "rest_calls"),
            "graphql_calls_mean": _mean(measured, "graphql_calls"),
            "rate_limited_calls_mean": _mean(measured, "rate_limited_calls"),
            "minimum_mean": _mean(measured, "minimum"),
            "rest_minimum_mean": _mean(measured, "rest_minimum"),
            "ratio": round(_mean(measured, "calls") / _mean(measured, "minimum"), 2),
            "by_operation": dict(
                sum((Counter(s["by_operation"]) for s in measured), Counter()).most_common()
            ),
        }
    return summary


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
