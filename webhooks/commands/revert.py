"""``gate revert OWNER/NAME#N``: open the revert pull request of a merged pull request.

    gate revert OWNER/NAME#N [--reason TEXT] [--ready] [--token-file FILE]
                [--api-url URL] [--data-dir DIR] [--redis-url URL] [--public-url URL]

It acts as the operator, with the operator's token (``GITHUB_TOKEN`` or
``--token-file``), never the App's: the App cannot push, and a revert is a
human's decision. One GraphQL query reads the pull request and what the token
may do, then GitHub's ``revertPullRequest`` mutation
(https://docs.github.com/graphql/reference/mutations#revertpullrequest) opens
the revert, a draft unless ``--ready``. Its description links the decision the
pull request merged on (from the audit log) and the ``gate trace`` to run; an
audit entry ``revert`` is appended. Refuses, exit 1, when the pull request is not
merged or the token cannot write; exit 2 on usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from webhooks.audit_store import (
    CHECKPOINT_FILE,
    SQLITE_FILE,
    FileCheckpointSink,
    default_origin,
    open_audit_log,
)
from webhooks.commands.trace import parse_pull
from webhooks.commands.verify import UsageProblem
from webhooks.keys import data_dir_from_env, load_keyring

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
_WRITE = frozenset({"WRITE", "MAINTAIN", "ADMIN"})
_LOOK = """
query($owner: String!, $name: String!, $number: Int!) {
  viewer { login }
  repository(owner: $owner, name: $name) {
    viewerPermission
    pullRequest(number: $number) { id number title url merged mergeCommit { oid } }
  }
}
"""
_REVERT = """
mutation($input: RevertPullRequestInput!) {
  revertPullRequest(input: $input) { revertPullRequest { number url isDraft } }
}
"""


class Refused(Exception):
    """GitHub, or what it said about the pull request, rules the revert out."""


def graphql_url(api_url: str) -> str:
    """api.github.com -> ``/graphql``; GitHub Enterprise Server ``/api/v3`` -> ``/api/graphql``."""
    base = api_url.rstrip("/")
    return base[: -len("/v3")] + "/graphql" if base.endswith("/api/v3") else base + "/graphql"


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UsageProblem(f"--token-file: {error}") from None
    else:
        token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        raise UsageProblem("an operator token is needed: set GITHUB_TOKEN or pass --token-file")
    return token


def _graphql(client: httpx.Client, url: str, query: str, variables: dict[str, Any]) -> Any:
    response = client.post(url, json={"query": query, "variables": variables})
    if response.status_code == 401:
        raise Refused("GitHub rejected the token (401)")
    if response.status_code >= 400:
        raise Refused(f"GitHub answered {response.status_code}: {response.text[:300]}")
    answer = response.json()
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if errors:
        raise Refused("; ".join(str(e.get("message")) for e in errors if isinstance(e, dict)))
    return answer.get("data") or {}


async def _merged_on(args: argparse.Namespace, repo: str, number: int) -> dict[str, Any] | None:
    """The last evaluation of the pull request in the audit log (what it merged on)."""
    data_dir = _data_dir(args)
    if not args.redis_url and not (data_dir / SQLITE_FILE).exists():
        return None
    log = await open_audit_log(
        data_dir=data_dir,
        keyring=None,
        origin="",
        redis_url=args.redis_url,
        redis_prefix=f"{args.redis_prefix}:audit",
        read_only=True,
    )
    try:
        rows = await log.query(repo=repo, pr=number)
    finally:
        await log.close()
    evaluations = [r for r in rows if r.get("kind") == "evaluation"]
    return evaluations[-1] if evaluations else None


def _body(
    args: argparse.Namespace, *, repo: str, number: int, merge: str, decision: dict[str, Any] | None
) -> str:
    lines = [f"Reverts {repo}#{number} (merge commit {merge[:12] or 'unknown'})."]
    if args.reason:
        lines += ["", f"Reason: {args.reason}"]
    lines += ["", "merge-gate:"]
    if decision:
        where = (
            f"{args.public_url.rstrip('/')}/decisions/{decision['decision_id']}"
            if args.public_url and decision.get("decision_id")
            else "the audit log"
        )
        approvers = ", ".join(str(a) for a in decision.get("approvers") or []) or "nobody"
        lines.append(
            f"- it merged on decision {where}: {decision.get('conclusion')}, approved by "
            f"{approvers}, signed record {decision.get('record_digest')}"
        )
    else:
        lines.append("- no decision for it was found in this audit log")
    lines.append(f"- the trace: `gate trace --pr {repo}#{number}`")
    return "\n".join(lines)


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir) if args.data_dir else data_dir_from_env()


async def _record(args: argparse.Namespace, fields: dict[str, object]) -> int | None:
    """Append the ``revert`` entry to the service's log (its key signs the checkpoint)."""
    data_dir = _data_dir(args)
    key_file = os.environ.get("GATE_SIGNING_KEY_FILE")
    if not args.redis_url and not (data_dir / SQLITE_FILE).exists():
        return None
    if not key_file and not (data_dir / "keys" / "signing.pem").exists():
        return None
    keyring = load_keyring(data_dir=data_dir, key_file=Path(key_file) if key_file else None)
    checkpoints = FileCheckpointSink(data_dir / CHECKPOINT_FILE).read()
    app_id = os.environ.get("GATE_APP_ID")
    origin = checkpoints[-1].origin if checkpoints else default_origin(app_id=app_id)
    log = await open_audit_log(
        data_dir=data_dir,
        keyring=keyring,
        origin=origin,
        redis_url=args.redis_url,
        redis_prefix=f"{args.redis_prefix}:audit",
    )
    now = datetime.now(UTC)
    try:
        seq, _ = await log.append("revert", fields, time=now)
    finally:
        await log.close(now)
    return seq


def revert(args: argparse.Namespace) -> str:
    """Open the revert; returns its URL. Raises :class:`Refused` or :class:`UsageProblem`."""
    repo, number = parse_pull(args.pull)
    owner, name = repo.split("/", 1)
    token = _token(args)
    url = graphql_url(args.api_url)
    headers = {"Authorization": f"bearer {token}", "User-Agent": "merge-gate"}
    with httpx.Client(headers=headers, timeout=30) as client:
        data = _graphql(client, url, _LOOK, {"owner": owner, "name": name, "number": number})
        repository = data.get("repository")
        pull = (repository or {}).get("pullRequest")
        if not pull:
            raise Refused(f"{repo}#{number} does not exist or this token cannot see it")
        if not pull.get("merged"):
            raise Refused(f"{repo}#{number} is not merged: there is nothing to revert")
        permission = repository.get("viewerPermission") or "NONE"
        if permission not in _WRITE:
            raise Refused(
                f"the token cannot write to {repo} (permission {permission}): a revert "
                "needs write access"
            )
        merge = str((pull.get("mergeCommit") or {}).get("oid") or "")
        decision = asyncio.run(_merged_on(args, repo, number))
        body = _body(args, repo=repo, number=number, merge=merge, decision=decision)
        title = f'Revert "{pull.get("title")}"' + (f": {args.reason}" if args.reason else "")
        done = _graphql(
            client,
            url,
            _REVERT,
            {
                "input": {
                    "pullRequestId": pull["id"],
                    "title": title[:256],
                    "body": body,
                    "draft": not args.ready,
                }
            },
        )
    opened = done["revertPullRequest"]["revertPullRequest"]
    seq = asyncio.run(
        _record(
            args,
            {
                "repo": repo,
                "pr": number,
                "merge_commit_sha": merge,
                "revert_pr": opened["number"],
                "revert_url": opened["url"],
                "draft": opened.get("isDraft"),
                "by": (data.get("viewer") or {}).get("login"),
                "reason": (args.reason or "")[:500],
                "record_digest": (decision or {}).get("record_digest"),
            },
        )
    )
    if seq is None:
        print("warning: no audit log here to record the revert in", file=sys.stderr)
    return str(opened["url"])


def run(args: argparse.Namespace) -> int:
    try:
        print(revert(args))
    except UsageProblem as error:
        print(f"gate revert: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (Refused, httpx.HTTPError) as error:
        print(f"gate revert: refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "revert",
        help="open the revert PR of a merged PR (operator's token)",
        description="Open the revert pull request of a merged pull request, as the operator.",
        epilog="example: GITHUB_TOKEN=... gate revert acme/app#42 --reason 'leaked key'",
    )
    parser.add_argument("pull", metavar="OWNER/NAME#N")
    parser.add_argument("--reason", metavar="TEXT", help="why: in the title, body and audit log")
    parser.add_argument("--ready", action="store_true", help="open it ready for review")
    parser.add_argument(
        "--token-file", metavar="FILE", help="the operator's token (or $GITHUB_TOKEN)"
    )
    parser.add_argument(
        "--api-url",
        default=os.environ.get("GATE_GITHUB_API_URL") or "https://api.github.com",
        help="GitHub's REST root (default: $GATE_GITHUB_API_URL or api.github.com)",
    )
    parser.add_argument(
        "--public-url",
        default=os.environ.get("GATE_PUBLIC_URL") or None,
        help="merge-gate's public URL, to link the decision (default: $GATE_PUBLIC_URL)",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="default: $GATE_DATA_DIR or ./.gate")
    parser.add_argument("--redis-url", default=os.environ.get("GATE_REDIS_URL") or None)
    parser.add_argument(
        "--redis-prefix", default=os.environ.get("GATE_REDIS_PREFIX") or "merge-gate"
    )
    parser.set_defaults(func=run)
