"""Decisions over several pull requests: a commit's, a merge group's, a failed job's.

A check run belongs to a commit, and branch protection reads it for *every* pull
request whose head is that commit
(https://docs.github.com/rest/checks/runs#create-a-check-run). So the
``merge-gate`` conclusion of a head sha must be the decision over every open pull
request with that head, whatever its base: otherwise a second pull request from
the same commit into a branch with a lax policy could turn the commit green for
the protected branch too. The most restrictive part wins (policy-bot's
``common.Result`` tree is the model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gate.result import Decision, DecisionKind, Outcome


def _worst(children: Sequence[Decision]) -> Decision:
    return max(children, key=lambda d: (d.outcome.severity, -d.number))


def for_commit(*, repo: str, head_sha: str, children: Sequence[Decision]) -> Decision:
    """The decision of a head sha over the pull requests whose head it is.

    One pull request: its own decision, unchanged. Several: a tree whose outcome is
    its most restrictive child's.
    """
    parts = sorted(children, key=lambda d: d.number)
    if not parts:
        raise ValueError("a commit's decision needs at least one pull request")
    if len(parts) == 1:
        return parts[0]
    worst = _worst(parts)
    numbers = ", ".join(f"#{d.number}" for d in parts)
    if worst.outcome is Outcome.PASS:
        summary = f"Passes: every pull request with this head passes ({numbers})."
    else:
        summary = (
            f"{worst.outcome.value.replace('_', ' ').capitalize()} by #{worst.number}: "
            f"{worst.summary} This commit is the head of {numbers}; the most "
            "restrictive decision applies to all of them."
        )
    return Decision(
        repo=repo,
        number=worst.number,
        head_sha=head_sha,
        base_sha=worst.base_sha,
        outcome=worst.outcome,
        summary=summary,
        governed=any(d.governed for d in parts),
        governance=worst.governance,
        author=worst.author,
        agent=any(d.agent for d in parts),
        tier=worst.tier,
        policy=worst.policy,
        codeowners=worst.codeowners,
        kind=DecisionKind.COMMIT,
        children=tuple(parts),
        # One pull request under an enforcing policy keeps the commit enforced.
        advisory=all(d.advisory for d in parts),
    )


def for_merge_group(
    *,
    repo: str,
    head_sha: str,
    base_sha: str,
    children: Sequence[Decision],
    missing: Sequence[str] = (),
) -> Decision:
    """A merge group passes only when every pull request in it passes on its own head.

    ``missing`` names what could not be judged (a closed pull request, none found);
    each makes the group fail closed.
    """
    parts = sorted(children, key=lambda d: d.number)
    problems = list(missing)
    if not parts and not problems:
        problems.append("no pull request could be found in the merge group")
    blocking = [d for d in parts if d.outcome is not Outcome.PASS]
    if problems:
        outcome = Outcome.ERROR
    elif blocking:
        outcome = _worst(blocking).outcome
    else:
        outcome = Outcome.PASS
    numbers = ", ".join(f"#{d.number}" for d in parts) or "none"
    if outcome is Outcome.PASS:
        summary = f"Merge group passes: every pull request in it passes on its head ({numbers})."
    else:
        reasons = [f"#{d.number}: {d.summary}" for d in blocking] + problems
        summary = f"Merge group blocked ({numbers}): " + " ".join(reasons)
    worst = _worst(parts) if parts else None
    return Decision(
        repo=repo,
        number=0,
        head_sha=head_sha,
        base_sha=base_sha,
        outcome=outcome,
        summary=summary,
        governed=True,
        governance="a merge group is as strict as its strictest pull request",
        author="",
        agent=any(d.agent for d in parts),
        tier=worst.tier if worst else None,
        notes=tuple(problems),
        kind=DecisionKind.MERGE_GROUP,
        children=tuple(parts),
    )


def combined_problems(combined: Decision, children: Sequence[Decision]) -> list[str]:
    """What a merge group's combined diff brings in that none of its pull requests showed.

    Combining pull requests (and the queue's own merge commits) can produce
    content no single pull request contained; the group's whole diff is judged
    too: a denied file, or a gated file no pull request of the group changed,
    blocks the group.
    """
    if combined.outcome is Outcome.ERROR and not combined.files:
        return [f"the group's combined diff: {combined.summary}"]
    shown = {p for c in children for f in c.files for p in (f.path, f.previous_path) if p}
    problems = [
        f"the combined diff is denied at {f.path}: "
        + (f.reasons[0].detail if f.reasons else "denied")
        for f in combined.files
        if f.denied
    ]
    gated = {p for r in combined.requirements for p in r.paths}
    problems += [
        f"{path} is gated in the combined diff but changed by no pull request of the group"
        for path in sorted(gated - shown)
    ]
    if combined.outcome is Outcome.ERROR:
        problems.append(f"the group's combined diff: {combined.summary}")
    return problems


def failure(*, repo: str, head_sha: str, number: int, message: str) -> Decision:
    """A job that could not finish: fail closed on the head it concerned."""
    return Decision(
        repo=repo,
        number=number,
        head_sha=head_sha,
        base_sha="",
        outcome=Outcome.ERROR,
        summary=f"Error: {message}",
        governed=True,
        governance="not determined: evaluation failed",
        author="",
        agent=False,
        tier=None,
        kind=DecisionKind.PULL if number else DecisionKind.COMMIT,
    )


def floor(repository: Decision, organisation: Decision) -> Decision:
    """A pull request under its repository's policy and, as a floor, its organisation's.

    ``extend: org`` may only tighten: the organisation's requirements are added to the
    repository's (ids prefixed ``org:``), a file either policy denies is denied, and the
    outcome is the more restrictive of the two.
    """
    worst = max((repository, organisation), key=lambda d: d.outcome.severity)
    denied_by_org = {f.path: f for f in organisation.files if f.denied}
    files = tuple(denied_by_org.get(f.path, f) for f in repository.files)
    files += tuple(
        f for f in denied_by_org.values() if f.path not in {g.path for g in repository.files}
    )
    org_requirements = tuple(
        dataclasses.replace(r, id=f"org:{r.id}", tier=f"org/{r.tier}")
        for r in organisation.requirements
    )
    where = organisation.policy.path if organisation.policy else "the organisation's policy"
    digest = organisation.policy.digest if organisation.policy else ""
    summary = worst.summary
    if worst is organisation and worst.outcome is not repository.outcome:
        summary = f"{summary} (the organisation's policy {where}, which this repository extends)"
    return dataclasses.replace(
        repository,
        outcome=worst.outcome,
        summary=summary,
        governed=repository.governed or organisation.governed,
        agent=repository.agent or organisation.agent,
        files=files,
        requirements=repository.requirements + org_requirements,
        request_users=tuple(sorted({*repository.request_users, *organisation.request_users})),
        request_teams=tuple(sorted({*repository.request_teams, *organisation.request_teams})),
        ignored_reviews=tuple(
            dict.fromkeys(repository.ignored_reviews + organisation.ignored_reviews)
        ),
        notes=(
            *repository.notes,
            f"Organisation policy {where} ({digest}) applies as a floor (extend: org).",
        ),
        advisory=repository.advisory and organisation.advisory,
    )
