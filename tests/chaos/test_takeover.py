"""With the default settings, a killed worker's job is taken over within 15 seconds.

The lease is short (10 s) because the job's heartbeat renews it while work is in
progress; a 60 s lease left a pull request without its check run for a minute
after a worker died.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.fakegithub.server import FakeGitHub
from tests.harness import settings_env, wait_for
from tests.test_durability import gate_serve, opened, scenario
from tests.world import sha


@pytest.mark.slow
def test_a_killed_workers_job_is_taken_over_within_15_seconds_by_default(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    repo, installation, _base = scenario(fake_github, 2)
    env = settings_env(fake_github, tmp_path)
    del env["GATE_LEASE_SECONDS"]  # the default
    fake_github.latency = 0.5  # the worker is mid-job when it dies
    with gate_serve(env) as (proc, url):
        assert opened(url, repo, installation, 2) == 202
        wait_for(
            lambda: any("/pulls/2/" in c.path for c in fake_github.calls),
            what="the job to start",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = time.monotonic()
    fake_github.latency = 0.0
    with gate_serve(env):
        wait_for(
            lambda: fake_github.check_runs(repo, sha(2000)),
            timeout=max(0.0, killed + 15 - time.monotonic()),
            what="the job to be taken over within 15 s of the kill",
        )
    assert [r.conclusion for r in fake_github.check_runs(repo, sha(2000))] == ["action_required"]
