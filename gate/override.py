"""Break-glass: an emergency override of a decision, and who may never give one.

A member of one of the policy's ``break_glass.teams`` comments
``/merge-gate override <reason>`` on a pull request; the decision on the head the
comment was made on becomes a pass titled as that person's override, signed
(``override`` in the record) and logged, and the service follows up for review.
The policy is read from the base branch, so a pull request cannot name its own
break-glass team. Off unless teams are named.

Never from: an agent identity or Bot account, the pull request's author, anyone who
pushed, authored or co-authored its commits (:func:`gate.identity.never_counts`), or
the human an agent worked for: who could approve nothing cannot override either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from gate import identity
from gate.model import OverrideRequest, PullSnapshot, Teams
from gate.owners import Owner
from gate.policy import Policy
from gate.result import Decision, Outcome, Override

COMMAND = "/merge-gate override"
_MAX_REASON = 500


def parse_command(body: str) -> str | None:
    """The reason of an override comment (its first line after the command), or None.

    ``None`` when the comment is not an override; ``""`` when it gives no reason.
    """
    first = body.strip().splitlines()[0] if body.strip() else ""
    if first != COMMAND and not first.startswith(COMMAND + " "):
        return None
    return first[len(COMMAND) :].strip()[:_MAX_REASON]


def teams_of(policy: Policy) -> frozenset[str]:
    """The ``org/team`` slugs (lower case) whose members may override."""
    return frozenset(str(Owner(t).team).lower() for t in policy.break_glass.teams if Owner(t).team)


def refusal(
    *,
    policy: Policy,
    pull: PullSnapshot,
    teams: Teams,
    request: OverrideRequest,
    excluded: Mapping[str, str],
) -> str | None:
    """Why ``request`` cannot override ``pull``'s decision, or None when it can."""
    allowed = teams_of(policy)
    if not allowed:
        return "break-glass is off: the base branch's policy names no break_glass.teams"
    if request.head_sha != pull.head_sha:
        return f"it was given on {request.head_sha[:12]}, not on the current head"
    if not request.reason:
        return "an override needs a reason: /merge-gate override <reason>"
    why = identity.ineligible(
        agents=policy.agents, login=request.user, user_type=None, excluded=excluded
    )
    if why is not None:
        verb = "is " if why.startswith(("a ", "an ", "the ")) else ""
        return f"@{request.user} {verb}{why}"
    if not any(teams.has(team, request.user) for team in sorted(allowed)):
        names = ", ".join(f"@{t}" for t in sorted(allowed))
        return f"@{request.user} is not a member of {names}"
    return None


def apply(
    decision: Decision,
    *,
    policy: Policy,
    pull: PullSnapshot,
    teams: Teams,
    excluded: Mapping[str, str],
) -> Decision:
    """The decision with the first valid override applied; refused ones become notes."""
    notes: list[str] = []
    for request in pull.overrides:
        why = refusal(policy=policy, pull=pull, teams=teams, request=request, excluded=excluded)
        if why is not None:
            notes.append(f"Override by @{request.user} refused: {why}.")
            continue
        override = Override(
            by=request.user,
            reason=request.reason,
            at=request.at,
            without=decision.outcome.value,
            issue=policy.break_glass.issue,
        )
        return dataclasses.replace(
            decision,
            outcome=Outcome.PASS,
            summary=(
                f"Overridden by @{request.user} (break-glass): {request.reason}. "
                f"Without the override: {decision.summary}"
            ),
            notes=(*decision.notes, *notes),
            override=override,
        )
    if not notes:
        return decision
    return dataclasses.replace(decision, notes=(*decision.notes, *notes))
