"""The service's read and write halves in process: ``evaluate`` reads, ``publish`` writes.

The fake GitHub answers at the GitHub client's call seam (no socket), with the
same spec validation and state as over HTTP, so each test takes milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gate.result import DecisionKind, Outcome
from gate.statement import verify_record
from tests.fakegithub.front import InProcessTransport
from tests.fakegithub.models import PRCommit, PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import settings_env
from tests.world import OWNERS, patch, sha
from webhooks import events
from webhooks.evaluate import Evaluator
from webhooks.facts import ScanCache
from webhooks.jobs import Jobs
from webhooks.publish import Publisher
from webhooks.records import StoredDecision
from webhooks.service import Service, build
from webhooks.settings import load
from webhooks.store import Delivery, Job

_orgs = itertools.count(1)


class Repo:
    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.org = f"inproc{next(_orgs)}"
        self.name = f"{self.org}/app"
        self.base = sha(900_000 + next(_orgs))
        fake.add_repo(self.name)
        self.installation = fake.installation_id_for(self.name)
        fake.set_file(self.name, self.base, ".github/CODEOWNERS", OWNERS.format(org=self.org))
        fake.set_team(self.org, "security", ["sec1"])
        fake.set_team(self.org, "devs", ["dev1"])

    def pull(self, number: int, path: str, *, head: str, **extra: object) -> None:
        extra.setdefault("base_sha", self.base)
        self.fake.add_pull(
            self.name, number, head_sha=head, files=[PRFile(path, patch=patch())], **extra
        )

    def reads(self) -> int:
        return sum(1 for c in self.fake.calls if c.method == "GET" and self.name in c.path)

    def writes(self) -> list[str]:
        return [
            f"{c.method} {c.path}"
            for c in self.fake.calls
            if c.method != "GET" and self.name in c.path
        ]


@pytest.fixture
async def service(fake_github_server: FakeGitHub, tmp_path: Path) -> AsyncIterator[Service]:
    settings = load(settings_env(fake_github_server, tmp_path))
    svc = await build(settings, github_transport=InProcessTransport(fake_github_server))
    yield svc
    await svc.close()


@pytest.fixture
def repo(fake_github_server: FakeGitHub) -> Repo:
    return Repo(fake_github_server)


async def test_evaluate_finds_every_pr_of_a_head_in_one_call_and_writes_nothing(
    service: Service, repo: Repo
) -> None:
    head = sha(1)
    repo.pull(1, "app/auth/a.py", head=head)
    repo.pull(2, "app/auth/a.py", head=head, base_ref="side", base_sha=sha(2))
    evaluator = Evaluator(service, scans=ScanCache())
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=head, number=1
    )
    assert [int(p["number"]) for p in found.pulls] == [1, 2]
    assert repo.reads() == 1
    decision = await evaluator.commit(installation_id=repo.installation, repo=repo.name, head=found)
    assert decision is not None
    assert decision.kind is DecisionKind.COMMIT
    assert [c.number for c in decision.children] == [1, 2]
    assert repo.writes() == []


async def test_a_moved_head_is_followed_to_the_current_one(service: Service, repo: Repo) -> None:
    repo.pull(3, "docs/a.md", head=sha(31))
    repo.fake.push(repo.name, 3, sha(32), files=[PRFile("docs/a.md", patch=patch(2))])
    evaluator = Evaluator(service, scans=ScanCache())
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=sha(31), number=3
    )
    assert found.sha == sha(32)


async def test_publish_signs_stores_checks_and_audits_each_pr(service: Service, repo: Repo) -> None:
    head = sha(41)
    repo.pull(4, "app/auth/a.py", head=head)
    repo.pull(5, "docs/a.md", head=head, base_ref="side", base_sha=sha(42))
    evaluator = Evaluator(service, scans=ScanCache())
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=head, number=4
    )
    decision = await evaluator.commit(installation_id=repo.installation, repo=repo.name, head=found)
    assert decision is not None
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    published = await Publisher(service).publish(
        decision, installation_id=repo.installation, delivery_id="d-1"
    )
    run = repo.fake.check_runs(repo.name, head)[-1]
    assert run.conclusion == "action_required"
    assert published.decision_id in run.details_url
    assert len(published.decision_id) == 32
    stored = StoredDecision.from_json(
        await service.store.get("decision", published.decision_id) or b""
    )
    assert stored.decision == decision
    statement = verify_record(
        stored.envelope, keys=service.keyring.verification_keys(), expect_commit=head
    )
    names = {s["name"] for s in statement["subject"]}  # type: ignore[index, union-attr]
    assert {
        f"git+https://github.com/{repo.name}/pull/4",
        f"git+https://github.com/{repo.name}/pull/5",
    } <= names
    audit = await service.audit.query()
    evaluations = [e for e in audit if e["kind"] == "evaluation" and e.get("repo") == repo.name]
    assert sorted((e["pr"], e["conclusion"], e["check"]) for e in evaluations) == [
        (4, "blocked", "blocked"),
        (5, "allowed", "blocked"),
    ]
    assert published.requested == (4,)


async def test_a_dead_lettered_rerun_fails_closed_with_a_signed_record(
    service: Service, repo: Repo
) -> None:
    head = sha(61)
    repo.fake.set_branch(repo.name, "feature", head)
    intent = events.HeadRequested(
        installation_id=repo.installation, repo=repo.name, head_sha=head, numbers=()
    )
    delivery = Delivery(
        id="d-61",
        event="check_suite",
        action="rerequested",
        key=events.ShaKey(repo.name, head).text,
        body=events.encode(intent),
        received_at=0.0,
    )
    job = Job(key=delivery.key, deliveries=(delivery,), attempts=4, token="t")
    await Jobs(service).give_up(job, "GitHub kept answering 502")
    run = repo.fake.check_runs(repo.name, head)[-1]
    assert run.conclusion == "failure"
    assert "502" in run.summary
    decision_id = run.details_url.rsplit("/", 1)[1]
    stored = StoredDecision.from_json(await service.store.get("decision", decision_id) or b"")
    verify_record(stored.envelope, keys=service.keyring.verification_keys(), expect_commit=head)


@pytest.mark.parametrize("graphql", [False, True], ids=["rest", "graphql"])
async def test_a_pull_request_that_moves_while_read_is_not_judged_by_its_new_content(
    service: Service, repo: Repo, graphql: bool
) -> None:
    repo.pull(7, "docs/a.md", head=sha(71))
    # A head sha's look-up (a check suite's): the files are read after it (REST: all
    # three lists). GraphQL's commits end at sha(71); the files, read at sha(72),
    # say so in their contents_url and are refused too.
    evaluator = Evaluator(service, scans=ScanCache(), graphql=graphql)
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=sha(71), number=None
    )
    # The agent pushes between the look-up and the reads: the lists end at another
    # commit, so they must not be judged as this head's content.
    repo.fake.push(repo.name, 7, sha(72), files=[PRFile(".github/workflows/x.yml", patch=patch())])
    decision = await evaluator.commit(installation_id=repo.installation, repo=repo.name, head=found)
    assert decision is None


async def test_a_head_read_by_graphql_is_judged_by_what_was_read_with_it(
    service: Service, repo: Repo
) -> None:
    repo.pull(7, "docs/a.md", head=sha(71))
    evaluator = Evaluator(service, scans=ScanCache())
    before = len(repo.fake.calls)
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=sha(71), number=7
    )
    # One query read the head with its reviews and commits, the files beside it: a
    # push after that does not change what sha(71) is judged by.
    repo.fake.push(repo.name, 7, sha(72), files=[PRFile(".github/workflows/x.yml", patch=patch())])
    decision = await evaluator.commit(installation_id=repo.installation, repo=repo.name, head=found)
    assert decision is not None
    assert decision.head_sha == sha(71)
    assert [f.path for f in decision.files] == ["docs/a.md"]
    graphql = [c for c in repo.fake.calls[before:] if c.operation == "POST /graphql"]
    assert len(graphql) == 1


async def test_commits_listed_out_of_ancestry_order_still_belong_to_their_head(
    service: Service, repo: Repo
) -> None:
    # A cherry-picked commit keeps its old date: GitHub may list the head first.
    head, older = sha(81), sha(80)
    commits = [PRCommit(head, parents=[older]), PRCommit(older)]
    repo.pull(8, "docs/a.md", head=head, commits=commits)
    evaluator = Evaluator(service, scans=ScanCache())
    found = await evaluator.head(
        installation_id=repo.installation, repo=repo.name, sha=head, number=8
    )
    decision = await evaluator.commit(installation_id=repo.installation, repo=repo.name, head=found)
    assert decision is not None
    assert decision.number == 8
