"""Evaluate a pull request against a policy: the sans-I/O heart of merge-gate.

The caller reads facts, the engine decides. Two questions come first so the
caller can fetch exactly what is needed (the style of gidgethub's ``sansio``):

- ``needs(...)`` names the file texts (base/head) and teams to read;
- ``evaluate(...)`` turns policy, CODEOWNERS, the pull snapshot and those facts
  into a ``Decision``.

Both are pure: same input, same output, byte for byte.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from gate import classify, clearances, identity, policy_review
from gate.approvals import build_requirements, latest_opinions, reviewers_to_request
from gate.codeowners import CodeOwners
from gate.detectors.base import Detector
from gate.model import GITHUB_FILE_LIMIT, Contents, PullSnapshot, ReviewState, Teams
from gate.owners import Owner
from gate.policy import LoadedPolicy
from gate.result import Decision, FileFinding, FileResult, Outcome, PolicyRef, Reason


@dataclass(frozen=True, slots=True)
class Needs:
    contents: frozenset[tuple[str, str]]
    teams: frozenset[str]
    #: Approvers of the head whose write permission must be read (lower case).
    writers: frozenset[str] = frozenset()
    #: Whether the repository's admins must be read (unowned gated files).
    admins: bool = False


def needs(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    pull: PullSnapshot,
    detectors: Mapping[str, Detector],
) -> Needs:
    """What the caller must read before ``evaluate`` can decide."""
    wanted: set[tuple[str, str]] = set(policy_review.wanted(pull))
    active = classify.active_detectors(policy.policy, detectors)
    for file in pull.files:
        for detector in active:
            wanted |= detector.wanted(file)
    named: list[str] = [
        owner for file in pull.files for path in file.paths for owner in codeowners.owners_of(path)
    ]
    named += policy.policy.fallback_owners
    named += policy.policy.secrets.cleared_by
    for tier in policy.policy.tiers:
        if isinstance(tier.require.from_, tuple):
            named += tier.require.from_
    teams = {owner.team for owner in map(Owner, named) if owner.team}
    any_writer = any(t.require.from_ is None and t.require.approvals for t in policy.policy.tiers)
    writers = (
        {
            r.user.lower()
            for r in latest_opinions(pull.reviews).values()
            if r.state is ReviewState.APPROVED and r.commit_id == pull.head_sha
        }
        if any_writer
        else set()
    )
    # A gated file CODEOWNERS leaves unowned falls to the repository's admins when the
    # policy names no fallback owners: read them only when some path has no owner.
    owned_by_codeowners = any(t.require.from_ == "code_owners" for t in policy.policy.tiers)
    admins = (
        owned_by_codeowners
        and not policy.policy.fallback_owners
        and any(not codeowners.owners_of(p) for f in pull.files for p in f.paths)
    )
    return Needs(
        contents=frozenset(wanted),
        teams=frozenset(teams),
        writers=frozenset(writers),
        admins=admins,
    )


def evaluate(
    *,
    policy: LoadedPolicy,
    codeowners: CodeOwners,
    pull: PullSnapshot,
    teams: Teams,
    contents: Contents,
    detectors: Mapping[str, Detector],
    codeowners_blob: str = "",
) -> Decision:
    """The decision for ``pull``'s current head."""
    rules = policy.policy
    who = identity.governance(agents=rules.agents, govern_humans=rules.govern_humans, pull=pull)
    refs = {
        "policy": PolicyRef(path=policy.path, blob=policy.blob, digest=policy.digest),
        "codeowners": PolicyRef(path=codeowners.path or "(none)", blob=codeowners_blob, digest=""),
    }
    make = partial(
        Decision,
        repo=pull.repo,
        number=pull.number,
        head_sha=pull.head_sha,
        base_sha=pull.base_sha,
        governed=who.governed,
        governance=who.reason,
        author=pull.author,
        agent=who.agent,
        policy=refs["policy"],
        codeowners=refs["codeowners"],
        draft=pull.draft,
        base_ref=pull.base_ref,
        advisory=rules.mode == "advisory",
    )
    notes = tuple(
        f"{codeowners.path}:{p.line}:{p.column}: {p.message}" for p in codeowners.problems
    )
    missing = sorted(rules.detector_names() - set(detectors))
    if who.governed and missing:
        return error_decision(
            pull=pull, message=f"the policy names detectors that are not available: {missing}"
        )
    reviewed = policy_review.review(pull, contents)
    invalid = sorted(p for p, found in reviewed.items() if any(f.deny for f in found))
    if not who.governed:
        if invalid:
            # A human's PR is not governed, but an invalid policy must not land either.
            return make(
                outcome=Outcome.ERROR,
                summary=_invalid_summary(invalid, reviewed),
                tier=None,
                files=_rule_files(pull, reviewed),
                notes=notes,
            )
        return make(
            outcome=Outcome.PASS,
            summary=f"Not governed: {who.reason}.",
            tier=None,
            notes=notes,
        )

    files = classify.classify_files(
        policy=policy,
        codeowners=codeowners,
        files=pull.files,
        contents=contents,
        detectors=detectors,
        agent=who.agent,
    )
    clearance = clearances.qualifying(
        policy=policy, codeowners=codeowners, pull=pull, files=files, teams=teams
    )
    if clearance is not None:
        files = classify.classify_files(
            policy=policy,
            codeowners=codeowners,
            files=pull.files,
            contents=contents,
            detectors=detectors,
            agent=who.agent,
            cleared=f"@{clearance.user} at {clearance.at}",
        )
    top = max((policy.policy.rank(f.tier) for f in files), default=0)
    if not pull.files_complete:
        highest = rules.tiers[-1].name
        return make(
            outcome=Outcome.ERROR,
            summary=(
                f"Fails closed: the file list is incomplete ({len(pull.files)} files listed; "
                f"GitHub lists at most {GITHUB_FILE_LIMIT}). Unlisted files cannot be classified, "
                f"so the PR is treated as tier {highest!r} and cannot pass. Split the change."
            ),
            tier=highest,
            files=files,
            notes=notes,
        )

    if contents.unread:
        return make(
            outcome=Outcome.ERROR,
            summary=(
                f"Fails closed: {len(contents.unread) + len(contents.texts)} file contents "
                f"must be inspected and only {len(contents.texts)} are read per decision, "
                "so the unread ones cannot be judged. Split the change."
            ),
            tier=rules.tiers[-1].name,
            files=files,
            notes=notes,
        )
    if pull.cut_lists:
        lists = " and ".join(pull.cut_lists)
        return make(
            outcome=Outcome.ERROR,
            summary=(
                f"Fails closed: the pull request's {lists} could not be read completely "
                "(GitHub cut the list short). Who approved or authored what cannot be "
                "established, so the PR cannot pass. Split the change or start a new PR."
            ),
            tier=rules.tiers[top].name if files else rules.tiers[0].name,
            files=files,
            notes=notes,
        )

    excluded = identity.never_counts(pull=pull)
    requirements, ignored = build_requirements(
        policy=policy,
        codeowners=codeowners,
        files=files,
        pull=pull,
        teams=teams,
        excluded=excluded,
    )
    users, team_requests = reviewers_to_request(
        requirements=requirements,
        files=files,
        pull=pull,
        agents=rules.agents,
        excluded=excluded,
    )
    files = tuple(
        dataclasses.replace(f, findings=(*f.findings, *reviewed[f.path]))
        if f.path in reviewed
        else f
        for f in files
    )
    denied = [f for f in files if f.denied]
    outstanding = [r for r in requirements if not r.satisfied]
    tier = rules.tiers[top].name if files else rules.tiers[0].name
    if denied:
        outcome = Outcome.DENIED
        first = denied[0]
        summary = (
            f"Denied: {len(denied)} file(s) are outside what an agent may change "
            f"({first.path}: {first.reasons[0].detail if first.reasons else 'denied'})."
        )
    elif invalid:
        outcome = Outcome.ERROR
        summary = _invalid_summary(invalid, reviewed)
    elif outstanding:
        outcome = Outcome.NEEDS_APPROVAL
        summary = f"Needs approval: {len(outstanding)} of {len(requirements)} requirement(s) open."
    else:
        outcome = Outcome.PASS
        summary = (
            f"Passes: tier {tier!r}; every requirement is satisfied on {pull.head_sha[:12]}."
            if requirements
            else f"Passes: tier {tier!r} needs CI only."
        )
    return make(
        outcome=outcome,
        summary=summary,
        tier=tier,
        clearance=clearance,
        files=files,
        requirements=requirements,
        request_users=users,
        request_teams=team_requests,
        ignored_reviews=ignored,
        notes=notes,
    )


def _invalid_summary(
    invalid: Sequence[str], reviewed: Mapping[str, tuple[FileFinding, ...]]
) -> str:
    count = sum(1 for path in invalid for f in reviewed[path] if f.deny)
    return (
        f"Fails: the pull request's own {', '.join(invalid)} is invalid ({count} error(s), "
        "each annotated on its line). Merged, it would make every pull request fail closed."
    )


def _rule_files(
    pull: PullSnapshot, reviewed: Mapping[str, tuple[FileFinding, ...]]
) -> tuple[FileResult, ...]:
    """The rule files of an ungoverned pull request, with their findings, for annotations."""
    return tuple(
        FileResult(
            path=f.path,
            status=f.status.value,
            previous_path=f.previous_path,
            tier="governance",
            denied=False,
            reasons=(Reason(rule="rules", detail="the new rules are checked before they land"),),
            findings=reviewed[f.path],
        )
        for f in pull.files
        if f.path in reviewed
    )


def error_decision(*, pull: PullSnapshot, message: str, notes: Sequence[str] = ()) -> Decision:
    """A decision for when the facts or the policy cannot be read: never a pass."""
    return Decision(
        repo=pull.repo,
        number=pull.number,
        head_sha=pull.head_sha,
        base_sha=pull.base_sha,
        outcome=Outcome.ERROR,
        summary=f"Error: {message}",
        governed=True,
        governance="not determined: evaluation failed",
        author=pull.author,
        agent=False,
        tier=None,
        notes=tuple(notes),
        draft=pull.draft,
        base_ref=pull.base_ref,
    )
