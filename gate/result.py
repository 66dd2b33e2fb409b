"""The decision: one tree that explains itself.

Every rendering (check-run summary, annotations, details page, signed record)
is derived from this tree, so what a reviewer reads and what is signed cannot
disagree.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

import rfc8785


class Outcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an outcome, not a password
    NEEDS_APPROVAL = "needs_approval"
    DENIED = "denied"
    ERROR = "error"


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


@dataclass(frozen=True, slots=True)
class RequirementResult:
    """One thing that must hold before merging, and who satisfies it or is missing."""

    id: str
    tier: str
    kind: str  # "approval" | "staged_rollout" | "supply_chain_scan"
    description: str
    paths: tuple[str, ...]
    needed: int
    #: '@user' / '@org/team' entries that qualify; empty with kind approval = any writer.
    owners: tuple[str, ...]
    owners_source: str
    satisfied: bool
    satisfied_by: tuple[Approval, ...]
    explanation: str


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

    @property
    def outstanding(self) -> tuple[RequirementResult, ...]:
        return tuple(r for r in self.requirements if not r.satisfied)

    @property
    def denied_files(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.denied)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data

    def canonical_json(self) -> bytes:
        """RFC 8785 canonical JSON: the same decision always gives the same bytes."""
        data: bytes = rfc8785.dumps(self.to_dict())
        return data


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
        }
    )
