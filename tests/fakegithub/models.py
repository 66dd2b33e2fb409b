"""The fake's in-memory world: plain dataclasses, mutated only under the fake's lock.

Tests build it through :class:`tests.fakegithub.state.GitHubState`'s helpers and
may read these objects back for assertions (``fake.check_runs(...)`` returns
copies, so reading is always safe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ViolationKind = Literal["request", "unimplemented", "response"]


@dataclass(frozen=True)
class Call:
    """One request the fake answered, in arrival order."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int
    #: The description's operation, e.g. ``"GET /repos/{owner}/{repo}/pulls/{pull_number}"``;
    #: ``None`` when the fake has no route for the request.
    operation: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Violation:
    """A request the API description rejects (or one the fake cannot answer)."""

    method: str
    path: str
    query: dict[str, str]
    message: str
    #: ``request``: the description rejects it; ``unimplemented``: valid but the
    #: fake has no route; ``response``: the fake's own answer broke the description.
    kind: ViolationKind = "request"


@dataclass
class User:
    login: str
    id: int
    type: str = "User"


@dataclass
class App:
    id: int
    slug: str
    name: str
    client_id: str
    public_key_pem: str
    owner: str
    permissions: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)


@dataclass
class Installation:
    id: int
    app_id: int
    account: str
    account_type: str = "Organization"
    #: ``None``: every repository of ``account``; else the full names it may reach.
    repositories: list[str] | None = None
    permissions: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def covers(self, full_name: str) -> bool:
        if self.repositories is None:
            return full_name.split("/")[0].lower() == self.account.lower()
        return full_name.lower() in {r.lower() for r in self.repositories}


@dataclass
class Ruleset:
    id: int
    name: str
    rules: list[dict[str, Any]]
    #: ``conditions.ref_name`` patterns: ``~DEFAULT_BRANCH``, ``~ALL`` or ``refs/heads/<glob>``.
    include: list[str]
    exclude: list[str]
    enforcement: str = "active"
    target: str = "branch"
    bypass_actors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Repo:
    full_name: str
    id: int
    default_branch: str = "main"
    private: bool = True
    fork: bool = False
    #: branch name -> head commit sha
    branches: dict[str, str] = field(default_factory=dict)
    #: ref or sha (as the test named it) -> path -> bytes
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: Every blob ever stored, by git blob sha (git never forgets one).
    blobs: dict[str, bytes] = field(default_factory=dict)
    #: branch -> the JSON ``GET .../branches/{branch}/protection`` answers
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)
    rulesets: list[Ruleset] = field(default_factory=list)
    #: "Allow GitHub Actions to create and approve pull requests".
    actions_can_approve: bool = False

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/")[1]


@dataclass
class PRFile:
    """One entry of ``GET /repos/{owner}/{repo}/pulls/{pull_number}/files``."""

    filename: str
    status: str = "modified"
    additions: int = 1
    deletions: int = 0
    patch: str | None = None
    previous_filename: str | None = None
    #: Blob sha of the new content; derived when not given.
    sha: str | None = None

    @classmethod
    def coerce(cls, value: PRFile | Mapping[str, Any] | str) -> PRFile:
        """Accept a ``PRFile``, a GitHub-style file dict, or just a path."""
        if isinstance(value, PRFile):
            return value
        if isinstance(value, str):
            return cls(value)
        known = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
        return cls(**known)


@dataclass
class PRCommit:
    """One entry of ``GET /repos/{owner}/{repo}/pulls/{pull_number}/commits``."""

    sha: str
    message: str = "Update"
    #: GitHub login the commit's author email maps to; ``None`` = no GitHub user.
    author_login: str | None = None
    author_type: str = "User"
    author_name: str | None = None
    author_email: str | None = None
    committer_login: str | None = None
    parents: list[str] = field(default_factory=list)

    @classmethod
    def coerce(cls, value: PRCommit | Mapping[str, Any]) -> PRCommit:
        if isinstance(value, PRCommit):
            return value
        known = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
        return cls(**known)


@dataclass
class Pull:
    repo: str
    number: int
    id: int
    author: str
    author_type: str
    head_sha: str
    head_ref: str
    head_repo: str
    base_ref: str
    base_sha: str
    files: list[PRFile] = field(default_factory=list)
    commits: list[PRCommit] = field(default_factory=list)
    draft: bool = False
    labels: list[str] = field(default_factory=list)
    title: str = ""
    body: str | None = None
    state: str = "open"
    merged: bool = False
    author_association: str = "CONTRIBUTOR"
    requested_users: list[str] = field(default_factory=list)
    requested_teams: list[str] = field(default_factory=list)
    created_at: str = "2024-01-01T00:00:00Z"
    updated_at: str = "2024-01-01T00:00:00Z"
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    assignees: list[str] = field(default_factory=list)

    @property
    def is_fork(self) -> bool:
        return self.head_repo.lower() != self.repo.lower()


@dataclass
class Review:
    id: int
    repo: str
    number: int
    user: str
    user_type: str
    state: str
    commit_id: str | None
    body: str = ""
    author_association: str = "MEMBER"
    submitted_at: str | None = "2024-01-01T00:00:00Z"


@dataclass
class CheckRun:
    id: int
    repo: str
    head_sha: str
    name: str
    app_id: int
    status: str = "queued"
    conclusion: str | None = None
    external_id: str | None = None
    details_url: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    #: Every annotation ever sent, in order: GitHub appends on each PATCH.
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Team:
    org: str
    slug: str
    id: int
    name: str
    members: list[str] = field(default_factory=list)
    maintainers: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """One webhook delivery of the App, as ``/app/hook/deliveries`` lists it."""

    id: int
    guid: str
    event: str
    action: str | None = None
    status_code: int = 200
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None
    delivered_at: str = "2024-01-01T00:00:00Z"
    duration: float = 0.05
    payload: dict[str, Any] = field(default_factory=dict)
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""

    @property
    def status(self) -> str:
        # GitHub reports the HTTP reason phrase style status ("OK", "Invalid HTTP Response: 500").
        return (
            "OK" if 200 <= self.status_code < 300 else f"Invalid HTTP Response: {self.status_code}"
        )


@dataclass
class IssueComment:
    """A comment on an issue or a pull request's conversation."""

    id: int
    repo: str
    number: int
    user: str
    user_type: str
    body: str
    created_at: str = "2024-01-01T00:00:00Z"


@dataclass
class Issue:
    repo: str
    number: int
    id: int
    title: str
    body: str
    user: str
    user_type: str = "Bot"
    created_at: str = "2024-01-01T00:00:00Z"
