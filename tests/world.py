"""One repository per test against a running merge-gate and the fake GitHub.

A module using ``world`` gets a module-scoped ``service`` with the default settings,
or defines its own ``service`` fixture (a ``tests.harness.RunningService``)
configured as it needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakegithub import deliveries
from tests.fakegithub.models import PRFile, Review
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env, wait_for

OWNERS = """\
*                 @{org}/devs
/app/auth/        @{org}/security
/app/billing/     @{org}/billing
/migrations/      @{org}/dba
/.github/         @{org}/security
"""
_orgs = itertools.count(1)
#: Every GitHub operation the service called in the end-to-end tests (for the manifest test).
OBSERVED: set[tuple[str, str]] = set()


class World:
    """One repository per test: caches keyed by repo never see another test's state."""

    def __init__(self, fake: FakeGitHub, svc: RunningService) -> None:
        self.fake = fake
        self.svc = svc
        self.org = f"org{next(_orgs)}"
        self.repo = f"{self.org}/app"
        self.base = f"{next(_orgs):040x}"
        fake.add_repo(self.repo)
        self.installation = fake.installation_id_for(self.repo)
        fake.set_file(self.repo, self.base, ".github/CODEOWNERS", OWNERS.format(org=self.org))
        for team, members in {
            "devs": ["dev1"],
            "security": ["sec1"],
            "billing": ["bill1"],
            "dba": ["dba1"],
        }.items():
            fake.set_team(self.org, team, members)

    def add_pull(self, number: int, files: list[PRFile], *, head: str, **extra: Any) -> None:
        """A PR into this world's base (or ``base_sha`` given), without a delivery."""
        extra.setdefault("base_sha", self.base)
        self.fake.add_pull(self.repo, number, head_sha=head, files=files, **extra)

    def deliver_patched(
        self,
        event: str,
        action: str,
        *,
        node: str,
        fields: dict[str, Any],
        sender: str | None = None,
        top: dict[str, Any] | None = None,
    ) -> int:
        """Deliver GitHub's example for ``event``: its ``node`` updated with ``fields``,
        then top-level keys replaced by ``top``."""
        payload = deliveries.build(
            event, action, repo=self.repo, installation_id=self.installation, sender=sender
        )
        payload[node].update(fields)
        payload.update(top or {})
        return self.svc.deliver(event, action, payload=payload).status_code

    def open(
        self,
        number: int,
        files: list[PRFile],
        *,
        head: str,
        author: str = "devin-ai-integration[bot]",
        author_type: str = "Bot",
        draft: bool = False,
        **extra: Any,
    ) -> None:
        self.add_pull(
            number, files, head=head, author=author, author_type=author_type, draft=draft, **extra
        )
        response = self.deliver(
            "pull_request",
            "opened",
            number=number,
            head_sha=head,
            author=author,
            author_type=author_type,
        )
        assert response.status_code == 202, response.text

    def deliver(self, event: str, action: str | None = None, **patches: Any) -> httpx.Response:
        if event == "pull_request_review" and action == "submitted" and "number" in patches:
            # GitHub's delivery carries the review just submitted: the pull
            # request's latest review in the fake, as a test added it.
            payload = deliveries.build(
                event, action, repo=self.repo, installation_id=self.installation, **patches
            )
            latest = self.latest_review(int(patches["number"]))
            if latest is not None:
                deliveries.set_review(
                    payload,
                    user=latest.user,
                    user_type=latest.user_type,
                    state=latest.state,
                    commit_id=latest.commit_id,
                    review_id=latest.id,
                )
            return self.svc.deliver(event, action, payload=payload)
        return self.svc.deliver(
            event, action, repo=self.repo, installation_id=self.installation, **patches
        )

    def latest_review(self, number: int) -> Review | None:
        with self.fake.lock:
            mine = [
                r
                for r in self.fake.reviews
                if r.repo.lower() == self.repo.lower() and r.number == number
            ]
        return mine[-1] if mine else None

    def settle(self) -> None:
        wait_for(lambda: self.svc.call(lambda s: s.store.depth()) == 0, what="queue to drain")

    def run(self, head: str, conclusion: str | None = None) -> Any:
        def found() -> Any:
            runs = self.fake.check_runs(self.repo, head)
            if runs and (conclusion is None or runs[-1].conclusion == conclusion):
                return runs[-1]
            return None

        wait_for(found, what=f"check run {conclusion or ''} on {head[:8]}")
        # The job ends after everything it writes (review requests go out beside
        # the check run): wait for it, then read the run again.
        self.settle()
        return wait_for(found, what=f"check run {conclusion or ''} on {head[:8]}")


@pytest.fixture(scope="module")
def service(
    fake_github_server: FakeGitHub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """The service with the default settings; a module may define its own instead."""
    env = settings_env(fake_github_server, tmp_path_factory.mktemp("data"))
    with running(env) as svc:
        yield svc


@pytest.fixture
def world(fake_github: FakeGitHub, service: RunningService) -> Iterator[World]:
    world = World(fake_github, service)
    yield world
    world.settle()  # nothing of this test may reach the next one
    OBSERVED.update(tuple(c.operation.split(" ", 1)) for c in fake_github.calls if c.operation)


def sha(n: int) -> str:
    return f"{n:040x}"


def patch(lines: int = 1) -> str:
    return f"@@ -0,0 +1,{lines} @@\n" + "\n".join(f"+line {i}" for i in range(lines))
