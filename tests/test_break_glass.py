"""Break-glass end to end: ``/merge-gate override <reason>`` comments through real HTTP.

Only a member of the base policy's ``break_glass.teams`` overrides; the agent, the
PR's author and anyone outside the teams change nothing. Every override is signed
(``override: true`` in the record) and logged, and followed up by a comment and,
when the App may write issues, a review issue.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gate.statement import verify_record
from tests.fakegithub import deliveries
from tests.fakegithub.models import PRCommit, PRFile
from tests.world import World, patch, sha

AGENT = "devin-ai-integration[bot]"
POLICY = """\
version: 1
break_glass:
  teams: ["@{org}/oncall"]
  issue: true
"""


def comment(world: World, number: int, body: str, *, user: str, user_type: str = "User") -> int:
    payload = deliveries.build(
        "issue_comment",
        "created",
        repo=world.repo,
        installation_id=world.installation,
        sender=user,
        sender_type=user_type,
    )
    payload["issue"]["number"] = number
    payload["issue"]["pull_request"] = {
        "url": f"https://api.github.com/repos/{world.repo}/pulls/{number}"
    }
    payload["comment"]["body"] = body
    payload["comment"]["user"] = {**payload["comment"]["user"], "login": user, "type": user_type}
    payload["comment"]["id"] = abs(hash((number, body, user))) % 10**9
    return world.svc.deliver("issue_comment", "created", payload=payload).status_code


def break_glass_world(world: World, *, issues: bool = True) -> None:
    world.fake.set_file(
        world.repo, world.base, ".github/merge-gate.yml", POLICY.format(org=world.org)
    )
    world.fake.set_team(world.org, "oncall", ["boss", "alice"])
    if issues:
        world.fake.installations[world.installation].permissions["issues"] = "write"


def audit_entries(world: World) -> list[dict[str, Any]]:
    raw = world.svc.call(lambda s: s.audit.entries(0, 100_000))
    return [json.loads(e) for e in raw if world.repo.encode() in e]


def signed_statement(world: World, run: Any) -> dict[str, Any]:
    envelope = json.loads(run.text.split("```json\n", 1)[1].split("\n```", 1)[0])
    keyring = world.svc.service.keyring  # type: ignore[union-attr]
    keys = {keyring.active.kid: keyring.active.private_key.public_key()}
    statement = verify_record(envelope, keys=keys, expect_commit=run.head_sha)
    predicate: dict[str, Any] = statement["predicate"]  # type: ignore[assignment]
    return predicate


def test_an_oncall_member_overrides_signed_logged_and_followed_up(world: World) -> None:
    break_glass_world(world)
    world.open(51, [PRFile("app/auth/x.py", patch=patch())], head=sha(5101))
    world.run(sha(5101), "action_required")

    assert comment(world, 51, "/merge-gate override prod is down, hotfix", user="boss") == 202
    run = world.run(sha(5101), "success")
    assert run.title == "Override by @boss (break-glass): prod is down, hotfix"
    predicate = signed_statement(world, run)
    assert predicate["override"] is True
    assert predicate["breakGlass"]["by"] == "boss"
    assert predicate["breakGlass"]["reason"] == "prod is down, hotfix"
    assert predicate["breakGlass"]["conclusionWithout"] == "needs_approval"

    said = [c for c in world.fake.comments if c.repo == world.repo and c.number == 51]
    assert len(said) == 1
    assert "Break-glass override" in said[0].body
    issues = [i for i in world.fake.issues if i.repo == world.repo]
    assert len(issues) == 1
    assert "#51" in issues[0].title

    entries = audit_entries(world)
    overrides = [e for e in entries if e["kind"] == "override"]
    assert [e["status"] for e in overrides] == ["requested", "applied"]
    assert overrides[1]["review_issue"].endswith(f"/issues/{issues[0].number}")
    evaluation = [e for e in entries if e["kind"] == "evaluation" and e["pr"] == 51][-1]
    assert evaluation["conclusion"] == "allowed"
    assert evaluation["override"] == {
        "by": "boss",
        "reason": "prod is down, hotfix",
        "without": "blocked",
    }

    # A later event on the same head keeps the override, without a second follow-up.
    world.deliver("pull_request", "labeled", number=51, head_sha=sha(5101))
    world.run(sha(5101), "success")
    assert len([c for c in world.fake.comments if c.repo == world.repo]) == 1
    # A new head needs a new override.
    world.fake.push(world.repo, 51, sha(5102))
    world.deliver("pull_request", "synchronize", number=51, head_sha=sha(5102), sender=AGENT)
    world.run(sha(5102), "action_required")


@pytest.mark.parametrize(
    ("who", "kind", "why"),
    [
        ("dev1", "User", "is not a member of"),
        (AGENT, "Bot", "authored commits in the PR"),
        ("alice", "User", "is the PR author"),
    ],
)
def test_outsiders_the_agent_and_the_author_change_nothing(
    world: World, who: str, kind: str, why: str
) -> None:
    break_glass_world(world)
    # alice (an on-call member) opened it; the agent wrote the commits, so it is governed.
    world.open(
        52,
        [PRFile("app/auth/x.py", patch=patch())],
        head=sha(5201),
        author="alice",
        author_type="User",
        commits=[PRCommit(sha(5201), author_login=AGENT, author_type="Bot")],
    )
    world.run(sha(5201), "action_required")
    assert comment(world, 52, "/merge-gate override trust me", user=who, user_type=kind) == 202
    world.settle()
    run = world.run(sha(5201), "action_required")
    assert "refused" in run.summary
    assert why in run.summary
    predicate = signed_statement(world, run)
    assert "override" not in predicate
    assert any(why in note for note in predicate["notes"])
    assert not [c for c in world.fake.comments if c.repo == world.repo]
    requested = [e for e in audit_entries(world) if e["kind"] == "override"]
    assert [(e["by"], e["status"]) for e in requested] == [(who, "requested")]


def test_off_by_default_and_other_comments_are_ignored(world: World) -> None:
    world.fake.set_team(world.org, "oncall", ["boss"])
    world.open(53, [PRFile("app/auth/x.py", patch=patch())], head=sha(5301))
    world.run(sha(5301), "action_required")
    assert comment(world, 53, "looks good to me", user="boss") == 202
    assert comment(world, 53, "/merge-gate override please", user="boss") == 202
    run = world.run(sha(5301), "action_required")
    assert "break-glass is off" in run.summary


def test_without_issues_write_the_comment_says_so(world: World) -> None:
    break_glass_world(world, issues=False)
    world.open(54, [PRFile("app/auth/x.py", patch=patch())], head=sha(5401))
    world.run(sha(5401), "action_required")
    comment(world, 54, "/merge-gate override outage", user="boss")
    world.run(sha(5401), "success")
    said = [c for c in world.fake.comments if c.repo == world.repo and c.number == 54]
    assert len(said) == 1
    assert "issues: write" in said[0].body
    assert not [i for i in world.fake.issues if i.repo == world.repo]


def test_an_oncall_member_who_pushed_to_the_pull_request_cannot_override_it(world: World) -> None:
    break_glass_world(world)
    world.open(55, [PRFile("app/auth/x.py", patch=patch())], head=sha(5501))
    world.run(sha(5501), "action_required")
    # boss pushes the agent's next commit (authored by the agent), then breaks the glass.
    world.fake.push(
        world.repo,
        55,
        sha(5502),
        commits=[PRCommit(sha(5502), author_login=AGENT, author_type="Bot")],
    )
    world.deliver("pull_request", "synchronize", number=55, head_sha=sha(5502), sender="boss")
    world.run(sha(5502), "action_required")
    comment(world, 55, "/merge-gate override ship it", user="boss")
    world.settle()
    run = world.run(sha(5502), "action_required")
    assert "pushed commits to the PR" in run.summary
    assert not [c for c in world.fake.comments if c.repo == world.repo]
