"""A flood of agent PRs against the running service: every final check run is right.

60 agent PRs, each opened, pushed 3 times, with reviews interleaved (an approval of
an intermediate head, made stale by the next push; for half of the app/auth PRs a
final approval), delivered by 8 concurrent senders while 4 workers drain the queue.
Correctness only (``benchmarks/bench_flood.py`` measures the same flood at 500 PRs):

- nothing lost: every delivery is acknowledged 202, none is dead-lettered, the
  queue drains, and every PR has a check run on its final head;
- every final check run has the conclusion the engine gives the PR's final state
  (computed from the fake's records, not through the service);
- coalescing: fewer evaluations than deliveries.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_flood import flood
from tests.fakegithub.server import FakeGitHub
from tests.harness import running, settings_env

PRS = 60
PUSHES = 3


@pytest.mark.slow
def test_flood_of_agent_prs_ends_with_every_final_check_run_correct(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    with running(settings_env(fake_github, tmp_path), workers=4) as svc:
        report = flood(fake_github, svc.url, prs=PRS, pushes=PUSHES, seed=5, timeout=90)

    assert report["drained"], "the queue did not drain"
    assert report["http_statuses"] == {"202": report["deliveries"]}
    # Every delivery is queued but comment-only reviews, which change no decision.
    assert report["ignored"] == report["comment_reviews"] > 0
    assert report["accepted"] + report["ignored"] == report["deliveries"]
    assert report["dead_letters"] == 0
    assert report["lost_deliveries"] == 0
    assert report["final_checked"] == PRS
    assert report["final_correct"] == PRS, report["wrong_examples"]
    # Both outcomes occur, so a service that always passed (or blocked) would fail here.
    assert set(report["final_conclusions"]) == {"success", "action_required"}
    assert report["evaluations"] < report["deliveries"]
