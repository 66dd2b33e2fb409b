"""Routing deliveries: which events matter, and the coalescing key of each.

Routes on ``X-GitHub-Event`` and ``action`` into slim views of the few fields
merge-gate needs, rather than validating whole payloads (payload schemas drift;
a strict parse of a payload we only need three fields of would reject real
deliveries). Event reference: https://docs.github.com/webhooks/webhook-events-and-payloads
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
}


class MalformedPayload(ValueError):
    """A handled event whose payload lacks a field merge-gate needs."""


@dataclass(frozen=True, slots=True)
class Route:
    key: str
    repo: str | None
    installation_id: int | None


def _get(payload: Mapping[str, Any], *path: str) -> Any:
    node: Any = payload
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            raise MalformedPayload(f"payload has no {'.'.join(path)}")
        node = node[part]
    return node


def handled(event: str, action: str | None) -> bool:
    if event not in HANDLED:
        return False
    actions = HANDLED[event]
    return actions is None or action in actions


def route(event: str, payload: Mapping[str, Any]) -> Route:
    """The coalescing key: one per pull request, head sha, merge group or installation."""
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, Mapping) else None
    if event in ("installation", "installation_repositories", "membership", "ping"):
        return Route(
            key=f"install:{installation_id or 0}", repo=None, installation_id=installation_id
        )
    repo = str(_get(payload, "repository", "full_name"))
    if event in ("pull_request", "pull_request_review"):
        number = int(_get(payload, "pull_request", "number"))
        return Route(key=f"pr:{repo}#{number}", repo=repo, installation_id=installation_id)
    if event in ("check_run", "check_suite"):
        node = _get(payload, event)
        pulls = node.get("pull_requests") or []
        # Fork PRs are not listed in check_run.pull_requests: map them by head sha.
        if len(pulls) == 1 and isinstance(pulls[0], Mapping) and "number" in pulls[0]:
            return Route(
                key=f"pr:{repo}#{int(pulls[0]['number'])}",
                repo=repo,
                installation_id=installation_id,
            )
        return Route(
            key=f"sha:{repo}@{_get(node, 'head_sha')}", repo=repo, installation_id=installation_id
        )
    if event == "merge_group":
        head = _get(payload, "merge_group", "head_sha")
        return Route(key=f"group:{repo}@{head}", repo=repo, installation_id=installation_id)
    raise MalformedPayload(f"no route for event {event!r}")
