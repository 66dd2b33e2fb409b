"""A check run belongs to a commit: every pull request with that head decides it.

Branch protection reads a commit's ``merge-gate`` run for every pull request whose
head is that commit. These attacks try to turn a blocked commit green from the
side: end to end, real HTTP in, the fake GitHub out.
"""

from __future__ import annotations

from tests.fakegithub.models import PRFile
from tests.world import World, patch, sha

#: What an agent would put on a branch it created: everything passes.
LAX_POLICY = (
    "version: 1\n"
    "tiers: [{name: low, paths: ['**'], require: {approvals: 0}}]\n"
    "default_tier: low\nunseen_content_tier: low\n"
)


def _lax_base(world: World, name: str, base: str) -> None:
    world.fake.set_file(world.repo, base, ".github/merge-gate.yml", LAX_POLICY)
    world.fake.set_file(world.repo, base, ".github/CODEOWNERS", "")
    world.fake.set_branch(world.repo, name, base)


def test_a_sibling_pr_into_a_lax_branch_cannot_turn_a_blocked_commit_green(world: World) -> None:
    head = sha(3101)
    files = [PRFile("app/auth/login.py", patch=patch())]
    world.open(31, files, head=head)
    world.run(head, "action_required")
    # Alone, the sibling passes: its base's policy lets everything through.
    _lax_base(world, "agent-playground", sha(3199))
    world.add_pull(32, files, head=head, base_ref="agent-playground", base_sha=sha(3199))
    world.deliver("pull_request", "opened", number=32, head_sha=head)
    world.settle()
    runs = world.fake.check_runs(world.repo, head)
    assert len(runs) == 1
    assert runs[-1].conclusion == "action_required"
    assert "#31" in runs[-1].summary
    assert "#32" in runs[-1].summary
    assert "agent-playground" in runs[-1].summary
    # Whichever pull request is evaluated last, the commit's answer is the same.
    world.deliver("pull_request_review", "submitted", number=32, head_sha=head)
    world.settle()
    assert world.fake.check_runs(world.repo, head)[-1].conclusion == "action_required"


def test_the_blocked_pr_approved_turns_the_commit_green_for_both(world: World) -> None:
    head = sha(3301)
    files = [PRFile("app/auth/login.py", patch=patch())]
    world.open(33, files, head=head)
    _lax_base(world, "agent-side", sha(3399))
    world.add_pull(34, files, head=head, base_ref="agent-side", base_sha=sha(3399))
    world.deliver("pull_request", "opened", number=34, head_sha=head)
    world.settle()
    assert world.fake.check_runs(world.repo, head)[-1].conclusion == "action_required"
    world.fake.add_review(world.repo, 33, user="sec1", commit_id=head)
    world.deliver("pull_request_review", "submitted", number=33, head_sha=head)
    run = world.run(head, "success")
    assert "#33" in run.summary
    assert "#34" in run.summary


def test_a_sibling_denied_denies_the_commit(world: World) -> None:
    head = sha(3501)
    world.open(35, [PRFile("docs/a.md", patch=patch())], head=head)
    world.run(head, "success")
    # The same commit, opened again into a base whose policy denies what it touches.
    strict = sha(3599)
    world.fake.set_file(
        world.repo,
        strict,
        ".github/merge-gate.yml",
        "version: 1\nscope:\n  deny:\n    - paths: ['docs/**']\n      reason: frozen\n",
    )
    world.fake.set_branch(world.repo, "release", strict)
    world.add_pull(
        36, [PRFile("docs/a.md", patch=patch())], head=head, base_ref="release", base_sha=strict
    )
    world.deliver("pull_request", "opened", number=36, head_sha=head)
    world.run(head, "failure")


def _queue(world: World, group: str, *, names: int) -> None:
    """A merge queue asks for checks on ``group``, its branch naming PR ``names``."""
    ref = f"gh-readonly-queue/main/pr-{names}-{group}"
    world.fake.set_branch(world.repo, ref, group)
    fields = {"head_sha": group, "base_sha": world.base, "head_ref": f"refs/heads/{ref}"}
    delivered = world.deliver_patched(
        "merge_group", "checks_requested", node="merge_group", fields=fields
    )
    assert delivered == 202


def test_a_merge_group_with_a_blocked_pr_fails_whatever_pr_names_it(world: World) -> None:
    blocked, passing = sha(3701), sha(3801)
    world.open(37, [PRFile("app/auth/x.py", patch=patch())], head=blocked)
    world.open(38, [PRFile("docs/a.md", patch=patch())], head=passing)
    world.settle()
    group = sha(3901)
    world.fake.set_compare(world.repo, world.base, group, commits=[blocked, passing])
    _queue(world, group, names=38)  # the queue branch names the passing PR only
    run = world.run(group, "failure")
    assert "#37" in run.summary
    assert run.details_url.startswith("http://merge-gate.test/decisions/")


def test_a_merge_group_cannot_bring_in_what_no_pr_showed(world: World) -> None:
    first, second = sha(4001), sha(4002)
    world.open(40, [PRFile("docs/a.md", patch=patch())], head=first)
    world.open(41, [PRFile("docs/b.md", patch=patch())], head=second)
    world.run(first, "success")
    world.run(second, "success")
    shown = [PRFile("docs/a.md", patch=patch()), PRFile("docs/b.md", patch=patch())]
    # The combined diff holds a workflow file neither pull request changed.
    group = sha(4099)
    extra = PRFile(".github/workflows/release.yml", patch=patch())
    world.fake.set_compare(
        world.repo, world.base, group, commits=[first, second], files=[*shown, extra]
    )
    _queue(world, group, names=41)
    run = world.run(group, "failure")
    assert ".github/workflows/release.yml" in run.summary
    # The same group without the extra file passes.
    clean = sha(4098)
    world.fake.set_compare(world.repo, world.base, clean, commits=[first, second], files=shown)
    _queue(world, clean, names=41)
    world.run(clean, "success")


def _org_policy(world: World, text: str) -> None:
    org_repo = f"{world.org}/.github"
    world.fake.add_repo(org_repo)
    world.fake.set_file(org_repo, "main", ".github/merge-gate.yml", text)


ORG_POLICY = (
    "version: 1\n"
    "scope:\n"
    "  deny:\n"
    "    - paths: ['secrets/**']\n"
    "      reason: the organisation keeps secrets out of every repository.\n"
)


def test_the_organisation_policy_applies_to_a_repository_without_one(world: World) -> None:
    _org_policy(world, ORG_POLICY)
    world.open(60, [PRFile("secrets/key.txt", patch=patch())], head=sha(6001))
    run = world.run(sha(6001), "failure")
    assert "the organisation keeps secrets out" in run.summary
    assert f"{world.org}/.github:.github/merge-gate.yml" in run.summary


def test_a_repository_that_extends_the_organisation_policy_cannot_loosen_it(world: World) -> None:
    _org_policy(world, ORG_POLICY)
    world.fake.set_file(
        world.repo,
        world.base,
        ".github/merge-gate.yml",
        "version: 1\nextend: org\n" + LAX_POLICY.removeprefix("version: 1\n"),
    )
    world.open(61, [PRFile("secrets/key.txt", patch=patch())], head=sha(6101))
    run = world.run(sha(6101), "failure")
    assert "the organisation keeps secrets out" in run.summary
    assert "applies as a floor" in run.summary
    # The organisation's policy takes the built-in tiers it leaves out: auth code
    # still needs its owners, whatever the repository's own rules say.
    world.open(62, [PRFile("app/auth/login.py", patch=patch())], head=sha(6201))
    world.run(sha(6201), "action_required")


def test_a_blocked_fork_pr_is_not_left_out_of_its_commits_decision(world: World) -> None:
    # GitHub may not associate a fork's commits with the base repository's PRs.
    world.fake.associate_forks = False
    try:
        head = sha(6901)
        files = [PRFile("app/auth/login.py", patch=patch())]
        world.open(69, files, head=head, head_repo="agent-fork/app")
        world.run(head, "action_required")
        # The same commit pushed to a branch here, into a lax base: alone it passes.
        _lax_base(world, "agent-lax", sha(6999))
        world.add_pull(70, files, head=head, base_ref="agent-lax", base_sha=sha(6999))
        world.deliver("pull_request", "opened", number=70, head_sha=head)
        world.settle()
        run = world.fake.check_runs(world.repo, head)[-1]
        assert run.conclusion == "action_required"
        assert "#69" in run.summary
    finally:
        world.fake.associate_forks = True
