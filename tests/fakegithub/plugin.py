"""pytest plugin: ``pytest_plugins = ["tests.fakegithub.plugin"]`` in a conftest.

Fixtures:

- ``fake_github_server`` (session): one started :class:`FakeGitHub` per test
  session; the port stays the same for the whole run.
- ``fake_github`` (function): that server, ``reset()`` to a fresh world before
  the test; at teardown the test fails if the fake recorded any violation
  (a request GitHub's API description rejects, or one the fake cannot answer).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakegithub.server import FakeGitHub


@pytest.fixture(scope="session")
def fake_github_server() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def fake_github(fake_github_server: FakeGitHub) -> Iterator[FakeGitHub]:
    fake_github_server.reset()
    yield fake_github_server
    violations = list(fake_github_server.violations)
    # Reset now so a failing test's leftovers cannot leak into the next one.
    fake_github_server.reset()
    assert violations == [], "FakeGitHub recorded violations:\n" + "\n".join(
        f"- [{v.kind}] {v.method} {v.path}: {v.message}" for v in violations
    )
