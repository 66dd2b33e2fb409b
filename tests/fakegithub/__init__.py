"""One shared fake GitHub for the whole test suite.

A real HTTP server on 127.0.0.1 (random port, background thread) that keeps
state like api.github.com and checks every request it receives against
GitHub's REST API description (``tests/fixtures/github/rest-api.json``).

Quick start (``pytest_plugins = ["tests.fakegithub.plugin"]`` in a conftest or
test module)::

    def test_something(fake_github: FakeGitHub) -> None:
        fake_github.add_repo("org/repo")          # App installed on org (id 1001)
        pull = fake_github.add_pull("org/repo", 7, files=["src/app.py"])
        ...  # run the product with GATE_GITHUB_API_URL=fake_github.base_url,
        ...  # app id fake_github.app_id, key fake_github.app_private_key_pem
        [run] = fake_github.check_runs("org/repo", pull.head_sha)

The fixture fails the test at teardown if ``fake_github.violations`` is not
empty: a request the description rejects (kind ``request``), a valid request
the fake has no route for (``unimplemented``, answered 501), or an answer of
the fake's own that breaks the description (``response``: a fake bug).

Modules: ``server`` (FakeGitHub and the request pipeline), ``state`` (the
test-facing setters), ``models`` (the records), ``spec`` (openapi-core and
response skeletons), ``deliveries`` (signed webhook deliveries), ``plugin``
(pytest fixtures), ``endpoints/`` (one module per API area).
"""

from __future__ import annotations

from tests.fakegithub.gitdata import blob_sha, fake_sha
from tests.fakegithub.models import (
    App,
    Call,
    CheckRun,
    Delivery,
    Installation,
    PRCommit,
    PRFile,
    Pull,
    Repo,
    Review,
    Ruleset,
    Team,
    Violation,
)
from tests.fakegithub.server import FakeGitHub

__all__ = [
    "App",
    "Call",
    "CheckRun",
    "Delivery",
    "FakeGitHub",
    "Installation",
    "PRCommit",
    "PRFile",
    "Pull",
    "Repo",
    "Review",
    "Ruleset",
    "Team",
    "Violation",
    "blob_sha",
    "fake_sha",
]
