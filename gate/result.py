"""The decision: one tree that explains itself.

Every rendering (check-run summary, annotations, details page, signed record)
is derived from this tree, so what a reviewer reads and what is signed cannot
disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import rfc8785


class Outcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    NEEDS_APPROVAL = "needs_approval"
    DENIED = "denied"
    ERROR = "error"

    @property
    def severity(self) -> int:
        """Order of restriction: when parts of a tree disagree, the highest wins."""
        return _SEVERITY[self]


_SEVERITY = {Outcome.PASS: 0, Outcome.NEEDS_APPROVAL: 1, Outcome.ERROR: 2, Outcome.DENIED: 3}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """How one outcome is said outside: check run, audit log, process exit."""

    #: https://docs.github.com/rest/checks/runs#update-a-check-run (``conclusion``).
    #: Never neutral or skipped for a block: GitHub counts them as passing.
    check_run: str
    audit: str
    exit_code: int


#: The one table from an outcome to every outside vocabulary.
VOCABULARY: Mapping[Outcome, Vocabulary] = {
    Outcome.PASS: Vocabulary(check_run="success", audit="allowed", exit_code=0),
    Outcome.NEEDS_APPROVAL: Vocabulary(check_run="action_required", audit="blocked", exit_code=1),
    Outcome.DENIED: Vocabulary(check_run="failure", audit="denied", exit_code=1),
    Outcome.ERROR: Vocabulary(check_run="failure", audit="error", exit_code=2),
}


class DecisionKind(enum.StrEnum):
    """What a decision is about; a commit or a merge group has pull requests as children."""

    PULL = "pull"
    COMMIT = "commit"
    MERGE_GROUP = "merge_group"


class RequirementKind(enum.StrEnum):
    APPROVAL = "approval"
    STAGED_ROLLOUT = "staged_rollout"
    SUPPLY_CHAIN_SCAN = "supply_chain_scan"


class OwnerSource(enum.StrEnum):
    """Where the people who can satisfy a requirement come from."""

    ANY_WRITER = "any_writer"
    CODE_OWNERS = "code_owners"
    POLICY = "policy"
    FALLBACK = "fallback_owners"
    UNOWNED = "unowned"
    APPROVERS = "approvers"
    SCANNER = "scanner"


@dataclass(frozen=True, slots=True)
class Reason:
    """One cause of a file's tier: which rule, which pattern, which line of which file."""

    rule: str
    detail: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class FileFinding:
    detector: str
    rule: str
    line: int | None
    message: str
    deny: bool
    #: ``sha256:<hex>`` of a secret finding (never the secret); "" for other findings.
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class SecretClearance:
    """A human's word that a head's secret findings are not secrets (or already revoked)."""

    user: str
    at: str
    fingerprints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileResult:
    path: str
    status: str
    previous_path: str | None
    tier: str
    denied: bool
    reasons: tuple[Reason, ...]
    findings: tuple[FileFinding, ...] = ()
    owners: tuple[str, ...] = ()
    owners_source: str = ""
    #: First added hunk (start, end) in the head file, for annotations.
    lines: tuple[int, int] = (1, 1)


@dataclass(frozen=True, slots=True)
class Approval:
    user: str
    review_id: int
    #: When the review was submitted (ISO 8601, as GitHub sends it): the incident
    #: timeline says when each approval was given.
    at: str = ""


@dataclass(frozen=True, slots=True)
class RequirementResult:
    """One thing that must hold before merging, and who satisfies it or is missing."""

    id: str
    tier: str
    kind: RequirementKind
    description: str
    paths: tuple[str, ...]
    needed: int
    #: '@user' / '@org/team' entries that qualify; empty with kind approval = any writer.
    owners: tuple[str, ...]
    source: OwnerSource
    #: Where exactly, for people: ``.github/CODEOWNERS:12 (/app/auth/)`` or a policy line.
    owners_source: str
    satisfied: bool
    satisfied_by: tuple[Approval, ...]
    explanation: str
    #: A staged rollout's plan, from the policy (``tiers[].rollout``).
    rollout: str = ""


@dataclass(frozen=True, slots=True)
class IgnoredReview:
    user: str
    review_id: int
    why: str


@dataclass(frozen=True, slots=True)
class PolicyRef:
    path: str
    blob: str
    digest: str


@dataclass(frozen=True, slots=True)
class Delegate:
    """A human an agent worked for (see :mod:`gate.delegation`), and what says so."""

    login: str
    source: str
    session: str = ""
    logs_url: str = ""


@dataclass(frozen=True, slots=True)
class Override:
    """A break-glass override: who turned the decision into a pass, why, and from what."""

    by: str
    reason: str
    at: str
    #: The outcome the decision had without the override.
    without: str
    #: The policy asks for an issue for the post-hoc review.
    issue: bool = False


@dataclass(frozen=True, slots=True)
class SimulationRow:
    """How the current policy and a proposed one judge one merged pull request."""

    number: int
    title: str
    current_tier: str | None
    new_tier: str | None
    current: str
    new: str

    @property
    def changed(self) -> bool:
        return (self.current_tier, self.current) != (self.new_tier, self.new)


@dataclass(frozen=True, slots=True)
class Decision:
    repo: str
    number: int
    head_sha: str
    base_sha: str
    outcome: Outcome
    summary: str
    governed: bool
    governance: str
    author: str
    agent: bool
    tier: str | None
    files: tuple[FileResult, ...] = ()
    requirements: tuple[RequirementResult, ...] = ()
    request_users: tuple[str, ...] = ()
    request_teams: tuple[str, ...] = ()
    ignored_reviews: tuple[IgnoredReview, ...] = ()
    notes: tuple[str, ...] = ()
    policy: PolicyRef | None = None
    codeowners: PolicyRef | None = None
    kind: DecisionKind = DecisionKind.PULL
    #: The pull request's base branch (its policy's source).
    base_ref: str = ""
    #: A draft pull request: nobody is asked for review yet.
    draft: bool = False
    #: The policy's ``mode: advisory``: everything as usual, but the check does not block.
    advisory: bool = False
    #: The parts of a commit's or a merge group's decision: one per pull request.
    children: tuple[Decision, ...] = ()
    #: A pull request changing the policy: what the new one would decide on merged ones.
    simulation: tuple[SimulationRow, ...] = ()
    #: Who cleared this head's secret findings, when, and which.
    clearance: SecretClearance | None = None
    #: Set when a break-glass override turned this decision into a pass.
    override: Override | None = None
    #: The humans the agent worked for; their approval never counted.
    delegation: tuple[Delegate, ...] = ()

    @property
    def would_block(self) -> bool:
        """Blocked in substance, but published as passing (advisory mode)."""
        return self.advisory and self.outcome is not Outcome.PASS

    @property
    def vocabulary(self) -> Vocabulary:
        if self.would_block:
            return replace(VOCABULARY[self.outcome], check_run="success")
        if self.kind is DecisionKind.MERGE_GROUP and self.outcome is Outcome.NEEDS_APPROVAL:
            # A queued group cannot be approved in place: it fails, and the queue
            # drops it until its pull requests pass on their own.
            return VOCABULARY[Outcome.DENIED]
        return VOCABULARY[self.outcome]

    @property
    def pulls(self) -> tuple[Decision, ...]:
        """The pull-request decisions of this tree (itself when it is one)."""
        if self.kind is DecisionKind.PULL:
            return (self,)
        return tuple(p for child in self.children for p in child.pulls)

    @property
    def outstanding(self) -> tuple[RequirementResult, ...]:
        return tuple(r for r in self.requirements if not r.satisfied)

    @property
    def denied_files(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.denied)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        _plain(data)
        return data

    def canonical_json(self) -> bytes:
        """RFC 8785 canonical JSON: the same decision always gives the same bytes."""
        data: bytes = rfc8785.dumps(self.to_dict())
        return data


def _plain(data: dict[str, Any]) -> None:
    """Enum members as their values, recursively (``asdict`` keeps them as members)."""
    data["outcome"] = Outcome(data["outcome"]).value
    data["kind"] = DecisionKind(data["kind"]).value
    for requirement in data["requirements"]:
        requirement["kind"] = RequirementKind(requirement["kind"]).value
        requirement["source"] = OwnerSource(requirement["source"]).value
    for child in data["children"]:
        _plain(child)


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """Rebuild a decision stored as ``to_dict()`` output (e.g. for the details page)."""

    def files(items: list[dict[str, Any]]) -> tuple[FileResult, ...]:
        return tuple(
            FileResult(
                **{
                    **item,
                    "reasons": tuple(Reason(**r) for r in item["reasons"]),
                    "findings": tuple(FileFinding(**f) for f in item["findings"]),
                    "owners": tuple(item["owners"]),
                    "lines": tuple(item["lines"]),
                }
            )
            for item in items
        )

    def requirements(items: list[dict[str, Any]]) -> tuple[RequirementResult, ...]:
        return tuple(
            RequirementResult(
                **{
                    **item,
                    "kind": RequirementKind(item["kind"]),
                    "source": OwnerSource(item["source"]),
                    "paths": tuple(item["paths"]),
                    "owners": tuple(item["owners"]),
                    "satisfied_by": tuple(Approval(**a) for a in item["satisfied_by"]),
                }
            )
            for item in items
        )

    def ref(item: dict[str, str] | None) -> PolicyRef | None:
        return PolicyRef(**item) if item else None

    return Decision(
        **{
            **data,
            "outcome": Outcome(data["outcome"]),
            "files": files(data["files"]),
            "requirements": requirements(data["requirements"]),
            "request_users": tuple(data["request_users"]),
            "request_teams": tuple(data["request_teams"]),
            "ignored_reviews": tuple(IgnoredReview(**i) for i in data["ignored_reviews"]),
            "notes": tuple(data["notes"]),
            "policy": ref(data["policy"]),
            "codeowners": ref(data["codeowners"]),
            "kind": DecisionKind(data.get("kind", DecisionKind.PULL)),
            "children": tuple(decision_from_dict(c) for c in data.get("children", ())),
            "simulation": tuple(SimulationRow(**row) for row in data.get("simulation", ())),
            "clearance": (
                SecretClearance(
                    user=data["clearance"]["user"],
                    at=data["clearance"]["at"],
                    fingerprints=tuple(data["clearance"]["fingerprints"]),
                )
                if data.get("clearance")
                else None
            ),
            "override": Override(**data["override"]) if data.get("override") else None,
            "delegation": tuple(Delegate(**d) for d in data.get("delegation", ())),
        }
    )
