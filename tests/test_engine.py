"""The engine: the default policy's table, approvals, fail-closed paths, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.defaults import default_policy, load_policy
from gate.detectors.base import Finding, ScanInput
from gate.model import (
    GITHUB_FILE_LIMIT,
    ChangedFile,
    CoAuthor,
    Confirmation,
    Contents,
    FileStatus,
    ReviewState,
    ScanResult,
    ScanStatus,
    UserType,
)
from gate.result import Outcome
from tests.factories import HEAD, OLD, QUIET, changed, decide, pull, review

POLICY = default_policy()
OWNERS = """\
*                 @acme/devs
/app/auth/        @acme/security
/app/billing/     @acme/billing
/migrations/      @acme/dba
/.github/         @acme/security
CODEOWNERS        @acme/security
"""
TEAMS = {
    "acme/devs": ["dev1", "dev2"],
    "acme/security": ["sec1"],
    "acme/billing": ["bill1"],
    "acme/dba": ["dba1"],
}


def run(*files: ChangedFile, reviews=(), **kw):  # type: ignore[no-untyped-def]
    snapshot = pull(files, reviews=reviews, **kw.pop("pull", {}))
    return decide(POLICY, snapshot, codeowners=OWNERS, teams=TEAMS, **kw)


# --- the default policy against the README's table ---------------------------------


@pytest.mark.parametrize(
    ("path", "tier"),
    [
        ("docs/guide.md", "low"),
        ("README.md", "low"),
        ("tests/test_api.py", "low"),
        ("src/pkg/test_models.py", "low"),
        ("web/src/button.test.tsx", "low"),
        ("types/index.d.ts", "low"),
        ("src/pkg/models.pyi", "low"),
        ("app/views.py", "medium"),
        ("web/src/app.tsx", "medium"),
        ("app/auth/login.py", "high"),
        ("app/billing/invoice.py", "high"),
        ("services/payments/stripe.go", "high"),
        ("lib/security/csrf.rb", "high"),
        ("migrations/0002_add_index.py", "migrations"),
        ("db/schema.sql", "migrations"),
        ("prisma/schema.prisma", "migrations"),
        (".github/merge-gate.yml", "governance"),
        ("CODEOWNERS", "governance"),
        (".github/CODEOWNERS", "governance"),
    ],
)
def test_default_tiers(path: str, tier: str) -> None:
    decision = run(changed(path))
    assert [f.tier for f in decision.files] == [tier]


def test_docs_only_agent_pr_passes_with_ci_only() -> None:
    decision = run(changed("docs/a.md"), changed("tests/test_a.py"))
    assert decision.outcome is Outcome.PASS
    assert decision.requirements == ()
    assert decision.request_users == decision.request_teams == ()


def test_app_logic_needs_one_review_by_a_human_with_write_access() -> None:
    decision = run(changed("app/views.py"))
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    outsider = run(changed("app/views.py"), reviews=[review("rando", association="CONTRIBUTOR")])
    assert outsider.outcome is Outcome.NEEDS_APPROVAL
    member = run(changed("app/views.py"), reviews=[review("dev1")])
    assert member.outcome is Outcome.PASS


def test_auth_needs_code_owner_and_requests_the_team() -> None:
    decision = run(changed("app/auth/login.py"))
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert decision.request_teams == ("security",)
    assert (
        run(changed("app/auth/login.py"), reviews=[review("dev1")]).outcome
        is Outcome.NEEDS_APPROVAL
    )
    assert run(changed("app/auth/login.py"), reviews=[review("sec1")]).outcome is Outcome.PASS


def test_each_gated_area_needs_its_own_owner() -> None:
    files = (changed("app/auth/a.py"), changed("app/billing/b.py"))
    decision = run(*files, reviews=[review("sec1")])
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert [r.owners for r in decision.outstanding] == [("@acme/billing",)]
    assert decision.request_teams == ("billing",)
    both = run(*files, reviews=[review("sec1"), review("bill1", review_id=2)])
    assert both.outcome is Outcome.PASS


def test_migration_needs_owner_and_staged_rollout_confirmation() -> None:
    file = changed("migrations/0003.sql")
    approved = run(file, reviews=[review("dba1")])
    assert approved.outcome is Outcome.NEEDS_APPROVAL
    assert [r.kind for r in approved.outstanding] == ["staged_rollout"]
    assert "staging" in approved.outstanding[0].explanation
    by_outsider = Confirmation(gate="staged_rollout", user="dev1", head_sha=HEAD, at="t")
    assert (
        run(file, reviews=[review("dba1")], pull={"confirmations": (by_outsider,)}).outcome
        is Outcome.NEEDS_APPROVAL
    )
    stale = Confirmation(gate="staged_rollout", user="dba1", head_sha=OLD, at="t")
    assert (
        run(file, reviews=[review("dba1")], pull={"confirmations": (stale,)}).outcome
        is Outcome.NEEDS_APPROVAL
    )
    good = Confirmation(gate="staged_rollout", user="dba1", head_sha=HEAD, at="t")
    assert (
        run(file, reviews=[review("dba1")], pull={"confirmations": (good,)}).outcome is Outcome.PASS
    )


class ManifestDetector:
    """Stands in for the dependency detector: every requirements.txt adds a package."""

    name = "dependencies"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        return frozenset()

    def scan(self, data: ScanInput) -> list[Finding]:
        if data.file.path.endswith("requirements.txt"):
            return [Finding("dependencies", "new-package", data.file.path, 1, "new pypi package x")]
        return []


def test_new_dependency_needs_approval_and_a_passing_scan() -> None:
    detectors = {**QUIET, "dependencies": ManifestDetector()}
    file = changed("requirements.txt")
    decision = run(file, reviews=[review("dev1")], detectors=detectors)
    assert decision.files[0].tier == "dependencies"
    assert [r.kind for r in decision.outstanding] == ["supply_chain_scan"]
    for status, outcome in [
        (ScanStatus.UNAVAILABLE, Outcome.NEEDS_APPROVAL),
        (ScanStatus.FAILED, Outcome.NEEDS_APPROVAL),
        (ScanStatus.PASSED, Outcome.PASS),
    ]:
        scan = ScanResult(gate="supply_chain_scan", head_sha=HEAD, status=status, summary="s")
        got = run(file, reviews=[review("dev1")], detectors=detectors, pull={"scans": (scan,)})
        assert got.outcome is outcome, status
    stale = ScanResult(gate="supply_chain_scan", head_sha=OLD, status=ScanStatus.PASSED, summary="")
    assert (
        run(file, reviews=[review("dev1")], detectors=detectors, pull={"scans": (stale,)}).outcome
        is Outcome.NEEDS_APPROVAL
    )


def test_workflow_edit_is_denied_for_agents_whatever_the_approvals() -> None:
    decision = run(changed(".github/workflows/ci.yml"), reviews=[review("sec1")])
    assert decision.outcome is Outcome.DENIED
    assert decision.files[0].denied
    assert "workflows" in decision.files[0].reasons[0].detail


def test_policy_and_codeowners_edits_need_their_owners() -> None:
    for path in (".github/merge-gate.yml", "CODEOWNERS"):
        assert run(changed(path), reviews=[review("dev1")]).outcome is Outcome.NEEDS_APPROVAL
        assert run(changed(path), reviews=[review("sec1")]).outcome is Outcome.PASS


def test_secret_finding_denies_whatever_the_approvals() -> None:
    class Leaky:
        name = "secrets"

        def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
            return frozenset()

        def scan(self, data: ScanInput) -> list[Finding]:
            return [Finding("secrets", "aws-access-key-id", data.file.path, 3, "AKIA…", deny=True)]

    decision = run(
        changed("docs/a.md"), reviews=[review("sec1")], detectors={**QUIET, "secrets": Leaky()}
    )
    assert decision.outcome is Outcome.DENIED
    assert decision.files[0].findings[0].line == 3


# --- who counts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "user_type", "pushers", "why"),
    [
        ("devin-ai-integration[bot]", UserType.BOT, (), "the PR author"),
        ("helper[bot]", UserType.BOT, (), "a Bot account"),
        ("copilot-swe-agent", UserType.USER, (), "an agent identity"),
        ("sec1", UserType.USER, ("sec1",), "pushed commits"),
    ],
)
def test_approvals_that_never_count(
    user: str, user_type: UserType, pushers: tuple[str, ...], why: str
) -> None:
    decision = run(
        changed("app/auth/a.py"),
        reviews=[review(user, user_type=user_type)],
        pull={"pushers": frozenset(pushers)},
    )
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert why in decision.ignored_reviews[0].why


def test_agent_owner_is_never_requested() -> None:
    owners = "* @acme/devs\n/app/ @copilot-swe-agent @sec1\n"
    decision = decide(POLICY, pull([changed("app/auth/x.py")]), codeowners=owners)
    assert decision.request_users == ("sec1",)


def test_only_latest_opinionated_review_counts() -> None:
    approve = review("sec1", review_id=1, at="2026-01-01T00:00:00Z")
    comment = review("sec1", state=ReviewState.COMMENTED, review_id=2, at="2026-01-02T00:00:00Z")
    changes = review(
        "sec1", state=ReviewState.CHANGES_REQUESTED, review_id=3, at="2026-01-03T00:00:00Z"
    )
    dismissed = review("sec1", state=ReviewState.DISMISSED, review_id=4, at="2026-01-02T00:00:00Z")
    file = changed("app/auth/a.py")
    assert run(file, reviews=[approve, comment]).outcome is Outcome.PASS
    assert run(file, reviews=[approve, changes]).outcome is Outcome.NEEDS_APPROVAL
    assert run(file, reviews=[approve, dismissed]).outcome is Outcome.NEEDS_APPROVAL


def test_push_after_approval_blocks_again() -> None:
    decision = run(changed("app/auth/a.py"), reviews=[review("sec1", commit=OLD)])
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert "older commit" in decision.ignored_reviews[0].why
    # whoever approved an older head is asked again
    assert decision.request_teams == ("security",)


def test_already_requested_or_approved_are_not_requested_again() -> None:
    decision = run(changed("app/auth/a.py"), pull={"requested_teams": frozenset({"security"})})
    assert decision.request_teams == ()


def test_human_pr_is_not_governed_and_passes() -> None:
    decision = run(
        changed(".github/workflows/ci.yml"), pull={"author": "alice", "author_type": UserType.USER}
    )
    assert decision.outcome is Outcome.PASS
    assert not decision.governed
    assert "not governed" in decision.governance


@pytest.mark.parametrize(
    "extra",
    [
        {"co_authors": (CoAuthor("Claude", "noreply@anthropic.com"),)},
        {
            "co_authors": (
                CoAuthor("Devin", "158243242+devin-ai-integration[bot]@users.noreply.github.com"),
            )
        },
        {"commit_authors": frozenset({"copilot-swe-agent"})},
    ],
)
def test_human_pr_with_agent_commits_is_governed(extra: dict[str, object]) -> None:
    decision = run(
        changed("app/auth/a.py"), pull={"author": "alice", "author_type": UserType.USER, **extra}
    )
    assert decision.governed
    assert decision.agent
    assert decision.outcome is Outcome.NEEDS_APPROVAL


def test_excluded_identity_is_not_an_agent() -> None:
    policy = load_policy(
        "version: 1\nagents:\n  logins: ['*[bot]']\n  exclude: ['renovate[bot]']\n  bots: false\n"
    )
    decision = decide(policy, pull([changed("app/x.py")], author="renovate[bot]"))
    assert not decision.governed


# --- fail closed -------------------------------------------------------------------


def test_truncated_file_list_fails_closed() -> None:
    files = [changed(f"docs/{i}.md") for i in range(GITHUB_FILE_LIMIT)]
    decision = run(*files, pull={"complete": False})
    assert decision.outcome is Outcome.ERROR
    assert decision.tier == POLICY.policy.tiers[-1].name
    assert "3000" in decision.summary


def test_file_without_patch_is_never_assumed_safe() -> None:
    decision = run(changed("docs/diagram.png", status=FileStatus.ADDED, patch=None))
    assert decision.files[0].tier == "medium"
    assert "never assumed safe" in decision.files[0].reasons[0].detail
    seen = run(
        changed("docs/diagram.png", status=FileStatus.ADDED, patch=None),
        contents=Contents(texts={("head", "docs/diagram.png"): "inspected"}),
    )
    assert seen.files[0].tier == "low"


def test_pure_rename_without_patch_is_judged_by_both_paths() -> None:
    moved = changed(
        "app/misc/token.py", status=FileStatus.RENAMED, previous="app/auth/token.py", patch=None
    )
    decision = run(moved)
    assert decision.files[0].tier == "high"
    assert {p for r in decision.requirements for p in r.paths} == {
        "app/misc/token.py",
        "app/auth/token.py",
    }
    assert "@acme/security" in {o for r in decision.outstanding for o in r.owners}


def test_unowned_gated_path_without_fallback_cannot_pass() -> None:
    decision = decide(POLICY, pull([changed("app/auth/x.py")], reviews=[review("dev1")]))
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert "nobody can approve" in decision.outstanding[0].explanation
    fallback = load_policy("version: 1\nfallback_owners: ['@acme/security']\n")
    covered = decide(
        fallback, pull([changed("app/auth/x.py")], reviews=[review("sec1")]), teams=TEAMS
    )
    assert covered.outcome is Outcome.PASS


def test_missing_detector_is_an_error_not_a_pass() -> None:
    decision = decide(POLICY, pull([changed("docs/a.md")]), detectors={"secrets": QUIET["secrets"]})
    assert decision.outcome is Outcome.ERROR


def test_unparsable_patch_is_never_assumed_safe() -> None:
    decision = run(changed("docs/a.md", patch="not a diff"))
    assert decision.files[0].tier == "medium"


# --- properties --------------------------------------------------------------------

PATHS = st.sampled_from(
    [
        "docs/a.md",
        "tests/test_x.py",
        "app/views.py",
        "app/auth/login.py",
        "app/billing/b.py",
        "migrations/1.sql",
        "CODEOWNERS",
        ".github/workflows/ci.yml",
        "lib/x.pyi",
        "README.md",
    ]
)
FILES = st.lists(PATHS, min_size=1, max_size=6, unique=True).map(
    lambda ps: [changed(p) for p in ps]
)
REVIEWERS = st.lists(
    st.tuples(
        st.sampled_from(["sec1", "dev1", "bill1", "dba1", "rando"]),
        st.sampled_from([HEAD, OLD]),
        st.sampled_from(list(ReviewState)),
    ),
    max_size=6,
).map(
    lambda items: [
        review(u, commit=c, state=s, review_id=i + 1, at=f"2026-01-01T00:00:{i:02d}Z")
        for i, (u, c, s) in enumerate(items)
    ]
)
SEVERITY = {Outcome.PASS: 0, Outcome.NEEDS_APPROVAL: 1, Outcome.DENIED: 2, Outcome.ERROR: 2}


@settings(max_examples=150, deadline=None)
@given(files=FILES, extra=PATHS, reviews=REVIEWERS)
def test_adding_a_file_never_lowers_the_tier(files, extra, reviews) -> None:  # type: ignore[no-untyped-def]
    before = run(*files, reviews=reviews)
    after = (
        run(*files, changed(extra), reviews=reviews)
        if extra not in {f.path for f in files}
        else before
    )
    rank = POLICY.policy.rank
    assert rank(after.tier) >= rank(before.tier)
    assert SEVERITY[after.outcome] >= SEVERITY[before.outcome]


@settings(max_examples=150, deadline=None)
@given(
    files=FILES,
    reviews=REVIEWERS,
    who=st.sampled_from(
        ["devin-ai-integration[bot]", "dependabot[bot]", "copilot-swe-agent", "sweep-ai"]
    ),
)
def test_approval_by_an_excluded_identity_changes_nothing(files, reviews, who) -> None:  # type: ignore[no-untyped-def]
    base = run(*files, reviews=reviews)
    more = [
        *reviews,
        review(
            who,
            review_id=999,
            at="2027-01-01T00:00:00Z",
            user_type=UserType.BOT if who.endswith("[bot]") else UserType.USER,
        ),
    ]
    with_agent = run(*files, reviews=more)
    assert with_agent.outcome is base.outcome
    assert with_agent.requirements == base.requirements


@settings(max_examples=150, deadline=None)
@given(files=FILES, reviews=REVIEWERS)
def test_a_stale_approval_never_satisfies(files, reviews) -> None:  # type: ignore[no-untyped-def]
    decision = run(*files, reviews=reviews)
    for requirement in decision.requirements:
        for approval in requirement.satisfied_by:
            if requirement.kind == "approval":
                chosen = next(r for r in reviews if r.id == approval.review_id)
                assert chosen.commit_id == HEAD


@settings(max_examples=100, deadline=None)
@given(files=FILES, reviews=REVIEWERS, seed=st.randoms())
def test_decision_is_deterministic(files, reviews, seed) -> None:  # type: ignore[no-untyped-def]
    shuffled_files, shuffled_reviews = list(files), list(reviews)
    seed.shuffle(shuffled_files)
    seed.shuffle(shuffled_reviews)
    a = run(*files, reviews=reviews).canonical_json()
    b = run(*shuffled_files, reviews=shuffled_reviews).canonical_json()
    assert a == b
