"""Signed webhook deliveries built from GitHub's own example payloads.

The examples (``tests/fixtures/github/webhook-examples.json``, from
``@octokit/webhooks-examples`` 7.6.1) are real payloads GitHub sent; tests patch
only what they care about (repository, PR number, head sha, users,
installation) so everything else keeps GitHub's shape.

Signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``,
https://docs.github.com/webhooks/using-webhooks/validating-webhook-deliveries
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

EXAMPLES_PATH = (
    Path(__file__).resolve().parent.parent / "fixtures" / "github" / "webhook-examples.json"
)


@cache
def _examples() -> dict[str, list[dict[str, Any]]]:
    with EXAMPLES_PATH.open(encoding="utf-8") as f:
        data: list[dict[str, Any]] = json.load(f)
    return {entry["name"]: entry["examples"] for entry in data}


def events() -> list[str]:
    """Events with examples here (the ones merge-gate handles)."""
    return sorted(_examples())


def actions(event: str) -> list[str | None]:
    """The ``action`` of each example of ``event``, in order (may repeat)."""
    return [ex.get("action") for ex in _examples()[event]]


def example(event: str, action: str | None = None, index: int = 0) -> dict[str, Any]:
    """A deep copy of GitHub's ``index``-th example of ``event`` with ``action``."""
    candidates = [ex for ex in _examples()[event] if action is None or ex.get("action") == action]
    if index >= len(candidates):
        raise LookupError(
            f"{event}/{action}: {len(candidates)} example(s); actions available: {actions(event)}"
        )
    return copy.deepcopy(candidates[index])


def _replace_strings(node: Any, old: str, new: str) -> Any:
    """Replace ``old`` by ``new`` inside every string of ``node``, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _replace_strings(value, old, new)
        return node
    if isinstance(node, list):
        for i, value in enumerate(node):
            node[i] = _replace_strings(value, old, new)
        return node
    if isinstance(node, str) and old in node:
        return node.replace(old, new)
    return node


def _dicts(node: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            out.append(cur)
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return out


def set_repository(
    payload: dict[str, Any], full_name: str, *, repo_id: int | None = None
) -> dict[str, Any]:
    """Move the event to ``full_name``: every URL and every copy of the repository."""
    repo = payload.get("repository")
    if not isinstance(repo, dict):
        raise KeyError("payload has no repository")
    old_full, old_id = repo["full_name"], repo["id"]
    owner, name = full_name.split("/")
    _replace_strings(payload, f"/{old_full}", f"/{full_name}")
    old_owner = old_full.split("/")[0]
    for d in _dicts(payload):
        label = d.get("label")
        if isinstance(label, str) and label.startswith(f"{old_owner}:"):
            # A PR side's label is "owner:ref".
            d["label"] = f"{owner}:{label.partition(':')[2]}"
    for d in _dicts(payload):
        if d.get("full_name") in (old_full, full_name) and "name" in d:
            d["full_name"] = full_name
            d["name"] = name
            if isinstance(d.get("owner"), dict):
                d["owner"]["login"] = owner
        elif "name" in d and str(d.get("url", "")).endswith(f"/repos/{full_name}"):
            # A check's pull_requests[].head.repo is just {id, url, name}.
            d["name"] = name
        else:
            continue
        if repo_id is not None and d.get("id") == old_id:
            d["id"] = repo_id
    return payload


def set_installation(payload: dict[str, Any], installation_id: int) -> dict[str, Any]:
    """The ``installation`` GitHub adds to every App delivery (some examples lack it)."""
    inst = payload.setdefault("installation", {})
    inst["id"] = installation_id
    inst.setdefault("node_id", f"MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{installation_id}")
    return payload


def _head_sha(payload: dict[str, Any]) -> str | None:
    for key in ("pull_request", "check_run", "check_suite", "merge_group"):
        obj = payload.get(key)
        if isinstance(obj, dict):
            if key == "pull_request":
                return str(obj["head"]["sha"])
            return str(obj["head_sha"])
    return None


def _user(login: str, type_: str, user_id: int | None = None) -> dict[str, Any]:
    uid = (
        user_id
        if user_id is not None
        else int(hashlib.sha1(login.encode(), usedforsecurity=False).hexdigest()[:7], 16)
    )
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": type_,
        "site_admin": False,
    }


def set_pull(
    payload: dict[str, Any],
    *,
    number: int | None = None,
    head_sha: str | None = None,
    head_ref: str | None = None,
    base_ref: str | None = None,
    base_sha: str | None = None,
    author: str | None = None,
    author_type: str = "User",
    draft: bool | None = None,
) -> dict[str, Any]:
    """Patch the PR an event is about (``pull_request*``, ``check_*``, ``merge_group``)."""
    if head_sha is not None:
        old = _head_sha(payload)
        if old:
            _replace_strings(payload, old, head_sha)
    pr = payload.get("pull_request")
    linked: list[dict[str, Any]] = []
    for key in ("check_run", "check_suite"):
        obj = payload.get(key)
        if isinstance(obj, dict):
            linked += obj.get("pull_requests") or []
            suite = obj.get("check_suite")
            if isinstance(suite, dict):
                linked += suite.get("pull_requests") or []
    if number is not None:
        old_number = (
            pr["number"] if isinstance(pr, dict) else (linked[0]["number"] if linked else None)
        )
        if old_number is not None:
            for fmt in ("/pulls/{}", "/pull/{}", "/issues/{}"):
                _replace_strings(payload, fmt.format(old_number), fmt.format(number))
        if "number" in payload:
            payload["number"] = number
        if isinstance(pr, dict):
            pr["number"] = number
        for ref in linked:
            ref["number"] = number
    sides: list[dict[str, Any]] = []
    if isinstance(pr, dict):
        sides.append(pr)
    sides += linked
    for side in sides:
        if head_ref is not None:
            side["head"]["ref"] = head_ref
            if "label" in side["head"]:
                side["head"]["label"] = f"{side['head']['label'].split(':')[0]}:{head_ref}"
        if base_ref is not None:
            side["base"]["ref"] = base_ref
            if "label" in side["base"]:
                side["base"]["label"] = f"{side['base']['label'].split(':')[0]}:{base_ref}"
        if base_sha is not None:
            side["base"]["sha"] = base_sha
    if isinstance(pr, dict):
        if author is not None:
            pr["user"] = _user(author, author_type)
        if draft is not None:
            pr["draft"] = draft
    return payload


def set_sender(payload: dict[str, Any], login: str, type_: str = "User") -> dict[str, Any]:
    payload["sender"] = _user(login, type_)
    return payload


def set_review(
    payload: dict[str, Any],
    *,
    user: str | None = None,
    user_type: str = "User",
    state: str | None = None,
    commit_id: str | None = None,
    author_association: str | None = None,
    review_id: int | None = None,
) -> dict[str, Any]:
    """Patch ``review`` of a ``pull_request_review`` event (``state`` lower-case there)."""
    review = payload["review"]
    if user is not None:
        review["user"] = _user(user, user_type)
    if state is not None:
        review["state"] = state.lower()
    if commit_id is not None:
        review["commit_id"] = commit_id
    if author_association is not None:
        review["author_association"] = author_association
    if review_id is not None:
        review["id"] = review_id
    return payload


def build(
    event: str,
    action: str | None = None,
    *,
    index: int = 0,
    repo: str | None = None,
    repo_id: int | None = None,
    installation_id: int | None = None,
    number: int | None = None,
    head_sha: str | None = None,
    author: str | None = None,
    author_type: str = "User",
    sender: str | None = None,
    sender_type: str = "User",
) -> dict[str, Any]:
    """An example with the usual patches applied in one call."""
    payload = example(event, action, index)
    if repo is not None:
        set_repository(payload, repo, repo_id=repo_id)
    if installation_id is not None:
        set_installation(payload, installation_id)
    if number is not None or head_sha is not None or author is not None:
        set_pull(payload, number=number, head_sha=head_sha, author=author, author_type=author_type)
    if sender is not None:
        set_sender(payload, sender, sender_type)
    return payload


def encode(payload: dict[str, Any]) -> bytes:
    """The body bytes; sign exactly these (re-serialising would change the signature)."""
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, delivery_id: str, body: bytes, secret: str) -> dict[str, str]:
    """The headers GitHub sends with an App's webhook delivery."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/fake",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": "1",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "1",
        # GitHub still sends the legacy SHA-1 signature alongside.
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": sign(body, secret),
    }


def delivery(
    event: str,
    action: str | None = None,
    *,
    secret: str,
    delivery_id: str | None = None,
    **patches: Any,
) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    """``(payload, body, headers)`` ready to POST to the webhook endpoint.

    ``patches`` are :func:`build`'s keyword arguments.
    """
    payload = build(event, action, **patches)
    body = encode(payload)
    return payload, body, headers(event, delivery_id or str(uuid.uuid4()), body, secret)
