"""`gate redeliver` against the fake GitHub, as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakegithub.server import FakeGitHub
from tests.harness import settings_env


def test_redelivers_each_guid_without_a_successful_attempt(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake_github.add_delivery("pull_request", "opened", guid="ok", status_code=202)
    first = fake_github.add_delivery(
        "pull_request", "synchronize", guid="failed-then-ok", status_code=503
    )
    fake_github.add_delivery(
        "pull_request", "synchronize", guid="failed-then-ok", status_code=202, redelivery=True
    )
    fake_github.add_delivery("pull_request_review", "submitted", guid="lost", status_code=503)
    latest_lost = fake_github.add_delivery(
        "pull_request_review", "submitted", guid="lost", status_code=0, redelivery=True
    )
    fake_github.add_delivery(
        "check_run", "rerequested", guid="too-old", status_code=500, delivered_at=old
    )
    for _ in range(120):  # enough to need a second page
        fake_github.add_delivery("installation", "created", status_code=202)
    env = {**os.environ, **settings_env(fake_github, tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "webhooks", "redeliver", "--since", "24h"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 never succeeded" in done.stdout
    posts = fake_github.calls_to("POST", "/app/hook/deliveries/{delivery_id}/attempts")
    assert [c.path for c in posts] == [f"/app/hook/deliveries/{latest_lost}/attempts"]
    assert first != latest_lost
    assert len(fake_github.calls_to("GET", "/app/hook/deliveries")) >= 2


def test_bad_duration_is_a_usage_error(fake_github: FakeGitHub, tmp_path: Path) -> None:
    env = {**os.environ, **settings_env(fake_github, tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "webhooks", "redeliver", "--since", "yesterday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "90m, 24h or 3d" in done.stderr
