"""Whoever asked the agent does not approve its work: end to end through real HTTP.

The human an agent worked for (the assignee it opened its pull request for, a
``Requested-by`` trailer with the session's ``Agent-Logs-Url``, the policy's
``agents.delegates``) is recorded in the decision and its signed record, and that
human's approval never satisfies the pull request. Each test fails without it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gate.statement import verify_record
from tests.fakegithub import deliveries
from tests.fakegithub.models import PRCommit, PRFile
from tests.world import World, patch, sha
from webhooks.main import main

AGENT = "devin-ai-integration[bot]"


def predicate(world: World, run: Any) -> dict[str, Any]:
    envelope = json.loads(run.text.split("```json\n", 1)[1].split("\n```", 1)[0])
    keyring = world.svc.service.keyring  # type: ignore[union-attr]
    keys = {keyring.active.kid: keyring.active.private_key.public_key()}
    found: dict[str, Any] = verify_record(envelope, keys=keys)["predicate"]  # type: ignore[assignment]
    return found


def approve(world: World, number: int, head: str, user: str) -> Any:
    world.fake.add_review(world.repo, number, user=user, commit_id=head)
    world.deliver("pull_request_review", "submitted", number=number, head_sha=head)
    return world.run(head)


def test_the_assignee_who_handed_the_work_over_cannot_approve_it(world: World) -> None:
    world.fake.set_team(world.org, "security", ["sec1", "sec2"])
    world.open(61, [PRFile("app/auth/x.py", patch=patch())], head=sha(6101), assignees=["sec1"])
    run = approve(world, 61, sha(6101), "sec1")
    assert run.conclusion == "action_required"
    assert "delegated the work to the agent" in run.summary
    record = predicate(world, run)
    assert record["delegation"] == [
        {"login": "sec1", "source": "assignee", "session": "", "logsUrl": ""}
    ]
    # Another owner's approval is the independent review the policy asks for.
    assert approve(world, 61, sha(6101), "sec2").conclusion == "success"


def test_a_requested_by_trailer_names_the_human_and_the_session(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    body = (
        "Fixes the login timeout.\n\n"
        "Agent-Logs-Url: https://agents.example.com/sessions/s-7f3a\n"
        "Requested-by: @sec1\n"
    )
    world.open(62, [PRFile("app/auth/y.py", patch=patch())], head=sha(6201), body=body)
    run = approve(world, 62, sha(6201), "sec1")
    assert run.conclusion == "action_required"
    record = predicate(world, run)
    assert record["delegation"] == [
        {
            "login": "sec1",
            "source": "trailer",
            "session": "s-7f3a",
            "logsUrl": "https://agents.example.com/sessions/s-7f3a",
        }
    ]
    world.settle()
    capsys.readouterr()
    code = main(
        [
            "trace",
            "--session",
            "s-7f3a",
            "--format",
            "jsonl",
            "--data-dir",
            world.svc.env["GATE_DATA_DIR"],
        ]
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0
    assert {r["pr"] for r in rows} == {62}
    assert all(r["delegates"] == ["sec1"] for r in rows)


def test_the_policy_maps_an_agent_to_the_human_it_works_for(world: World) -> None:
    policy = f'version: 1\nagents:\n  delegates: {{"{AGENT}": "sec1"}}\n'
    world.fake.set_file(world.repo, world.base, ".github/merge-gate.yml", policy)
    world.open(63, [PRFile("app/auth/z.py", patch=patch())], head=sha(6301))
    run = approve(world, 63, sha(6301), "sec1")
    assert run.conclusion == "action_required"
    assert predicate(world, run)["delegation"][0]["source"] == "policy"


def test_a_human_pull_request_names_no_delegate(world: World) -> None:
    world.open(
        64,
        [PRFile("app/auth/w.py", patch=patch())],
        head=sha(6401),
        author="dev1",
        author_type="User",
        assignees=["sec1"],
    )
    run = world.run(sha(6401))
    assert "delegation" not in predicate(world, run)


def test_a_requested_by_trailer_in_a_commit_message_counts_too(world: World) -> None:
    message = "Fix the session check\n\nRequested-by: @sec1\n"
    commits = [PRCommit(sha(6301), message=message, author_login="devin-ai-integration[bot]")]
    world.open(63, [PRFile("app/auth/z.py", patch=patch())], head=sha(6301), commits=commits)
    run = approve(world, 63, sha(6301), "sec1")
    assert run.conclusion == "action_required"
    assert [d["login"] for d in predicate(world, run)["delegation"]] == ["sec1"]


def _pull_event(world: World, action: str, number: int, head: str, **fields: Any) -> None:
    # GitHub's examples hold no "edited" delivery: "opened", with the action set.
    payload = deliveries.build(
        "pull_request",
        "opened",
        repo=world.repo,
        installation_id=world.installation,
        number=number,
        head_sha=head,
    )
    payload.update(fields, action=action)
    assert world.svc.deliver("pull_request", action, payload=payload).status_code == 202


def test_naming_the_approver_as_requester_afterwards_turns_the_check_red(world: World) -> None:
    world.fake.set_team(world.org, "security", ["sec1", "sec2"])
    world.open(63, [PRFile("app/auth/z.py", patch=patch())], head=sha(6301), body="Fix.")
    assert approve(world, 63, sha(6301), "sec1").conclusion == "success"
    with world.fake.lock:
        world.fake.pulls[(world.repo.lower(), 63)].body = "Fix.\n\nRequested-by: @sec1\n"
    _pull_event(world, "edited", 63, sha(6301), changes={"body": {"from": "Fix."}})
    assert world.run(sha(6301), "action_required").conclusion == "action_required"


def test_assigning_the_approver_afterwards_turns_the_check_red(world: World) -> None:
    world.fake.set_team(world.org, "security", ["sec1", "sec2"])
    world.open(64, [PRFile("app/auth/w.py", patch=patch())], head=sha(6401))
    assert approve(world, 64, sha(6401), "sec1").conclusion == "success"
    with world.fake.lock:
        world.fake.pulls[(world.repo.lower(), 64)].assignees = ["sec1"]
    _pull_event(world, "assigned", 64, sha(6401), assignee={"login": "sec1", "type": "User"})
    assert world.run(sha(6401), "action_required").conclusion == "action_required"
