"""SIGTERM stops ``gate serve`` gracefully: workers drain, the audit log checkpoints."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from benchmarks.common import Scenario, sha
from tests.chaos.drill import WEBHOOK_PATH, cluster, gate_argv
from tests.fakegithub.server import FakeGitHub
from tests.harness import wait_for


@pytest.mark.slow
def test_sigterm_lets_gate_serve_close_its_audit_log_with_a_checkpoint(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    scenario = Scenario(fake_github)
    scenario.open_pull(1, "docs", sha(1000))
    with cluster(fake_github, tmp_path, mode="sqlite") as made:
        [serve] = made.slots
        body, headers = scenario.delivery("pull_request", "opened", number=1, head=sha(1000))
        answer = httpx.post(serve.url + WEBHOOK_PATH, content=body, headers=headers, timeout=10)
        assert answer.status_code == 202
        wait_for(lambda: fake_github.check_runs(scenario.repo, sha(1000)), what="the check run")
        serve.stop()
        assert serve.proc is not None
        # Killed by its own re-raised SIGTERM, it exited -15 before closing anything.
        assert serve.proc.returncode == 0
    verified = subprocess.run(
        gate_argv("audit", "verify", "--data-dir", str(made.data_dir)),
        env=made.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert "1 checkpoint(s) verified" in verified.stdout
    assert "not covered by a signed checkpoint" not in verified.stderr
