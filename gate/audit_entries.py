"""What the audit log says about a decision: pure builders of entry fields.

The publisher appends exactly these (kind, fields) pairs; :mod:`gate.auditlog`
verifies and queries them. One ``evaluation`` entry per pull request of the
decision tree, each with the pull request's own conclusion and the conclusion
its commit's check run got (``check``), so ``gate audit --pr N`` finds every
pull request a check run spoke for.
"""

from __future__ import annotations

from collections.abc import Sequence

from gate.result import VOCABULARY, Decision, DecisionKind, Outcome, RequirementKind

Entry = tuple[str, dict[str, object]]
_MAX_FILES = 3000
_MAX_FINDINGS = 200


def _approvers(decision: Decision) -> list[str]:
    return sorted({a.user for r in decision.requirements for a in r.satisfied_by})


def _approvals(decision: Decision) -> list[dict[str, object]]:
    """Each approver once, with when they approved (the earliest counted review)."""
    first: dict[str, str] = {}
    for requirement in decision.requirements:
        for approval in requirement.satisfied_by:
            seen = first.get(approval.user)
            if seen is None or (approval.at and approval.at < seen):
                first[approval.user] = approval.at
    return [{"user": user, "at": at} for user, at in sorted(first.items())]


def _findings(decision: Decision) -> list[dict[str, str]]:
    """Detector findings (messages already redacted), so a trace finds a secret's
    fingerprint or a package name in the log without the signed record."""
    found = [
        {"path": f.path, "detector": x.detector, "rule": x.rule, "message": x.message[:500]}
        for f in decision.files
        for x in f.findings
    ]
    return found[:_MAX_FINDINGS]


def _evaluation(
    pull: Decision, *, root: Decision, digest: str, delivery_id: str, decision_id: str = ""
) -> Entry:
    fields: dict[str, object] = {
        "repo": pull.repo,
        "pr": pull.number,
        "head_sha": pull.head_sha,
        "author": pull.author,
        "agent": pull.agent,
        "conclusion": VOCABULARY[pull.outcome].audit,
        "check": VOCABULARY[root.outcome].audit,
        "tier": pull.tier,
        "files": [{"path": f.path, "tier": f.tier} for f in pull.files][:_MAX_FILES],
        "approvers": _approvers(pull),
        "record_digest": digest,
        "delivery_id": delivery_id,
        "approvals": _approvals(pull),
        "findings": _findings(pull),
    }
    if decision_id:
        fields["decision_id"] = decision_id
    if pull.delegation:
        fields["delegation"] = [
            {"login": d.login, "source": d.source, "session": d.session, "logs_url": d.logs_url}
            for d in pull.delegation
        ]
    if pull.override is not None:
        fields["override"] = {
            "by": pull.override.by,
            "reason": pull.override.reason,
            "without": VOCABULARY[Outcome(pull.override.without)].audit,
        }
    if root is not pull:
        fields["with"] = [p.number for p in root.pulls if p is not pull]
    if root.advisory:
        fields["advisory"] = True
    return "evaluation", fields


def decision_entries(
    decision: Decision,
    *,
    digest: str,
    delivery_id: str,
    requested: Sequence[int] = (),
    decision_id: str = "",
) -> list[Entry]:
    """The entries of one published decision.

    ``requested``: the pull requests whose review requests GitHub accepted;
    ``decision_id``: where the signed record is kept (its details page).
    """
    entries: list[Entry] = []
    if decision.kind is DecisionKind.MERGE_GROUP:
        entries.append(
            (
                "evaluation",
                {
                    "repo": decision.repo,
                    "merge_group": decision.head_sha,
                    "prs": [p.number for p in decision.children],
                    "conclusion": VOCABULARY[decision.outcome].audit,
                    "reasons": [decision.summary[:2000], *decision.notes[:50]],
                    "record_digest": digest,
                    "delivery_id": delivery_id,
                },
            )
        )
        return entries
    for pull in decision.pulls:
        if pull.number == 0:
            entries.append(_failure(pull, digest=digest, delivery_id=delivery_id))
            continue
        entries.append(
            _evaluation(
                pull, root=decision, digest=digest, delivery_id=delivery_id, decision_id=decision_id
            )
        )
        if pull.number in requested:
            entries.append(
                (
                    "review_requested",
                    {
                        "repo": pull.repo,
                        "pr": pull.number,
                        "head_sha": pull.head_sha,
                        "users": list(pull.request_users),
                        "teams": list(pull.request_teams),
                    },
                )
            )
        confirmed = [
            r for r in pull.requirements if r.kind is RequirementKind.STAGED_ROLLOUT and r.satisfied
        ]
        if pull.clearance is not None:
            entries.append(
                (
                    "secret_cleared",
                    {
                        "repo": pull.repo,
                        "pr": pull.number,
                        "head_sha": pull.head_sha,
                        "by": pull.clearance.user,
                        "at": pull.clearance.at,
                        "fingerprints": list(pull.clearance.fingerprints),
                        "record_digest": digest,
                    },
                )
            )
        if confirmed:
            entries.append(
                (
                    "rollout_confirmed",
                    {
                        "repo": pull.repo,
                        "pr": pull.number,
                        "head_sha": pull.head_sha,
                        "by": [a.user for r in confirmed for a in r.satisfied_by],
                    },
                )
            )
    return entries


def _failure(decision: Decision, *, digest: str, delivery_id: str) -> Entry:
    return (
        "evaluation",
        {
            "repo": decision.repo,
            "head_sha": decision.head_sha,
            "conclusion": VOCABULARY[decision.outcome].audit,
            "reasons": [decision.summary[:2000]],
            "record_digest": digest,
            "delivery_id": delivery_id,
        },
    )


def dead_letter_entry(*, key: str, delivery_ids: Sequence[str], error: str) -> Entry:
    return "dead_letter", {"key": key, "deliveries": list(delivery_ids), "error": error[:500]}


def close_entry(
    *,
    repo: str,
    number: int,
    head_sha: str,
    author: str | None,
    merged: bool,
    merged_by: str | None,
    merge_commit_sha: str | None,
    last_decision: str | None,
    last_outcome: str | None,
    delivery_id: str,
) -> Entry:
    """A pull request closed or merged, joined to the last decision published for it."""
    return (
        "merged" if merged else "closed",
        {
            "repo": repo,
            "pr": number,
            "head_sha": head_sha,
            "author": author,
            "merged": merged,
            "merged_by": merged_by,
            "merge_commit_sha": merge_commit_sha,
            "last_decision": last_decision,
            "last_outcome": last_outcome,
            "delivery_id": delivery_id,
        },
    )


def override_request_entry(
    *,
    repo: str,
    number: int,
    head_sha: str,
    by: str,
    reason: str,
    comment_id: int,
    delivery_id: str,
    open_: bool,
) -> Entry:
    """A ``/merge-gate override`` comment, logged when it arrives, whether or not it counts.

    The evaluation that follows says whether it was applied (``override`` on the
    evaluation entry and an ``override`` entry with ``status: applied``) or refused
    (the signed record's notes).
    """
    return (
        "override",
        {
            "repo": repo,
            "pr": number,
            "head_sha": head_sha,
            "by": by,
            "reason": reason[:500],
            "status": "requested" if open_ else "ignored: the pull request is not open",
            "comment_id": comment_id,
            "delivery_id": delivery_id,
        },
    )


def override_applied_entry(
    decision: Decision, *, digest: str, issue_url: str | None, comment_url: str | None
) -> Entry:
    """An override took effect on this pull request's head: the post-hoc review's anchor."""
    override = decision.override
    if override is None:
        raise ValueError("the decision has no override")
    return (
        "override",
        {
            "repo": decision.repo,
            "pr": decision.number,
            "head_sha": decision.head_sha,
            "by": override.by,
            "reason": override.reason[:500],
            "status": "applied",
            "without": VOCABULARY[Outcome(override.without)].audit,
            "record_digest": digest,
            "review_issue": issue_url,
            "comment": comment_url,
        },
    )
