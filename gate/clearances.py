"""Clearing a secret finding: who may say "not a secret" (or "already revoked").

A denial for a secret must be clearable, or teams turn the gate off the first
time a test fixture trips it; but never by the pull request itself (no inline
marker: the agent writes those) and never by the agent or anyone the pull
request's own commits name. The check run's *Not a secret* button records who
pressed it on which head; the engine asks here whether that person qualifies:
the policy's ``secrets.cleared_by``, else its ``fallback_owners``, else the code
owners of every file with a secret finding, else the repository's admins.
"""

from __future__ import annotations

from collections.abc import Sequence

from gate import identity
from gate.approvals import qualifies
from gate.codeowners import CodeOwners
from gate.model import PullSnapshot, Review, ReviewState, Teams, UserType
from gate.owners import Owner
from gate.policy import LoadedPolicy
from gate.result import FileResult, OwnerSource, SecretClearance

GATE = "secret_cleared"


def _clearers(
    policy: LoadedPolicy, codeowners: CodeOwners, path: str, teams: Teams
) -> tuple[Owner, ...]:
    rules = policy.policy
    named = rules.secrets.cleared_by or rules.fallback_owners or codeowners.owners_of(path)
    if named:
        return tuple(map(Owner, named))
    return tuple(Owner(f"@{login}") for login in sorted(teams.admins))


def qualifying(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    pull: PullSnapshot,
    files: Sequence[FileResult],
    teams: Teams,
) -> SecretClearance | None:
    """The first clearance of this head by someone who may clear every secret finding."""
    secret = [f for f in files if any(x.detector == "secrets" and x.deny for x in f.findings)]
    if not secret:
        return None
    excluded = identity.never_counts(pull=pull)
    for confirmation in pull.confirmations:
        if confirmation.gate != GATE or confirmation.head_sha != pull.head_sha:
            continue
        user = confirmation.user
        if identity.ineligible(
            agents=policy.policy.agents, login=user, user_type=None, excluded=excluded
        ):
            continue
        probe = Review(
            id=0,
            user=user,
            user_type=UserType.USER,
            state=ReviewState.APPROVED,
            commit_id=pull.head_sha,
            submitted_at=confirmation.at,
        )
        if all(
            qualifies(
                probe, _clearers(policy, codeowners, f.path, teams), OwnerSource.POLICY, teams
            )
            for f in secret
        ):
            fingerprints = sorted(
                {x.fingerprint for f in secret for x in f.findings if x.fingerprint}
            )
            return SecretClearance(user=user, at=confirmation.at, fingerprints=tuple(fingerprints))
    return None
