"""The GitHub adapter asks again when an answer is lost, where asking again is safe.

A read whose connection dropped (a timeout, as the client sees it) is retried in
the request, as a 5xx is; so is the installation token's request when GitHub
answers it 5xx. A POST whose answer was lost is not: it may have acted (the fake's
dropped requests do), and repeating it could create a second check run. The job
then backs off and its retry looks the run up.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fakegithub.server import FakeGitHub
from webhooks.github import Backoff, GitHubApp

REPO = "org/retry"


def _app(fake: FakeGitHub) -> GitHubApp:
    return GitHubApp(
        app_id=fake.app_id, private_key=fake.app_private_key_pem, base_url=fake.base_url
    )


async def _get_repo(fake: FakeGitHub, *, warm: bool) -> int:
    gh = _app(fake)
    installation = fake.installation_id_for(REPO)
    try:
        if warm:  # the token is fetched and cached by a first call
            await gh.call("GET", f"/repos/{REPO}", installation_id=installation)
            fake.drop_next(2)
        else:
            fake.fail_next(2, status=503)  # the token's request, twice
        answer = await gh.call("GET", f"/repos/{REPO}", installation_id=installation)
        return answer.status
    finally:
        await gh.close()


@pytest.mark.parametrize("warm", [True, False], ids=["dropped-read", "token-5xx"])
def test_a_lost_read_or_a_failed_token_request_is_asked_again(
    fake_github: FakeGitHub, warm: bool
) -> None:
    fake_github.add_repo(REPO)
    assert asyncio.run(_get_repo(fake_github, warm=warm)) == 200
    assert fake_github.faults == []  # both faults were met, and retried past


def test_a_post_whose_answer_was_lost_is_not_repeated(fake_github: FakeGitHub) -> None:
    fake_github.add_repo(REPO)
    pull = fake_github.add_pull(REPO, 1, files=["a.py"])
    installation = fake_github.installation_id_for(REPO)

    async def create() -> None:
        gh = _app(fake_github)
        try:
            await gh.call("GET", f"/repos/{REPO}", installation_id=installation)
            fake_github.drop_next(1)
            await gh.call(
                "POST",
                f"/repos/{REPO}/check-runs",
                installation_id=installation,
                json={"name": "merge-gate", "head_sha": pull.head_sha},
            )
        finally:
            await gh.close()

    with pytest.raises(Backoff, match="cannot reach GitHub"):
        asyncio.run(create())
    assert len(fake_github.check_runs(REPO, pull.head_sha)) == 1
