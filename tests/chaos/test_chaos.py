"""Faults together: SIGKILLs, a Redis restart and a flaky GitHub, and still the right answer.

The drill (:mod:`tests.chaos.drill`) runs real receivers and workers while a
supervisor kills them, Redis restarts once and a fifth of GitHub's answers are
faults. At the end: every pull request's final head has exactly one
``merge-gate`` check run with the engine's conclusion, no head the engine blocks
has a passing run, every delivery was acknowledged and its pull request decided,
nothing was dead-lettered, and ``gate audit verify`` accepts the log.

``python -m benchmarks --only chaos`` runs the same drill ten times larger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.drill import Totals, drill
from tests.fakegithub.server import FakeGitHub


def _report(totals: Totals, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print("\n" + totals.line())


def _holds(totals: Totals) -> None:
    assert totals.errors == [], totals.errors
    assert totals.lost == [], totals.lost
    assert totals.wrong == [], totals.wrong
    assert totals.duplicates == [], totals.duplicates
    assert totals.unsafe == [], totals.unsafe
    assert totals.dead_letters == 0
    assert totals.queue_depth == 0
    assert totals.audit[0] == 0, totals.audit
    assert totals.acknowledged == totals.distinct
    # The faults really happened, of every kind.
    assert set(totals.faults) == {"502", "503", "secondary_rate_limit", "timeout"}
    assert totals.check_runs >= totals.prs


@pytest.mark.slow
def test_two_receivers_two_workers_on_redis_survive_kills_faults_and_a_redis_restart(
    fake_github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.validate_responses = False  # the fake's own answers: 1-7 ms of CPU each
    totals = drill(fake_github, tmp_path, mode="redis", prs=50, sends=200, seed=1, spread=12.0)
    _report(totals, capsys)
    _holds(totals)
    assert totals.sends == 200
    assert totals.kills >= 3  # one every 1.5-4.5 s for 18 s, less the Redis restart
    assert totals.redis_restarts == 1
    # While Redis was down the receivers answered 503, and took deliveries again after.
    assert totals.refused_and_resent.get("503", 0) > 0


@pytest.mark.slow
def test_one_gate_serve_on_sqlite_survives_kills_and_faults(
    fake_github: FakeGitHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_github.validate_responses = False
    totals = drill(fake_github, tmp_path, mode="sqlite", prs=12, sends=48, seed=2, spread=6.0)
    _report(totals, capsys)
    _holds(totals)
    assert totals.kills >= 2
