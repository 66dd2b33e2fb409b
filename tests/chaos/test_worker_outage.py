"""A worker outlives a Redis outage that hits it mid-job.

The job fails while Redis is down, and failing it needs Redis too: that error
used to end the worker's loop, leaving a live process that never claimed again.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from benchmarks.common import Scenario, sha
from tests.chaos.drill import RedisServer
from tests.fakegithub.server import FakeGitHub
from tests.harness import running, settings_env, wait_for


@pytest.mark.slow
def test_a_worker_keeps_claiming_after_redis_went_away_under_a_job(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    scenario = Scenario(fake_github)
    scenario.open_pull(1, "docs", sha(1000))
    scenario.open_pull(2, "docs", sha(2000))
    redis = RedisServer(tmp_path)
    redis.start()
    env = settings_env(
        fake_github,
        tmp_path / "data",
        GATE_REDIS_URL=redis.url,
        GATE_REDIS_PREFIX="outage",
        GATE_LEASE_SECONDS="3",
    )
    try:
        with running(env, workers=1) as svc:
            fake_github.latency = 0.3  # the job is mid-flight when Redis dies
            first = scenario.delivery("pull_request", "opened", number=1, head=sha(1000))
            assert (
                svc.http.post(
                    f"{svc.url}/api/github/webhooks", content=first[0], headers=first[1]
                ).status_code
                == 202
            )
            wait_for(lambda: fake_github.calls, what="the job to reach GitHub")
            redis.kill()
            # The job fails on the store, and so does recording its failure.
            time.sleep(2.5)
            redis.start()
            fake_github.latency = 0.0
            second = scenario.delivery("pull_request", "opened", number=2, head=sha(2000))
            wait_for(
                lambda: (
                    svc.http.post(
                        f"{svc.url}/api/github/webhooks", content=second[0], headers=second[1]
                    ).status_code
                    in (200, 202)
                ),
                what="the receiver to take deliveries again",
            )
            for number in (1, 2):
                wait_for(
                    lambda n=number: fake_github.check_runs(scenario.repo, sha(n * 1000)),
                    timeout=30,
                    what=f"a check run for #{number} from the one worker",
                )
    finally:
        redis.kill()
