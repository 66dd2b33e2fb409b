"""Per-installation rate-limit budgets: bookkeeping, and jobs waiting for the reset.

The bookkeeping is checked on header values as GitHub sends them; the deferral
end to end, on a running service against the fake GitHub, whose answers carry
the rate-limit headers and whose budget the test sets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakegithub.models import PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env
from tests.world import World
from webhooks.budget import RESET_MARGIN, Budgets

NOW = 1_800_000_000.0
RESET = NOW + 600


def headers(
    remaining: int, *, reset: float = RESET, resource: str | None = "core"
) -> dict[str, str]:
    found = {"x-ratelimit-remaining": str(remaining), "x-ratelimit-reset": str(int(reset))}
    if resource is not None:
        found["x-ratelimit-resource"] = resource
    return found


def test_a_job_waits_for_the_reset_once_its_installation_is_below_the_reserve() -> None:
    budgets = Budgets(reserve=50)
    budgets.note(7, headers(50))
    assert budgets.wait_until(7, now=NOW) is None
    assert not budgets.spent(now=NOW)
    budgets.note(7, headers(49))
    assert budgets.spent(now=NOW)
    assert budgets.wait_until(7, now=NOW) == RESET + RESET_MARGIN
    assert budgets.wait_until(8, now=NOW) is None  # another installation has its own
    assert budgets.wait_until(7, now=RESET) is None  # the window has reset
    assert not budgets.spent(now=RESET)


def test_rest_and_graphql_are_budgeted_apart() -> None:
    budgets = Budgets(reserve=50)
    budgets.note(7, headers(4000, resource="core"))
    budgets.note(7, headers(10, reset=RESET + 60, resource="graphql"))
    assert budgets.remaining(7, "core") == 4000
    assert budgets.remaining(7, "graphql") == 10
    # a job may need both: it waits for the spent one's reset
    assert budgets.wait_until(7, now=NOW) == RESET + 60 + RESET_MARGIN
    budgets.note(7, headers(4999, reset=RESET + 3600, resource="core"))
    assert budgets.remaining(7, "graphql") == 10  # a REST answer says nothing of GraphQL


def test_answers_arriving_out_of_order_keep_the_lowest_count_of_a_window() -> None:
    budgets = Budgets(reserve=50)
    budgets.note(7, headers(40))
    budgets.note(7, headers(45))  # sent before the answer that said 40
    assert budgets.remaining(7) == 40
    budgets.note(7, headers(100, reset=RESET - 3600))  # from the window before
    assert budgets.remaining(7) == 40
    budgets.note(7, headers(5000, reset=RESET + 3600))  # the next window
    assert budgets.remaining(7) == 5000


def test_answers_without_usable_headers_change_nothing() -> None:
    budgets = Budgets(reserve=50)
    budgets.note(7, {})
    budgets.note(7, {"x-ratelimit-remaining": "-1", "x-ratelimit-reset": str(int(RESET))})
    budgets.note(7, {"x-ratelimit-remaining": "3", "x-ratelimit-reset": "soon"})
    budgets.note(None, headers(0))  # the App's own (JWT) limit is not an installation's
    assert budgets.remaining(7) is None
    assert not budgets.spent(now=NOW)
    budgets.note(7, headers(3, resource=None))  # no resource named: REST's core
    assert budgets.remaining(7, "core") == 3


def test_installations_tracked_are_bounded() -> None:
    budgets = Budgets(reserve=50, max_installations=2)
    for installation in (1, 2, 3):
        budgets.note(installation, headers(10))
    assert budgets.remaining(1) is None
    assert budgets.remaining(3) == 10


# -- end to end ---------------------------------------------------------------------


@pytest.fixture
def service(fake_github: FakeGitHub, tmp_path: Path) -> Iterator[RunningService]:
    env = settings_env(fake_github, tmp_path, GATE_RATE_LIMIT_RESERVE="50")
    with running(env, workers=2) as svc:
        yield svc


def test_a_job_of_a_spent_installation_waits_in_the_queue_for_the_reset(
    fake_github: FakeGitHub, service: RunningService
) -> None:
    world = World(fake_github, service)
    docs = [PRFile("docs/guide.md", patch="@@ -0,0 +1 @@\n+hello", additions=1)]
    reset = int(time.time()) + 4
    with fake_github.lock:
        fake_github.rate_limit_remaining = 45  # below the reserve: this job shows it
        fake_github.rate_limit_reset = reset
    world.open(1, docs, head="a" * 40)
    world.run("a" * 40)  # the first job had no answers to go by: it ran

    world.open(2, docs, head="b" * 40)
    # deferred, not run: no check run, the delivery stays queued, no worker holds it
    while time.time() < reset - 0.5:
        assert fake_github.check_runs(world.repo, "b" * 40) == []
        assert service.call(lambda s: s.store.depth()) == 1
        time.sleep(0.1)
    with fake_github.lock:  # GitHub's window resets
        fake_github.rate_limit_remaining = fake_github.rate_limit
        fake_github.rate_limit_reset = int(time.time()) + 3600
    run = world.run("b" * 40)
    assert run.conclusion == "success"
    assert time.time() >= reset + RESET_MARGIN
