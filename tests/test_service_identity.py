"""Who approved, as an attacker sees it: identities that must never satisfy a gate.

End to end: real HTTP in, the fake GitHub out. Each test fails without its defence.
"""

from __future__ import annotations

from tests.fakegithub import deliveries
from tests.fakegithub.models import PRCommit, PRFile
from tests.world import World, patch, sha


def test_a_human_who_pushed_an_agent_commit_cannot_approve_it(world: World) -> None:
    world.open(41, [PRFile("app/auth/x.py", patch=patch())], head=sha(4101))
    world.run(sha(4101), "action_required")
    # sec1 pushes the agent's next commit (authored by the agent, so GitHub's
    # commit list does not name sec1), then approves it.
    world.fake.push(
        world.repo,
        41,
        sha(4102),
        commits=[PRCommit(sha(4102), author_login="devin-ai-integration[bot]", author_type="Bot")],
    )
    world.deliver("pull_request", "synchronize", number=41, head_sha=sha(4102), sender="sec1")
    world.run(sha(4102), "action_required")
    world.fake.add_review(world.repo, 41, user="sec1", commit_id=sha(4102))
    world.deliver("pull_request_review", "submitted", number=41, head_sha=sha(4102))
    run = world.run(sha(4102), "action_required")
    assert "pushed commits to the PR" in run.summary


def test_a_co_author_cannot_approve(world: World) -> None:
    message = "Fix login\n\nCo-authored-by: Sec One <12345+sec1@users.noreply.github.com>"
    world.open(
        42,
        [PRFile("app/auth/x.py", patch=patch())],
        head=sha(4201),
        commits=[PRCommit(sha(4201), message=message, author_login="devin-ai-integration[bot]")],
    )
    world.fake.add_review(world.repo, 42, user="sec1", commit_id=sha(4201))
    world.deliver("pull_request_review", "submitted", number=42, head_sha=sha(4201))
    run = world.run(sha(4201), "action_required")
    assert "co-authored the PR" in run.summary


def test_an_agent_known_only_by_its_git_email_is_governed(world: World) -> None:
    # A human opens the PR; the commits come from an agent without a GitHub account.
    world.open(
        43,
        [PRFile("app/auth/x.py", patch=patch())],
        head=sha(4301),
        author="alice",
        author_type="User",
        commits=[
            PRCommit(
                sha(4301),
                author_login=None,
                author_name="Claude",
                author_email="NoReply@Anthropic.com",
            )
        ],
    )
    run = world.run(sha(4301), "action_required")
    assert "agent e-mail" in run.summary


def test_membership_without_write_permission_does_not_satisfy_any_writer(world: World) -> None:
    world.open(44, [PRFile("lib/logic.py", patch=patch())], head=sha(4401))
    world.run(sha(4401), "action_required")
    # An org MEMBER whose role on this repository is read only.
    world.fake.set_permission(world.repo, "reader1", "read")
    world.fake.add_review(
        world.repo, 44, user="reader1", commit_id=sha(4401), author_association="MEMBER"
    )
    world.deliver("pull_request_review", "submitted", number=44, head_sha=sha(4401))
    world.run(sha(4401), "action_required")
    world.fake.set_permission(world.repo, "writer1", "maintain")
    world.fake.add_review(
        world.repo, 44, user="writer1", commit_id=sha(4401), author_association="CONTRIBUTOR"
    )
    world.deliver("pull_request_review", "submitted", number=44, head_sha=sha(4401))
    world.run(sha(4401), "success")


def test_removing_an_approver_from_the_team_turns_the_check_red(world: World) -> None:
    world.open(45, [PRFile("app/auth/x.py", patch=patch())], head=sha(4501))
    world.fake.add_review(world.repo, 45, user="sec1", commit_id=sha(4501))
    world.deliver("pull_request_review", "submitted", number=45, head_sha=sha(4501))
    world.run(sha(4501), "success")
    world.fake.set_team(world.org, "security", [])
    payload = deliveries.build("membership", "removed", installation_id=world.installation)
    payload["team"]["slug"] = "security"
    payload["organization"]["login"] = world.org
    payload["member"]["login"] = "sec1"
    assert world.svc.deliver("membership", "removed", payload=payload).status_code == 202
    world.run(sha(4501), "action_required")


def test_a_rollout_confirmed_by_someone_who_did_not_approve_the_head_does_not_count(
    world: World,
) -> None:
    head = sha(4601)
    world.open(46, [PRFile("migrations/0001.sql", patch=patch())], head=head)
    world.fake.add_review(world.repo, 46, user="dba1", commit_id=head)
    world.deliver("pull_request_review", "submitted", number=46, head_sha=head)
    world.run(head, "action_required")

    def click(user: str) -> None:
        run = world.fake.check_runs(world.repo, head)[-1]
        fields = {"id": run.id, "head_sha": head, "pull_requests": [{"number": 46}]}
        action = {"requested_action": {"identifier": "confirm_rollout"}}
        delivered = world.deliver_patched(
            "check_run",
            "requested_action",
            node="check_run",
            fields=fields,
            sender=user,
            top=action,
        )
        assert delivered == 202

    # A dba team member who never approved this head presses the button.
    world.fake.set_team(world.org, "dba", ["dba1", "dba2"])
    click("dba2")
    world.settle()
    assert world.fake.check_runs(world.repo, head)[-1].conclusion == "action_required"
    click("dba1")
    world.run(head, "success")


def test_a_change_request_buried_under_thousands_of_reviews_fails_closed(world: World) -> None:
    head = sha(4701)
    world.open(47, [PRFile("lib/logic.py", patch=patch())], head=head)
    world.fake.add_review(world.repo, 47, user="dev1", state="CHANGES_REQUESTED", commit_id=head)
    for i in range(3000):
        world.fake.add_review(world.repo, 47, user=f"noise{i}", state="COMMENTED", commit_id=head)
    world.fake.add_review(world.repo, 47, user="dev2", commit_id=head)
    world.deliver("pull_request_review", "submitted", number=47, head_sha=head)
    run = world.run(head, "failure")
    assert "reviews could not be read completely" in run.summary


def test_a_human_commit_past_githubs_250_commit_cap_fails_closed(world: World) -> None:
    head = sha(4801)
    commits = [
        PRCommit(sha(480_000 + i), author_login="devin-ai-integration[bot]", author_type="Bot")
        for i in range(250)
    ] + [PRCommit(head, author_login="dev1")]
    world.open(48, [PRFile("lib/logic.py", patch=patch())], head=head, commits=commits)
    run = world.run(head, "failure")
    assert "commits could not be read completely" in run.summary


def test_a_gated_file_codeowners_leaves_unowned_falls_to_the_repository_admins(
    world: World,
) -> None:
    world.fake.set_file(
        world.repo, world.base, ".github/CODEOWNERS", f"/app/auth/ @{world.org}/security\n"
    )
    world.fake.set_permission(world.repo, "boss", "admin")
    head = sha(4901)
    world.open(49, [PRFile("app/billing/pay.py", patch=patch())], head=head)
    run = world.run(head, "action_required")
    assert "@\u200bboss" in run.summary  # escaped: shown, never a mention
    assert "add a CODEOWNERS line" in run.summary
    assert world.fake.requested_reviewers(world.repo, 49)[0] == ["boss"]
    world.fake.add_review(world.repo, 49, user="boss", commit_id=head)
    world.deliver("pull_request_review", "submitted", number=49, head_sha=head)
    world.run(head, "success")
