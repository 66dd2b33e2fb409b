"""Small builders for the engine's input types, shared by the engine tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gate.codeowners import CodeOwners
from gate.detectors.base import Finding, ScanInput
from gate.engine import evaluate
from gate.model import (
    ChangedFile,
    Contents,
    FileStatus,
    PullSnapshot,
    Review,
    ReviewState,
    Teams,
    UserType,
)
from gate.policy import DETECTORS, LoadedPolicy
from gate.result import Decision

HEAD = "a" * 40
OLD = "b" * 40
BASE = "c" * 40
DETECTOR_NAMES = DETECTORS


class QuietDetector:
    """A detector that finds nothing: isolates path rules from content rules."""

    def __init__(self, name: str) -> None:
        self.name = name

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        return frozenset()

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        return ()


QUIET = {name: QuietDetector(name) for name in DETECTOR_NAMES}


def changed(
    path: str,
    *,
    status: FileStatus = FileStatus.MODIFIED,
    lines: int = 1,
    previous: str | None = None,
    patch: str | None = "auto",
) -> ChangedFile:
    if patch == "auto":
        body = "".join(f"+line {i}\n" for i in range(lines))
        patch = f"@@ -0,0 +1,{lines} @@\n{body}".rstrip("\n")
    return ChangedFile(
        path=path,
        status=status,
        previous_path=previous,
        patch=patch,
        additions=lines if patch else 0,
        deletions=0,
    )


def review(
    user: str,
    *,
    state: ReviewState = ReviewState.APPROVED,
    commit: str = HEAD,
    review_id: int = 1,
    at: str = "2026-01-01T00:00:00Z",
    user_type: UserType = UserType.USER,
    association: str = "MEMBER",
) -> Review:
    return Review(
        id=review_id,
        user=user,
        user_type=user_type,
        state=state,
        commit_id=commit,
        submitted_at=at,
        author_association=association,
    )


def pull(
    files: Iterable[ChangedFile],
    *,
    author: str = "devin-ai-integration[bot]",
    author_type: UserType = UserType.BOT,
    reviews: Iterable[Review] = (),
    complete: bool = True,
    **extra: object,
) -> PullSnapshot:
    return PullSnapshot(
        repo="acme/app",
        number=7,
        author=author,
        author_type=author_type,
        head_sha=HEAD,
        base_ref="main",
        base_sha=BASE,
        files=tuple(files),
        files_complete=complete,
        reviews=tuple(reviews),
        **extra,
    )  # type: ignore[arg-type]


def decide(
    policy: LoadedPolicy,
    snapshot: PullSnapshot,
    *,
    codeowners: str = "",
    teams: dict[str, list[str]] | None = None,
    detectors: dict[str, object] | None = None,
    contents: Contents | None = None,
    writers: list[str] | None = None,
) -> Decision:
    """``writers`` default: reviewers whose association is OWNER, MEMBER or COLLABORATOR
    (what GitHub's permission look-up says for them in these scenarios)."""
    if writers is None:
        writers = [
            r.user
            for r in snapshot.reviews
            if r.author_association in ("OWNER", "MEMBER", "COLLABORATOR")
        ]
    return evaluate(
        policy=policy,
        codeowners=CodeOwners.parse(codeowners) if codeowners else CodeOwners.empty(),
        pull=snapshot,
        teams=Teams.of(teams or {}, writers=writers),
        contents=contents or Contents(),
        detectors=detectors or QUIET,  # type: ignore[arg-type]
    )
