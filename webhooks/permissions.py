"""What merge-gate asks GitHub for, derived from what it actually does.

Every REST operation the service (or ``gate doctor``) performs is listed in
:data:`OPERATIONS` with the GitHub App permission it needs, and every webhook
event it handles is listed in :data:`EVENT_PERMISSIONS`. The App's
``default_permissions`` are *derived* from those two tables by
:func:`needed_permissions`, so that adding a call without its permission, or
keeping a permission no call uses, shows up as a failing test rather than as a
403 in production or as needless privilege.

Facts come from GitHub's docs:

- "Permissions required for GitHub Apps":
  https://docs.github.com/rest/authentication/permissions-required-for-github-apps
  (each REST endpoint's page also says, under "Fine-grained access tokens for …",
  which permission an installation token needs);
- "Choosing permissions for a GitHub App" and "Webhook events and payloads":
  https://docs.github.com/webhooks/webhook-events-and-payloads (each event names
  the permission an App must have to receive it);
- endpoints that are called with the App's JWT (``/app/...`` and
  ``GET /repos/{owner}/{repo}/installation``) need no installation permission:
  https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ALL_EVENTS",
    "ALL_OPERATIONS",
    "AUTOMATIC_EVENTS",
    "DOCTOR_OPERATIONS",
    "EVENT_PERMISSIONS",
    "OPERATIONS",
    "OPTIONAL_OPERATIONS",
    "SERVICE_OPERATIONS",
    "Access",
    "Need",
    "UnknownOperationError",
    "covers",
    "manifest_events",
    "needed_permissions",
    "permission_shortfall",
]


class Access(enum.IntEnum):
    """Permission levels, ordered so that a higher one includes the lower ones."""

    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        """The spelling GitHub uses in manifests and installation payloads."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Access:
        return cls[value.upper()]


@dataclass(frozen=True, slots=True)
class Need:
    """One permission at one level; ``None`` means "works with the App JWT"."""

    permission: str | None
    access: Access = Access.READ
    #: Why: shown in docs/operations.md and by ``gate doctor`` when it is missing.
    why: str = ""


_JWT = Need(None, why="called with the App's JWT; installation permissions do not apply")

#: (method, path template) -> the permission an installation token needs.
#: Path templates are spelled as in GitHub's OpenAPI description.
OPERATIONS: Mapping[tuple[str, str], Need] = MappingProxyType(
    {
        # Pull requests: https://docs.github.com/rest/pulls
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"): Need(
            "pull_requests", why="read the pull request being gated"
        ),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files"): Need(
            "pull_requests", why="list the changed files the policy judges"
        ),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"): Need(
            "pull_requests", why="count code-owner approvals"
        ),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits"): Need(
            "pull_requests", why="attribute commits to agents and humans"
        ),
        ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"): Need(
            "pull_requests", why="see which owners were already asked"
        ),
        ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"): Need(
            "pull_requests", Access.WRITE, why="request code-owner reviews"
        ),
        ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"): Need(
            "pull_requests", why="map a check_run/check_suite head SHA to its pull requests"
        ),
        ("GET", "/repos/{owner}/{repo}/pulls"): Need(
            "pull_requests", why="find fork pull requests by head SHA (not linked to commits)"
        ),
        # GraphQL: https://docs.github.com/graphql/reference/objects#pullrequest (an
        # installation token reads what the same REST calls would).
        ("POST", "/graphql"): Need(
            "pull_requests",
            why="read a head's pull requests, their reviews and commits in one query",
        ),
        # Issues: https://docs.github.com/rest/issues/comments#create-an-issue-comment
        # ("Issues" or "Pull requests" write; on a pull request the latter suffices).
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): Need(
            "pull_requests", Access.WRITE, why="break-glass: comment on the overridden pull request"
        ),
        # Optional, like administration: only installations that want review issues grant it.
        ("POST", "/repos/{owner}/{repo}/issues"): Need(
            "issues", Access.WRITE, why="break-glass, optional: open the post-hoc review issue"
        ),
        # Collaborators: https://docs.github.com/rest/collaborators/collaborators
        ("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission"): Need(
            "metadata", why="check that an approver has write access (not only membership)"
        ),
        ("GET", "/repos/{owner}/{repo}/collaborators"): Need(
            "metadata", why="the repository's admins approve gated files CODEOWNERS leaves unowned"
        ),
        # Contents: https://docs.github.com/rest/repos/contents, /rest/git/blobs
        ("GET", "/repos/{owner}/{repo}/contents/{path}"): Need(
            "contents", why="read .github/merge-gate.yml and CODEOWNERS"
        ),
        ("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}"): Need(
            "contents", why="read files too large for the contents API"
        ),
        ("GET", "/repos/{owner}/{repo}/compare/{basehead}"): Need(
            "contents", why="list the commits a merge-group head adds to its base"
        ),
        # Checks: https://docs.github.com/rest/checks/runs
        ("POST", "/repos/{owner}/{repo}/check-runs"): Need(
            "checks", Access.WRITE, why="post the required merge-gate check run"
        ),
        ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"): Need(
            "checks", Access.WRITE, why="complete the check run with the decision"
        ),
        ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}"): Need(
            "checks", why="re-read a check run on re-request"
        ),
        ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs"): Need(
            "checks", why="find this App's earlier run on the head commit"
        ),
        # Teams: https://docs.github.com/rest/teams/members (organization permission)
        ("GET", "/orgs/{org}/teams/{team_slug}/members"): Need(
            "members", why="expand @org/team code owners"
        ),
        ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"): Need(
            "members", why="check that an approver belongs to an owning team"
        ),
        # Metadata (granted to every App): https://docs.github.com/rest/repos/rules
        ("GET", "/repos/{owner}/{repo}"): Need("metadata", why="find the default branch"),
        ("GET", "/repos/{owner}/{repo}/rules/branches/{branch}"): Need(
            "metadata", why="gate doctor: see active ruleset rules on a branch"
        ),
        ("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id}"): Need(
            "metadata", why="gate doctor: read a ruleset (bypass list only with write access)"
        ),
        # App JWT: https://docs.github.com/rest/apps/webhooks, /rest/apps/apps
        ("GET", "/app/hook/deliveries"): _JWT,
        ("POST", "/app/hook/deliveries/{delivery_id}/attempts"): _JWT,
        ("GET", "/repos/{owner}/{repo}/installation"): _JWT,
        ("GET", "/app"): _JWT,
        ("GET", "/app/installations"): _JWT,
        ("POST", "/app/installations/{installation_id}/access_tokens"): _JWT,
        # Unauthenticated: https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest
        ("POST", "/app-manifests/{code}/conversions"): Need(
            None, why="gate setup: exchange the one-time manifest code"
        ),
        # Optional, doctor only: https://docs.github.com/rest/actions/permissions
        ("GET", "/repos/{owner}/{repo}/actions/permissions/workflow"): Need(
            "actions", why="gate doctor only, optional: can Actions approve pull requests?"
        ),
        # Administration is deliberately NOT requested: classic branch protection is
        # only readable with it, so gate doctor reports what it cannot see instead.
        ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection"): Need(
            "administration", why="gate doctor only, optional: read classic branch protection"
        ),
    }
)

#: What the running service (receiver + worker) calls.
SERVICE_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits"),
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"),
    ("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"),
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("GET", "/repos/{owner}/{repo}/contents/{path}"),
    ("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    ("POST", "/repos/{owner}/{repo}/check-runs"),
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    ("GET", "/repos/{owner}/{repo}/pulls"),
    ("POST", "/graphql"),
    ("GET", "/repos/{owner}/{repo}/compare/{basehead}"),
    ("GET", "/orgs/{org}/teams/{team_slug}/members"),
    ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"),
    ("GET", "/app/hook/deliveries"),
    ("POST", "/app/hook/deliveries/{delivery_id}/attempts"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
)

#: What ``gate doctor`` calls. Branch protection is absent on purpose: doctor
#: tries it and reports "not visible" on 403 rather than making the App ask for
#: administration, which would let a compromised key rewrite branch protection.
DOCTOR_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("GET", "/app"),
    ("GET", "/app/installations"),
    ("GET", "/repos/{owner}/{repo}/installation"),
    ("POST", "/app/installations/{installation_id}/access_tokens"),
    ("GET", "/repos/{owner}/{repo}"),
    ("GET", "/repos/{owner}/{repo}/rules/branches/{branch}"),
    ("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id}"),
)

#: Operations that work only where an installation grants more than the manifest
#: asks for; without the grant the feature degrades and says so (break-glass review
#: issues; doctor's view of classic protection and of Actions' approvals).
OPTIONAL_OPERATIONS: tuple[tuple[str, str], ...] = (
    ("POST", "/repos/{owner}/{repo}/issues"),
    ("GET", "/repos/{owner}/{repo}/branches/{branch}/protection"),
    ("GET", "/repos/{owner}/{repo}/actions/permissions/workflow"),
)

#: Every operation the product relies on. The GitHub adapter's author keeps this
#: in sync with the adapter's real calls (a test derives it from them).
ALL_OPERATIONS: tuple[tuple[str, str], ...] = (
    *SERVICE_OPERATIONS,
    *(op for op in DOCTOR_OPERATIONS if op not in SERVICE_OPERATIONS),
    ("POST", "/app-manifests/{code}/conversions"),
)

#: Webhook event -> the permission an App needs to be sent it; ``None`` for the
#: events GitHub sends every App unasked (they cannot be listed in a manifest's
#: ``default_events``). https://docs.github.com/webhooks/webhook-events-and-payloads
EVENT_PERMISSIONS: Mapping[str, Need | None] = MappingProxyType(
    {
        "pull_request": Need("pull_requests", why="re-evaluate on open/synchronize/edit"),
        "pull_request_review": Need("pull_requests", why="re-evaluate when owners approve"),
        "check_run": Need("checks", why="handle 'Re-run' on the merge-gate check"),
        "check_suite": Need("checks", why="handle re-requested suites"),
        "merge_group": Need("merge_queues", why="gate merge-queue groups"),
        "membership": Need("members", why="re-evaluate when an owning team changes"),
        # "To subscribe to this event, a GitHub App must have at least read-level
        # access for the Issues repository permission" (webhook events and payloads).
        "issue_comment": Need("issues", why="break-glass: '/merge-gate override' comments"),
        "installation": None,
        "installation_repositories": None,
    }
)

#: Every event merge-gate handles.
ALL_EVENTS: tuple[str, ...] = tuple(EVENT_PERMISSIONS)

#: Sent to every App whatever it subscribes to.
AUTOMATIC_EVENTS: frozenset[str] = frozenset(e for e, n in EVENT_PERMISSIONS.items() if n is None)


class UnknownOperationError(KeyError):
    """An operation or event that the tables above do not know: add it there."""


def manifest_events(events: Iterable[str] = ALL_EVENTS) -> list[str]:
    """The events to list in a manifest's ``default_events`` (automatic ones dropped)."""
    out: list[str] = []
    for event in events:
        if event not in EVENT_PERMISSIONS:
            raise UnknownOperationError(event)
        if event not in AUTOMATIC_EVENTS and event not in out:
            out.append(event)
    return out


def _add(needed: dict[str, Access], need: Need | None) -> None:
    if need is None or need.permission is None:
        return
    if needed.get(need.permission, Access.READ) <= need.access:
        needed[need.permission] = need.access


def needed_permissions(
    operations: Iterable[tuple[str, str]],
    *,
    events: Iterable[str] = ALL_EVENTS,
    include: Iterable[str] = ("metadata",),
) -> dict[str, str]:
    """The least permission set for ``operations`` plus receiving ``events``.

    Returns ``{permission: "read" | "write" | "admin"}`` as a manifest's
    ``default_permissions`` spells it, sorted by name. ``metadata: read`` is
    included by default because GitHub grants it to every App that has any
    repository permission ("Metadata permissions" in the docs above).

    Operations marked ``administration`` in :data:`OPERATIONS` are optional
    (doctor-only) and must not be passed here unless you mean to request them.
    """
    needed: dict[str, Access] = {name: Access.READ for name in include}
    for method, path in operations:
        key = (method.upper(), path)
        if key not in OPERATIONS:
            raise UnknownOperationError(f"{method} {path}")
        _add(needed, OPERATIONS[key])
    for event in events:
        if event not in EVENT_PERMISSIONS:
            raise UnknownOperationError(event)
        _add(needed, EVENT_PERMISSIONS[event])
    return {name: needed[name].label for name in sorted(needed)}


def covers(granted: Mapping[str, str], *, permission: str, access: str) -> bool:
    """Whether ``granted`` (as GitHub reports it) includes ``permission`` at ``access``."""
    have = granted.get(permission)
    if have is None:
        return False
    try:
        return Access.parse(have) >= Access.parse(access)
    except KeyError:
        return False


def permission_shortfall(
    granted: Mapping[str, str], needed: Mapping[str, str]
) -> dict[str, tuple[str | None, str]]:
    """``{permission: (granted level or None, needed level)}`` for every gap."""
    return {
        name: (granted.get(name), level)
        for name, level in needed.items()
        if not covers(granted, permission=name, access=level)
    }
