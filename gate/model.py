"""The facts the engine decides on: frozen, typed, and free of GitHub's JSON.

The edge (``webhooks/`` or ``gate.cli``) translates whatever it read into these
types once; nothing past that point sees a raw dict. Field meanings follow the
REST resources they come from:

- files: https://docs.github.com/rest/pulls/pulls#list-pull-requests-files
- reviews: https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: GitHub lists at most this many files of a pull request.
GITHUB_FILE_LIMIT = 3000


class FileStatus(enum.StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    REMOVED = "removed"
    RENAMED = "renamed"
    COPIED = "copied"


class ReviewState(enum.StrEnum):
    APPROVED = "APPROVED"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    COMMENTED = "COMMENTED"
    DISMISSED = "DISMISSED"
    PENDING = "PENDING"


class UserType(enum.StrEnum):
    USER = "User"
    BOT = "Bot"
    ORGANIZATION = "Organization"


@dataclass(frozen=True, slots=True)
class ChangedFile:
    path: str
    status: FileStatus
    previous_path: str | None = None
    #: The unified-diff hunks GitHub sends; ``None`` for binary or very large files.
    patch: str | None = None
    additions: int = 0
    deletions: int = 0

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the change touches: a rename is judged by both names."""
        if self.previous_path and self.previous_path != self.path:
            return (self.path, self.previous_path)
        return (self.path,)

    @property
    def content_unseen(self) -> bool:
        """True when the file adds content the engine has not been shown."""
        if self.patch is not None or self.status is FileStatus.REMOVED:
            return False
        # A pure rename with no content change has no patch and adds nothing.
        return not (
            self.status is FileStatus.RENAMED and self.additions == 0 and self.deletions == 0
        )


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    user: str
    user_type: UserType
    state: ReviewState
    commit_id: str
    #: ISO 8601, as GitHub sends it; order of reviews is by this, then by id.
    submitted_at: str
    #: GitHub's author_association (OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE, ...).
    author_association: str = "NONE"


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A human's explicit confirmation of an extra gate (e.g. a staged rollout)."""

    gate: str
    user: str
    head_sha: str
    at: str


class ScanStatus(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of an external scan (e.g. supply chain) for one head sha."""

    gate: str
    head_sha: str
    status: ScanStatus
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CoAuthor:
    """A ``Co-authored-by: Name <email>`` trailer of a commit in the PR."""

    name: str
    email: str


@dataclass(frozen=True, slots=True)
class OverrideRequest:
    """A ``/merge-gate override <reason>`` comment, asked for the head it was made on.

    Whether it counts is :mod:`gate.override`'s question, asked at every evaluation.
    """

    user: str
    reason: str
    head_sha: str
    at: str
    comment_id: int = 0


@dataclass(frozen=True, slots=True)
class PullSnapshot:
    repo: str
    number: int
    author: str
    author_type: UserType
    head_sha: str
    base_ref: str
    base_sha: str
    files: tuple[ChangedFile, ...]
    #: False when GitHub's list stopped at its cap (or the reader could not finish).
    files_complete: bool = True
    #: Other lists read short ("reviews", "commits"): the decision fails closed.
    cut_lists: tuple[str, ...] = ()
    reviews: tuple[Review, ...] = ()
    labels: frozenset[str] = frozenset()
    commit_authors: frozenset[str] = frozenset()
    #: Git author and committer e-mails of the PR's commits (an agent may have no account).
    commit_emails: frozenset[str] = frozenset()
    co_authors: tuple[CoAuthor, ...] = ()
    pushers: frozenset[str] = frozenset()
    requested_users: frozenset[str] = frozenset()
    requested_teams: frozenset[str] = frozenset()
    draft: bool = False
    confirmations: tuple[Confirmation, ...] = ()
    scans: tuple[ScanResult, ...] = ()
    overrides: tuple[OverrideRequest, ...] = ()
    #: ``Key: value`` trailers of the description and commits (lower-case keys).
    trailers: tuple[tuple[str, str], ...] = ()
    assignees: frozenset[str] = frozenset()
    #: Humans the agent worked for (:mod:`gate.delegation`): their approval never counts.
    delegates: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Teams:
    """Who belongs where, as facts: team members, and who may write to the repository.

    ``members``: ``org/team`` slug -> active member logins. ``writers``: logins
    (lower case) whose permission on the repository is write, maintain or admin,
    as GitHub reported it
    (https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user);
    ``author_association`` MEMBER or COLLABORATOR does not imply write access.
    """

    members: Mapping[str, frozenset[str]] = field(default_factory=dict)
    writers: frozenset[str] = frozenset()
    #: Logins of the repository's admins: who approves a gated file nobody owns.
    admins: frozenset[str] = frozenset()

    def has(self, team: str, login: str) -> bool:
        found = self.members.get(team.lower().lstrip("@"))
        return found is not None and login.lower() in found

    def can_write(self, login: str) -> bool:
        return login.lower() in self.writers

    @classmethod
    def of(cls, members: Mapping[str, Iterable[str]], *, writers: Iterable[str] = ()) -> Teams:
        return cls(
            members={
                team.lower().lstrip("@"): frozenset(login.lower() for login in logins)
                for team, logins in members.items()
            },
            writers=frozenset(login.lower() for login in writers),
        )


@dataclass(frozen=True, slots=True)
class Contents:
    """File texts the detectors asked for, keyed by (side, path); side is "base" or "head".

    A missing key means the reader did not fetch it; a ``None`` value means the file
    does not exist on that side (or was too large to read, see ``too_large``).
    """

    texts: Mapping[tuple[str, str], str | None] = field(default_factory=dict)
    too_large: frozenset[tuple[str, str]] = frozenset()
    #: Asked for but not read: past the reader's bound per decision. Fails closed.
    unread: frozenset[tuple[str, str]] = frozenset()

    def get(self, side: str, path: str) -> str | None:
        return self.texts.get((side, path))

    def has(self, side: str, path: str) -> bool:
        return (side, path) in self.texts
