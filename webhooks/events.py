"""Routing deliveries: which events matter, their typed job keys and intents.

A delivery is translated once, here, at the receiver, into an *intent*: the few
facts merge-gate acts on, typed. The store keeps the intent, not GitHub's JSON,
and the worker never sees a raw payload. Payload schemas drift, so nothing is
validated beyond the fields routed on (a strict parse of whole payloads would
reject real deliveries).
Event reference: https://docs.github.com/webhooks/webhook-events-and-payloads
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gate.override import parse_command

#: event -> actions merge-gate acts on (None: every action).
HANDLED: Mapping[str, frozenset[str] | None] = {
    "pull_request": frozenset(
        {
            "opened",
            "synchronize",
            "reopened",
            "ready_for_review",
            "edited",
            "labeled",
            "unlabeled",
            # assignees are delegating humans (gate.delegation): they change who approves
            "assigned",
            "unassigned",
            "closed",
        }
    ),
    "pull_request_review": frozenset({"submitted", "edited", "dismissed"}),
    "check_run": frozenset({"rerequested", "requested_action"}),
    "check_suite": frozenset({"requested", "rerequested"}),
    "merge_group": frozenset({"checks_requested"}),
    "installation": None,
    "installation_repositories": None,
    "membership": frozenset({"added", "removed"}),
    "ping": None,
    # Only "/merge-gate override <reason>" on a pull request is acted on (break-glass).
    "issue_comment": frozenset({"created"}),
}


#: The check run's buttons (``requested_action.identifier``).
CONFIRM_ROLLOUT = "confirm_rollout"
CLEAR_SECRET = "clear_secret"  # noqa: S105 - a button's name, not a secret


class MalformedPayload(ValueError):
    """A handled event whose payload lacks a field merge-gate needs."""


class NotACommand(MalformedPayload):
    """A comment that is not a merge-gate command (most are): acknowledged, not queued.

    A kind of :class:`MalformedPayload`, so routing still raises only that; the
    receiver answers it 202, not 400.
    """


# --- job keys -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PullKey:
    """One pull request: its deliveries coalesce (the newest head wins)."""

    repo: str
    number: int

    @property
    def text(self) -> str:
        return f"pr:{self.repo}#{self.number}"


@dataclass(frozen=True, slots=True)
class ShaKey:
    """A head sha whose pull requests are not named (fork check suites, re-runs)."""

    repo: str
    sha: str

    @property
    def text(self) -> str:
        return f"sha:{self.repo}@{self.sha}"


@dataclass(frozen=True, slots=True)
class GroupKey:
    repo: str
    head_sha: str

    @property
    def text(self) -> str:
        return f"group:{self.repo}@{self.head_sha}"


@dataclass(frozen=True, slots=True)
class InstallKey:
    installation_id: int

    @property
    def text(self) -> str:
        return f"install:{self.installation_id}"


JobKey = PullKey | ShaKey | GroupKey | InstallKey


def parse_key(text: str) -> JobKey:
    """The typed key of a store key string (the inverse of ``.text``)."""
    kind, _, rest = text.partition(":")
    if kind == "pr":
        repo, _, number = rest.rpartition("#")
        if repo and number.isdigit():
            return PullKey(repo, int(number))
    elif kind in ("sha", "group"):
        repo, _, sha = rest.rpartition("@")
        if repo and sha:
            return ShaKey(repo, sha) if kind == "sha" else GroupKey(repo, sha)
    elif kind == "install" and rest.isdigit():
        return InstallKey(int(rest))
    raise ValueError(f"not a job key: {text!r}")


# --- intents ------------------------------------------------------------------------------


class _Intent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    installation_id: int | None = None


class PullChanged(_Intent):
    """Something about one pull request changed: evaluate its head again."""

    kind: Literal["pull"] = "pull"
    repo: str
    number: int
    head_sha: str
    event: str
    action: str
    #: Who caused it; for ``synchronize`` the user who pushed the new head.
    sender: str = ""
    closed: bool = False


class HeadRequested(_Intent):
    """Check runs of a head sha were asked for again (re-run, check suite)."""

    kind: Literal["head"] = "head"
    repo: str
    head_sha: str
    numbers: tuple[int, ...] = ()


class RolloutConfirmed(_Intent):
    """A user pressed the check run's *Confirm rollout* button."""

    kind: Literal["confirm"] = "confirm"
    repo: str
    head_sha: str
    user: str
    identifier: str
    numbers: tuple[int, ...] = ()


class GroupQueued(_Intent):
    """A merge queue asks for checks on a merge group's head."""

    kind: Literal["merge_group"] = "merge_group"
    repo: str
    head_sha: str
    base_sha: str
    head_ref: str = ""


class InstallationChanged(_Intent):
    """Installation or team membership changed: caches must be dropped."""

    kind: Literal["installation"] = "installation"
    event: str
    action: str = ""
    #: ``org/team`` (lower case) of a ``membership`` event: its decisions are redone.
    team: str = ""


class OverrideRequested(_Intent):
    """``/merge-gate override <reason>`` was commented on a pull request (break-glass).

    Whether it counts is decided at evaluation, from the base branch's policy.
    """

    kind: Literal["override"] = "override"
    repo: str
    number: int
    user: str
    user_type: str = "User"
    reason: str
    comment_id: int = 0


Intent = Annotated[
    PullChanged
    | HeadRequested
    | RolloutConfirmed
    | GroupQueued
    | InstallationChanged
    | OverrideRequested,
    Field(discriminator="kind"),
]
_INTENT: TypeAdapter[Intent] = TypeAdapter(Intent)


@dataclass(frozen=True, slots=True)
class Route:
    key: JobKey
    intent: Intent

    @property
    def repo(self) -> str | None:
        return getattr(self.intent, "repo", None)


def handled(event: str, action: str | None) -> bool:
    if event not in HANDLED:
        return False
    actions = HANDLED[event]
    return actions is None or action in actions


def unchanged_decision(event: str, action: str | None, payload: Mapping[str, Any]) -> str | None:
    """Why a handled delivery cannot change any decision, or None when it may.

    Such a delivery costs nothing: no job, no GitHub call. Only what no input of
    the decision can see qualifies:

    - ``pull_request`` ``edited`` that changed neither the base (whose policy
      applies) nor the description (whose ``Requested-by`` trailers name delegating
      humans, :mod:`gate.delegation`): a new title;
    - ``pull_request_review`` ``edited``: only a review's text can be edited, never
      its state;
    - a ``pull_request_review`` ``submitted`` whose state is ``commented``: only
      approvals, change requests and dismissals count
      (https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request).
    """
    if event == "pull_request" and action == "edited":
        changes = payload.get("changes")
        changed = changes if isinstance(changes, Mapping) else {}
        if changed.get("base") is None and changed.get("body") is None:
            return "a title edit"
    if event == "pull_request_review" and action == "edited":
        return "a review's text edited"
    commented = _optional(payload, "review", "state").lower() == "commented"
    if event == "pull_request_review" and action == "submitted" and commented:
        return "a comment review"
    return None


def _get(payload: Mapping[str, Any], *path: str) -> Any:
    node: Any = payload
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            raise MalformedPayload(f"payload has no {'.'.join(path)}")
        node = node[part]
    return node


def _str(payload: Mapping[str, Any], *path: str) -> str:
    value = _get(payload, *path)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"{'.'.join(path)} is not a non-empty string")
    return value


def _int(payload: Mapping[str, Any], *path: str) -> int:
    value = _get(payload, *path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedPayload(f"{'.'.join(path)} is not an integer")
    return value


def _optional(payload: Mapping[str, Any], *path: str) -> str:
    """A string field that may be missing: "" when absent or not a string."""
    node: Any = payload
    for part in path:
        if not isinstance(node, Mapping):
            return ""
        node = node.get(part)
    return node if isinstance(node, str) else ""


def _numbers(node: Mapping[str, Any]) -> tuple[int, ...]:
    pulls = node.get("pull_requests")
    if not isinstance(pulls, list):
        return ()
    return tuple(
        int(p["number"])
        for p in pulls
        if isinstance(p, Mapping) and isinstance(p.get("number"), int)
    )


def route(event: str, payload: Mapping[str, Any], *, action: str | None = None) -> Route:
    """The typed intent of a delivery and the key it coalesces under."""
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, Mapping) else None
    if not isinstance(installation_id, int) or isinstance(installation_id, bool):
        installation_id = None
    action = action or (payload.get("action") if isinstance(payload.get("action"), str) else "")
    if event in ("installation", "installation_repositories", "membership", "ping"):
        team = ""
        if event == "membership":
            slug = _optional(payload, "team", "slug")
            org = _optional(payload, "organization", "login")
            team = f"{org}/{slug}".lower() if slug and org else ""
        intent: Intent = InstallationChanged(
            installation_id=installation_id, event=event, action=action or "", team=team
        )
        return Route(InstallKey(installation_id or 0), intent)
    repo = _str(payload, "repository", "full_name")
    if event == "issue_comment":
        return _comment_route(payload, repo=repo, installation_id=installation_id)
    if event in ("pull_request", "pull_request_review"):
        number = _int(payload, "pull_request", "number")
        intent = PullChanged(
            installation_id=installation_id,
            repo=repo,
            number=number,
            head_sha=_str(payload, "pull_request", "head", "sha"),
            event=event,
            action=action or "",
            sender=_optional(payload, "sender", "login"),
            closed=event == "pull_request" and action == "closed",
        )
        return Route(PullKey(repo, number), intent)
    if event in ("check_run", "check_suite"):
        node = _get(payload, event)
        head = _str(node, "head_sha")
        numbers = _numbers(node)
        if event == "check_run" and action == "requested_action":
            identifier = _optional(payload, "requested_action", "identifier")
            intent = RolloutConfirmed(
                installation_id=installation_id,
                repo=repo,
                head_sha=head,
                user=_str(payload, "sender", "login"),
                identifier=identifier,
                numbers=numbers,
            )
        else:
            intent = HeadRequested(
                installation_id=installation_id, repo=repo, head_sha=head, numbers=numbers
            )
        # Fork PRs are not listed in pull_requests: those are found by head sha.
        key: JobKey = PullKey(repo, numbers[0]) if len(numbers) == 1 else ShaKey(repo, head)
        return Route(key, intent)
    if event == "merge_group":
        head = _str(payload, "merge_group", "head_sha")
        intent = GroupQueued(
            installation_id=installation_id,
            repo=repo,
            head_sha=head,
            base_sha=_str(payload, "merge_group", "base_sha"),
            head_ref=_optional(payload, "merge_group", "head_ref"),
        )
        return Route(GroupKey(repo, head), intent)
    raise MalformedPayload(f"no route for event {event!r}")


def _comment_route(payload: Mapping[str, Any], *, repo: str, installation_id: int | None) -> Route:
    """An override command on a pull request's conversation; any other comment is not ours.

    https://docs.github.com/webhooks/webhook-events-and-payloads#issue_comment: a
    pull request's comments arrive as ``issue_comment`` with ``issue.pull_request`` set.
    """
    issue = _get(payload, "issue")
    comment = payload.get("comment")
    body = comment.get("body") if isinstance(comment, Mapping) else None
    reason = parse_command(body) if isinstance(body, str) else None
    if reason is None or not isinstance(issue, Mapping) or not issue.get("pull_request"):
        raise NotACommand("not a merge-gate command on a pull request")
    number = _int(payload, "issue", "number")
    comment_id = (payload.get("comment") or {}).get("id")
    intent = OverrideRequested(
        installation_id=installation_id,
        repo=repo,
        number=number,
        user=_str(payload, "comment", "user", "login"),
        user_type=str((payload.get("comment") or {}).get("user", {}).get("type") or "User"),
        reason=reason,
        comment_id=comment_id if isinstance(comment_id, int) else 0,
    )
    return Route(PullKey(repo, number), intent)


def encode(intent: Intent) -> bytes:
    """The bytes the store keeps for a delivery."""
    return intent.model_dump_json().encode()


def decode(body: bytes, *, event: str, action: str | None) -> Intent:
    """An intent back from the store.

    A body that is not an intent is a GitHub payload accepted by an older
    receiver: it is translated now, once, the same way.
    """
    try:
        return _INTENT.validate_json(body)
    except ValidationError:
        pass
    try:
        payload = json.loads(body)
    except ValueError:
        raise MalformedPayload("stored delivery is neither an intent nor JSON") from None
    if not isinstance(payload, Mapping):
        raise MalformedPayload("stored delivery is not a JSON object")
    return route(event, payload, action=action).intent
