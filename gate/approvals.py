"""Requirements per gated area, who satisfies them, and whom to ask.

Review semantics follow GitHub
(https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request):
only each user's latest opinionated review counts (APPROVED, CHANGES_REQUESTED,
DISMISSED; COMMENTED and PENDING change nothing), and an approval counts only
when it was given on the current head commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from gate import identity
from gate.codeowners import CodeOwners
from gate.detectors.secrets import redact_text
from gate.model import PullSnapshot, Review, ReviewState, ScanStatus, Teams
from gate.owners import Owner
from gate.policy import Agents, LoadedPolicy
from gate.result import (
    Approval,
    FileResult,
    IgnoredReview,
    OwnerSource,
    RequirementKind,
    RequirementResult,
)

_OPINIONS = frozenset({ReviewState.APPROVED, ReviewState.CHANGES_REQUESTED, ReviewState.DISMISSED})
ANY_WRITER = "any human with write access"
UNOWNED = "unowned"
ADMINS = (
    "the repository's admins: CODEOWNERS leaves these paths unowned and the policy names no "
    "fallback_owners (add a CODEOWNERS line for them)"
)
#: (owners, where they come from, the exact citation) -> one approval requirement.
Group = tuple[tuple[str, ...], OwnerSource, str]


def latest_opinions(reviews: Iterable[Review]) -> dict[str, Review]:
    """Each user's latest opinionated review, by lowercased login."""
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: (r.submitted_at, r.id)):
        if review.state in _OPINIONS:
            latest[review.user.lower()] = review
    return latest


def counted_approvals(
    *, pull: PullSnapshot, agents: Agents, excluded: Mapping[str, str]
) -> tuple[list[Review], list[IgnoredReview]]:
    """Approvals that count on the current head, and every other approval with why not."""
    counted: list[Review] = []
    ignored: list[IgnoredReview] = []
    for review in sorted(latest_opinions(pull.reviews).values(), key=lambda r: r.id):
        if review.state is not ReviewState.APPROVED:
            continue
        why = identity.ineligible(
            agents=agents, login=review.user, user_type=review.user_type, excluded=excluded
        )
        if why is None and review.commit_id != pull.head_sha:
            why = f"approved an older commit ({review.commit_id[:12]}), not the current head"
        if why is None:
            counted.append(review)
        else:
            ignored.append(IgnoredReview(user=review.user, review_id=review.id, why=why))
    return counted, ignored


def qualifies(review: Review, owners: Sequence[str], source: OwnerSource, teams: Teams) -> bool:
    if source is OwnerSource.ANY_WRITER:
        return teams.can_write(review.user)
    login = review.user.lower()
    for owner in map(Owner, owners):
        # An e-mail owner cannot be tied to a login here.
        if (owner.team and teams.has(owner.team, login)) or owner.login == login:
            return True
    return False


def _groups(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    rank: int,
    files: Sequence[FileResult],
    teams: Teams,
) -> dict[Group, list[str]]:
    """(owners, where they come from) -> the paths they must approve."""
    tier = policy.policy.tiers[rank]
    groups: dict[Group, list[str]] = defaultdict(list)
    for file in files:
        paths = [file.path] + ([file.previous_path] if file.previous_path else [])
        for path in dict.fromkeys(paths):
            if tier.require.from_ is None:
                key: Group = ((), OwnerSource.ANY_WRITER, ANY_WRITER)
            elif isinstance(tier.require.from_, tuple):
                owners = tuple(tier.require.from_)
                key = (owners, OwnerSource.POLICY, policy.cite("tiers", rank, "require", "from"))
            else:
                match = codeowners.match(path)
                if match and match.owners:
                    cite = f"{codeowners.path}:{match.line} ({match.pattern})"
                    key = (match.owners, OwnerSource.CODE_OWNERS, cite)
                elif policy.policy.fallback_owners:
                    fallback = tuple(policy.policy.fallback_owners)
                    key = (fallback, OwnerSource.FALLBACK, policy.cite("fallback_owners"))
                elif teams.admins:
                    admins = tuple(Owner(f"@{login}") for login in sorted(teams.admins))
                    key = (admins, OwnerSource.FALLBACK, ADMINS)
                else:
                    key = ((), OwnerSource.UNOWNED, UNOWNED)
            groups[key].append(path)
    return groups


def build_requirements(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    files: Sequence[FileResult],
    pull: PullSnapshot,
    teams: Teams,
    excluded: Mapping[str, str],
) -> tuple[tuple[RequirementResult, ...], tuple[IgnoredReview, ...]]:
    rules = policy.policy
    counted, ignored = counted_approvals(pull=pull, agents=rules.agents, excluded=excluded)
    by_tier: dict[str, list[FileResult]] = defaultdict(list)
    for file in files:
        by_tier[file.tier].append(file)
    out: list[RequirementResult] = []
    for rank, tier in enumerate(rules.tiers):
        tier_files = by_tier.get(tier.name)
        if not tier_files:
            continue
        needed = tier.require.approvals
        approval_groups: list[Group] = []
        if needed > 0:
            groups = _groups(
                policy=policy, codeowners=codeowners, rank=rank, files=tier_files, teams=teams
            )
            for group, paths in sorted(groups.items()):
                approval_groups.append(group)
                out.append(
                    _approval(
                        tier=tier.name,
                        description=tier.description,
                        group=group,
                        paths=paths,
                        needed=needed,
                        counted=counted,
                        teams=teams,
                    )
                )
        tier_paths = tuple(sorted({f.path for f in tier_files}))
        for gate in tier.require.gates:
            if gate == "staged_rollout":
                out.append(
                    _rollout(
                        tier=tier.name,
                        rollout=tier.rollout,
                        paths=tier_paths,
                        pull=pull,
                        groups=approval_groups,
                        teams=teams,
                        agents=rules.agents,
                        excluded=excluded,
                        counted=counted,
                    )
                )
            else:
                out.append(_scan(tier=tier.name, paths=tier_paths, pull=pull, gate=gate))
    return tuple(out), tuple(ignored)


def _approval(
    *,
    tier: str,
    description: str,
    group: Group,
    paths: Sequence[str],
    needed: int,
    counted: Sequence[Review],
    teams: Teams,
) -> RequirementResult:
    owners, source, cite = group
    approvers = [r for r in counted if qualifies(r, owners, source, teams)]
    satisfied = len(approvers) >= needed
    who = ANY_WRITER if source is OwnerSource.ANY_WRITER else ", ".join(owners)
    if satisfied:
        names = ", ".join(f"@{r.user} (review {r.id})" for r in approvers)
        explanation = f"approved by {names}"
    elif source is OwnerSource.UNOWNED:
        explanation = (
            "no code owner: CODEOWNERS leaves these paths unowned and the policy names no "
            "fallback_owners, so nobody can approve; add an owner"
        )
    else:
        explanation = f"needs {needed - len(approvers)} more approval(s) from {who}"
        if cite == ADMINS:
            explanation += f" ({ADMINS})"
    return RequirementResult(
        id=f"{tier}:approval:{cite}",
        tier=tier,
        kind=RequirementKind.APPROVAL,
        description=description,
        paths=tuple(sorted(paths)),
        needed=needed,
        owners=owners,
        source=source,
        owners_source=cite,
        satisfied=satisfied,
        satisfied_by=tuple(
            Approval(user=r.user, review_id=r.id, at=r.submitted_at) for r in approvers
        ),
        explanation=explanation,
    )


def _rollout(
    *,
    tier: str,
    rollout: str,
    paths: tuple[str, ...],
    pull: PullSnapshot,
    groups: Sequence[Group],
    teams: Teams,
    agents: Agents,
    excluded: Mapping[str, str],
    counted: Sequence[Review],
) -> RequirementResult:
    """A confirmation counts only from someone who approved this head as this tier's approver.

    Pressing the button is not a review: whoever could not approve the change
    cannot confirm its rollout either (``counted`` already leaves out stale,
    author, pusher, agent and Bot approvals).
    """
    by: list[Approval] = []
    approvers = {
        r.user.lower(): r
        for r in counted
        if any(qualifies(r, owners, source, teams) for owners, source, _ in groups)
    }
    for confirmation in pull.confirmations:
        if confirmation.gate != "staged_rollout" or confirmation.head_sha != pull.head_sha:
            continue
        if identity.ineligible(
            agents=agents, login=confirmation.user, user_type=None, excluded=excluded
        ):
            continue
        review = approvers.get(confirmation.user.lower())
        if review is not None:
            by.append(Approval(user=confirmation.user, review_id=review.id, at=confirmation.at))
    satisfied = bool(by)
    plan = f" Staged rollout: {rollout}" if rollout else ""
    explanation = (
        f"confirmed by @{by[0].user} on {pull.head_sha[:12]}"
        if satisfied
        else "waiting for an approver of this head to confirm a staged rollout "
        "(approve, then the check run's 'Confirm rollout' button)." + plan
    )
    return RequirementResult(
        id=f"{tier}:staged_rollout",
        tier=tier,
        kind=RequirementKind.STAGED_ROLLOUT,
        rollout=rollout,
        description="human staged-rollout confirmation",
        paths=paths,
        needed=1,
        owners=(),
        source=OwnerSource.APPROVERS,
        owners_source="the approvers of this tier",
        satisfied=satisfied,
        satisfied_by=tuple(by),
        explanation=explanation,
    )


def _scan(*, tier: str, paths: tuple[str, ...], pull: PullSnapshot, gate: str) -> RequirementResult:
    results = [s for s in pull.scans if s.gate == gate and s.head_sha == pull.head_sha]
    latest = results[-1] if results else None
    if latest is None:
        satisfied, explanation = False, "scan has not run on this head"
    elif latest.status is ScanStatus.PASSED:
        satisfied, explanation = True, latest.summary
    elif latest.status is ScanStatus.UNAVAILABLE:
        satisfied, explanation = False, f"scan unavailable: {latest.summary}"
    else:
        satisfied, explanation = False, f"scan failed: {latest.summary}"
    # A scan's summary names packages as the pull request spells them.
    explanation = redact_text(explanation)
    return RequirementResult(
        id=f"{tier}:{gate}",
        tier=tier,
        kind=RequirementKind(gate),
        description="supply-chain scan of new dependencies",
        paths=paths,
        needed=1,
        owners=(),
        source=OwnerSource.SCANNER,
        owners_source="scanner",
        satisfied=satisfied,
        satisfied_by=(),
        explanation=explanation,
    )


def reviewers_to_request(
    *,
    requirements: Sequence[RequirementResult],
    files: Sequence[FileResult],
    pull: PullSnapshot,
    agents: Agents,
    excluded: Mapping[str, str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The smallest set of (users, teams) that covers every open approval requirement.

    Never the author, a pusher or commit author, an agent or a Bot, nor anyone
    already requested or who already approved the current head.
    """
    owners_of = {f.path: f.owners for f in files}
    approved = {
        a.user.lower()
        for r in requirements
        for a in r.satisfied_by
        if r.kind is RequirementKind.APPROVAL
    }
    requested = {u.lower() for u in pull.requested_users} | {
        "/" + t.lower() for t in pull.requested_teams
    }

    def usable(owner: Owner) -> bool:
        if owner.team:
            return True
        return (
            owner.login is not None
            and owner.login not in approved
            and not identity.ineligible(
                agents=agents, login=owner.login, user_type=None, excluded=excluded
            )
        )

    def already(owner: Owner) -> bool:
        return (owner.login or "") in requested or f"/{owner.slug}" in requested

    open_sets: list[set[Owner]] = []
    for requirement in requirements:
        if requirement.satisfied or requirement.kind is not RequirementKind.APPROVAL:
            continue
        candidates = requirement.owners
        if requirement.source is OwnerSource.ANY_WRITER:
            candidates = tuple(o for p in requirement.paths for o in owners_of.get(p, ()))
        pool = {o for o in map(Owner, candidates) if usable(o)}
        if not pool or any(already(o) for o in pool):
            continue
        open_sets.append(pool)
    chosen: list[Owner] = []
    while open_sets:
        counts: dict[Owner, int] = defaultdict(int)
        for pool in open_sets:
            for owner in pool:
                counts[owner] += 1
        best = min(counts, key=lambda o: (-counts[o], o.team is None, o.lower()))
        chosen.append(best)
        open_sets = [pool for pool in open_sets if best not in pool]
    users = tuple(sorted(o[1:] for o in chosen if o.login))
    teams = tuple(sorted(o.slug for o in chosen if o.slug))
    return users, teams
