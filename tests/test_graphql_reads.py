"""A head's pull requests read with one GraphQL query, and the REST path it falls back to.

In process, against the fake GitHub (its GraphQL answers from the same state as its
REST endpoints, and every query is validated against GitHub's schema): the calls
a decision costs, the same decision when GraphQL fails, lists longer than a page,
and a fork's pull request GitHub does not associate with its head.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gate.result import Decision, Outcome
from tests.fakegithub.front import InProcessTransport
from tests.fakegithub.models import Call, PRCommit, PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import settings_env
from tests.world import OWNERS, patch, sha
from webhooks import indexes
from webhooks.evaluate import Evaluator
from webhooks.facts import ScanCache
from webhooks.graphql_reader import Unusable, query_for, translate
from webhooks.publish import Publisher
from webhooks.service import Service, build
from webhooks.settings import load

_orgs = itertools.count(1)
GRAPHQL = "POST /graphql"
AGENT = "devin-ai-integration[bot]"


class Repo:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.org = f"gql{next(_orgs)}"
        self.name = f"{self.org}/app"
        self.base = sha(800_000 + next(_orgs))
        fake.add_repo(self.name)
        self.installation = fake.installation_id_for(self.name)
        fake.set_file(self.name, self.base, ".github/CODEOWNERS", OWNERS.format(org=self.org))
        fake.set_team(self.org, "security", ["sec1"])
        fake.set_team(self.org, "devs", ["dev1"])

    def pull(self, number: int, path: str, *, head: str, **extra: Any) -> None:
        extra.setdefault("base_sha", self.base)
        extra.setdefault("author", AGENT)
        self.fake.add_pull(
            self.name, number, head_sha=head, files=[PRFile(path, patch=patch())], **extra
        )


@pytest.fixture
async def service(fake_github: FakeGitHub, tmp_path: Path) -> AsyncIterator[Service]:
    settings = load(settings_env(fake_github, tmp_path))
    svc = await build(settings, github_transport=InProcessTransport(fake_github))
    yield svc
    await svc.close()


@pytest.fixture
def repo(fake_github: FakeGitHub) -> Repo:
    return Repo(fake_github)


async def decide(
    service: Service, repo: Repo, *, head: str, number: int | None, graphql: bool = True
) -> Decision | None:
    evaluator = Evaluator(service, scans=ScanCache(), graphql=graphql)
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=head, number=number
    )
    return await evaluator.commit(installation_id=repo.installation, repo=repo.name, head=found)


def split(calls: list[Call]) -> tuple[list[str], int]:
    """(REST operations, GraphQL queries) of a slice of the call log."""
    rest = sorted(str(c.operation) for c in calls if c.operation != GRAPHQL)
    return rest, sum(1 for c in calls if c.operation == GRAPHQL)


def rich_pull(repo: Repo, number: int, head: str) -> None:
    """An agent's pull request with everything the engine reads about people."""
    older = sha(number * 100 + 1)
    repo.pull(
        number,
        "app/auth/login.py",
        head=head,
        labels=["agent", "security"],
        assignees=["dev1"],
        body="Session: https://example.com/s/1\n",
        commits=[
            PRCommit(older, author_login=AGENT, author_type="Bot", message="Start"),
            PRCommit(
                head,
                author_login="dev1",
                committer_login="dev1",
                parents=[older],
                message=(
                    "Fix\n\nCo-authored-by: Helper <9+helper-bot[bot]@users.noreply.github.com>"
                ),
            ),
        ],
    )
    repo.fake.pull(repo.name, number).requested_users.append("sec1")
    repo.fake.pull(repo.name, number).requested_teams.append("security")
    repo.fake.add_review(repo.name, number, user="sec1", state="APPROVED")
    repo.fake.add_review(repo.name, number, user="dev1", state="CHANGES_REQUESTED")
    repo.fake.add_review(
        repo.name, number, user="review-bot[bot]", user_type="Bot", state="COMMENTED"
    )


async def test_a_decision_costs_two_rest_calls_and_one_graphql_query(
    service: Service, repo: Repo
) -> None:
    # Configuration, token and teams are read by the first decision; the second
    # shows what every later one costs.
    repo.pull(1, "docs/a.md", head=sha(11))
    first = await decide(service, repo, head=sha(11), number=1)
    assert first is not None
    await Publisher(service).publish(first, installation_id=repo.installation, delivery_id="d1")
    repo.pull(2, "docs/b.md", head=sha(21))
    before = len(repo.fake.calls)
    decision = await decide(service, repo, head=sha(21), number=2)
    assert decision is not None
    assert decision.outcome is Outcome.PASS
    await Publisher(service).publish(decision, installation_id=repo.installation, delivery_id="d2")
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1
    assert rest == [
        "GET /repos/{owner}/{repo}/pulls/{pull_number}/files",
        "POST /repos/{owner}/{repo}/check-runs",
    ]
    assert service.gh.stats.graphql_calls == 2
    assert service.gh.stats.graphql_points == 2  # one point a query
    assert service.gh.stats.graphql_remaining == repo.fake.graphql_rate_limit_remaining
    text = service.metrics.render().decode()
    assert 'merge_gate_github_graphql_calls_total{result="ok"} 2.0' in text
    assert "graphql" not in "".join(
        line for line in text.splitlines() if line.startswith("merge_gate_github_calls_total")
    )


async def test_reviewers_asked_cost_one_more_rest_call(service: Service, repo: Repo) -> None:
    repo.pull(1, "app/auth/b.py", head=sha(11))  # reads the owning team's members
    assert await decide(service, repo, head=sha(11), number=1) is not None
    repo.pull(3, "app/auth/a.py", head=sha(31))
    before = len(repo.fake.calls)
    decision = await decide(service, repo, head=sha(31), number=3)
    assert decision is not None
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    await Publisher(service).publish(decision, installation_id=repo.installation, delivery_id="d3")
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1
    assert rest == [
        "GET /repos/{owner}/{repo}/pulls/{pull_number}/files",
        "POST /repos/{owner}/{repo}/check-runs",
        "POST /repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers",
    ]


@pytest.mark.parametrize(
    "failure",
    [502, 403, "Something went wrong while executing your query."],
    ids=["502", "secondary-rate-limit", "errors"],
)
async def test_graphql_failing_gives_the_same_decision_through_rest(
    service: Service, repo: Repo, failure: int | str
) -> None:
    rich_pull(repo, 4, sha(41))
    by_graphql = await decide(service, repo, head=sha(41), number=4)
    assert by_graphql is not None
    repo.fake.fail_graphql(failure)
    before = len(repo.fake.calls)
    by_rest = await decide(service, repo, head=sha(41), number=4)
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1  # tried once, not retried
    assert "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls" in rest
    assert "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews" in rest
    assert by_rest == by_graphql
    assert service.gh.stats.graphql_failures == 1
    # The security owner's approval counts; the agent's commit governs the PR.
    assert by_graphql.outcome is Outcome.PASS
    assert by_graphql.agent


async def test_graphqls_budget_spent_gives_the_same_decision_through_rest(
    service: Service, repo: Repo
) -> None:
    rich_pull(repo, 4, sha(41))
    by_graphql = await decide(service, repo, head=sha(41), number=4)
    with repo.fake.lock:
        repo.fake.graphql_rate_limit_remaining = 0
    before = len(repo.fake.calls)
    by_rest = await decide(service, repo, head=sha(41), number=4)
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1
    assert "GET /repos/{owner}/{repo}/pulls/{pull_number}/commits" in rest
    assert by_rest == by_graphql
    assert service.gh.stats.graphql_remaining == 0


async def test_graphqls_budget_below_the_reserve_sends_reads_to_rest_until_its_reset(
    service: Service, repo: Repo
) -> None:
    rich_pull(repo, 4, sha(41))
    with repo.fake.lock:
        repo.fake.graphql_rate_limit_remaining = service.gh.budgets.reserve
    by_graphql = await decide(service, repo, head=sha(41), number=4)  # leaves reserve - 1
    before = len(repo.fake.calls)
    by_rest = await decide(service, repo, head=sha(41), number=4)
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 0  # not even tried: the points are kept for after the reset
    assert "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls" in rest
    assert by_rest == by_graphql
    # Jobs are not deferred for GraphQL: REST reads everything.
    assert service.gh.budgets.wait_until(repo.installation, now=time.time()) is None


async def test_rest_only_and_graphql_agree_on_a_bot_authored_commit(
    service: Service, repo: Repo
) -> None:
    # GraphQL's GitActor.user is null for an App; REST names it: the login comes back.
    repo.pull(
        5,
        "app/auth/a.py",
        head=sha(51),
        author="dev1",
        author_type="User",
        commits=[PRCommit(sha(51), author_login=AGENT, author_type="Bot")],
    )
    by_graphql = await decide(service, repo, head=sha(51), number=5)
    by_rest = await decide(service, repo, head=sha(51), number=5, graphql=False)
    assert by_graphql is not None
    assert by_graphql == by_rest
    assert by_graphql.agent  # governed because an agent authored a commit


async def test_more_reviews_than_a_page_are_completed_by_rest(service: Service, repo: Repo) -> None:
    repo.pull(6, "app/auth/a.py", head=sha(61))
    for i in range(130):
        repo.fake.add_review(repo.name, 6, user=f"user{i}", state="COMMENTED")
    # The one that counts is past GraphQL's first page.
    repo.fake.add_review(repo.name, 6, user="sec1", state="APPROVED")
    before = len(repo.fake.calls)
    by_graphql = await decide(service, repo, head=sha(61), number=6)
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1
    assert rest.count("GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews") == 2  # 2 pages
    assert "GET /repos/{owner}/{repo}/pulls/{pull_number}/commits" not in rest
    by_rest = await decide(service, repo, head=sha(61), number=6, graphql=False)
    assert by_graphql is not None
    assert by_graphql == by_rest
    assert by_graphql.outcome is Outcome.PASS


async def test_more_commits_than_github_lists_fail_closed_either_way(
    service: Service, repo: Repo
) -> None:
    head = sha(71_000 + 299)
    commits = [
        PRCommit(sha(71_000 + i), author_login=AGENT, author_type="Bot", message="step")
        for i in range(300)
    ]
    repo.pull(7, "docs/a.md", head=head, commits=commits)
    before = len(repo.fake.calls)
    by_graphql = await decide(service, repo, head=head, number=7)
    rest, _ = split(repo.fake.calls[before:])
    assert "GET /repos/{owner}/{repo}/pulls/{pull_number}/commits" in rest
    by_rest = await decide(service, repo, head=head, number=7, graphql=False)
    assert by_graphql is not None
    assert by_graphql == by_rest
    assert by_graphql.outcome is not Outcome.PASS
    assert "commits" in by_graphql.summary or any("commits" in n for n in by_graphql.notes)


async def test_more_commits_than_a_page_are_read_whole_by_rest(
    service: Service, repo: Repo
) -> None:
    head = sha(72_000 + 119)
    commits = [PRCommit(sha(72_000 + i), author_login="dev1") for i in range(119)]
    # The agent's commit is past GraphQL's first page.
    commits.append(PRCommit(head, author_login=AGENT, author_type="Bot"))
    repo.pull(8, "docs/a.md", head=head, commits=commits, author="dev1", author_type="User")
    by_graphql = await decide(service, repo, head=head, number=8)
    by_rest = await decide(service, repo, head=head, number=8, graphql=False)
    assert by_graphql is not None
    assert by_graphql == by_rest
    assert by_graphql.agent


async def test_more_pull_requests_at_a_commit_than_one_query_reads_go_to_rest(
    service: Service, repo: Repo
) -> None:
    head = sha(91)
    for number in range(10, 22):  # 12 > the 10 one query reads
        repo.pull(number, "docs/a.md", head=head, base_ref=f"b{number}", base_sha=sha(number))
    before = len(repo.fake.calls)
    decision = await decide(service, repo, head=head, number=None)
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1
    assert "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls" in rest
    assert decision is not None
    assert sorted(c.number for c in decision.children) == list(range(10, 22))


@pytest.mark.parametrize("named", [True, False], ids=["named", "delivered-before"])
async def test_a_fork_pull_request_github_does_not_associate_is_still_judged(
    service: Service, repo: Repo, named: bool
) -> None:
    repo.fake.associate_forks = False
    head = sha(95)
    repo.pull(30, "app/auth/a.py", head=head, head_repo="stranger/app")
    repo.pull(31, "docs/a.md", head=head, base_ref="side", base_sha=sha(96))
    await indexes.add_head_pull(service.store, repo=repo.name, number=30, head=head, owner="t")
    before = len(repo.fake.calls)
    decision = await decide(service, repo, head=head, number=30 if named else None)
    rest, graphql = split(repo.fake.calls[before:])
    assert graphql == 1
    assert "GET /repos/{owner}/{repo}/pulls/{pull_number}" not in rest
    assert "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls" not in rest
    assert decision is not None
    assert sorted(c.number for c in decision.children) == [30, 31]
    # The fork's blocked pull request is part of its commit's decision.
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    by_rest = await decide(service, repo, head=head, number=30 if named else None, graphql=False)
    assert by_rest == decision


async def test_a_named_pull_request_that_moved_is_read_at_its_new_head(
    service: Service, repo: Repo
) -> None:
    repo.pull(40, "docs/a.md", head=sha(401))
    repo.fake.push(repo.name, 40, sha(402), files=[PRFile("docs/b.md", patch=patch())])
    evaluator = Evaluator(service, scans=ScanCache())
    before = len(repo.fake.calls)
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=sha(401), number=40
    )
    assert found.sha == sha(402)
    assert [p["number"] for p in found.pulls] == [40]
    _, graphql = split(repo.fake.calls[before:])
    assert graphql == 2


# --- translation, without a server ---------------------------------------------------


def _node(**extra: Any) -> dict[str, Any]:
    empty = {"totalCount": 0, "nodes": []}
    node: dict[str, Any] = {
        "number": 1,
        "state": "OPEN",
        "isDraft": False,
        "body": None,
        "changedFiles": 1,
        "headRefOid": sha(1),
        "headRefName": "f",
        "headRepository": {"nameWithOwner": "o/r"},
        "baseRefName": "main",
        "baseRefOid": sha(2),
        "author": {"__typename": "Bot", "login": "dependabot"},
        "labels": empty,
        "assignees": empty,
        "reviewRequests": empty,
        "reviews": empty,
        "commits": empty,
    }
    node.update(extra)
    return node


def _data(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {
        "repository": {
            "object": {"associatedPullRequests": {"totalCount": len(nodes), "nodes": list(nodes)}}
        }
    }


def test_an_apps_login_gets_its_bot_suffix_back() -> None:
    found = translate(_data(_node()), sha=sha(1), numbers=())
    assert found.pulls[0]["user"] == {"login": "dependabot[bot]", "type": "Bot"}


def test_a_commit_by_an_app_is_attributed_by_its_noreply_address() -> None:
    commit = {
        "commit": {
            "oid": sha(1),
            "message": "m",
            "author": {"name": "x", "email": "49699333+dependabot[bot]@users.noreply.github.com"},
            "committer": {"name": "y", "email": "someone@example.com", "user": None},
        }
    }
    found = translate(
        _data(_node(commits={"totalCount": 1, "nodes": [commit]})), sha=sha(1), numbers=()
    )
    lists = found.lists[1]
    assert lists.commits is not None
    assert lists.commits[0]["author"] == {"login": "dependabot[bot]", "type": "Bot"}
    assert lists.commits[0]["committer"] is None


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"repository": None},
        _data(_node(labels={"totalCount": 101, "nodes": []})),
        _data(_node(reviewRequests={"totalCount": 2, "nodes": []})),
        _data(_node(headRefOid=None)),
        _data(_node(reviews={"totalCount": 1, "nodes": [{"state": "APPROVED"}]})),
        {"repository": {"object": {"associatedPullRequests": {"totalCount": 11, "nodes": []}}}},
    ],
    ids=["no-data", "no-repo", "labels-cut", "requests-cut", "no-head", "bad-review", "too-many"],
)
def test_an_answer_that_cannot_stand_for_rest_is_refused(data: Any) -> None:
    with pytest.raises(Unusable):
        translate(data, sha=sha(1), numbers=())


def test_a_named_pull_request_missing_from_the_answer_is_refused() -> None:
    with pytest.raises(Unusable):
        translate(_data(), sha=sha(1), numbers=(5,))


def test_the_query_costs_one_point(fake_github: FakeGitHub) -> None:
    from tests.fakegithub.graphql import cost

    assert cost(query_for(range(1, 11)), {}) == 1
