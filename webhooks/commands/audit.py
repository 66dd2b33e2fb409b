"""``gate audit``: query the audit log, or verify that nobody has tampered with it.

    gate audit [--agent [LOGIN]] [--repo R] [--pr N] [--since 7d] [--until WHEN]
               [--conclusion merged|allowed|blocked|denied|...] [--format table|jsonl]
               [--data-dir DIR] [--redis-url URL]
    gate audit verify [--data-dir DIR] [--redis-url URL] [--checkpoints FILE]
               [--jwks URL|FILE | --key PEM] [--origin ORIGIN]

Every PR an agent merged in the last 7 days, with files, tiers and approvers::

    gate audit --agent --conclusion merged --since 7d

``--conclusion merged`` selects the ``merged`` entries the service appends when a PR
closes merged, each joined to the last evaluation of that PR (same head commit when
there is one), which holds the files, tiers and approvers. ``--agent`` alone means any
agent; ``--agent LOGIN`` one agent. WHEN is ``30m``, ``12h``, ``7d``, ``2w`` ago, or an
ISO 8601 date/time (UTC unless it says otherwise).

``verify`` streams every entry through :func:`gate.auditlog.verify_log`: seq numbers, the
hash chain, and the RFC 9162 tree against each signed checkpoint (default file
``<data dir>/checkpoints.log``; keys default to the data dir's active and retired keys).
With ``--redis-url`` the entries come from Redis and ``--data-dir`` still names where the
keys and checkpoints are.
Exit 0 if the log is intact, 1 naming the first bad entry, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.auditlog import ANY_AGENT, LogVerifier, VerifyReport
from gate.checkpoint import Checkpoint, InvalidCheckpoint, parse_checkpoints
from webhooks.audit_store import (
    CHECKPOINT_FILE,
    DEFAULT_REDIS_PREFIX,
    SQLITE_FILE,
    RedisAuditLog,
    SQLiteAuditLog,
    read_sqlite_entries,
)
from webhooks.commands.verify import UsageProblem, load_keys
from webhooks.keys import KeyFileError, data_dir_from_env, load_verification_keys

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2
_AGO = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime) -> datetime:
    """``7d``-style durations before ``now``, or an ISO 8601 date/time (UTC by default)."""
    match = _AGO.fullmatch(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither like 7d nor ISO 8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir) if args.data_dir else data_dir_from_env()


async def _open(args: argparse.Namespace) -> SQLiteAuditLog | RedisAuditLog:
    if args.redis_url:
        return RedisAuditLog.from_url(
            args.redis_url, keyring=None, origin="", sink=None, prefix=args.redis_prefix
        )
    path = _data_dir(args) / SQLITE_FILE
    try:
        return await SQLiteAuditLog.open(path, keyring=None, origin="", sink=None, read_only=True)
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no audit log there") from None


# --- query -----------------------------------------------------------------------------


def _files(row: dict[str, object]) -> list[object]:
    files = row.get("files")
    evaluation = row.get("evaluation")
    if files is None and isinstance(evaluation, dict):
        files = evaluation.get("files")
    return files if isinstance(files, list) else []


def _approvers(row: dict[str, object]) -> list[str]:
    approvers = row.get("approvers")
    evaluation = row.get("evaluation")
    if approvers is None and isinstance(evaluation, dict):
        approvers = evaluation.get("approvers")
    names = []
    for item in approvers if isinstance(approvers, list) else []:
        name = item.get("user") if isinstance(item, dict) else item
        names.append(str(name))
    return sorted(set(names))


def _table(rows: list[dict[str, object]], out: TextIO) -> None:
    header = ("TIME", "KIND", "PULL REQUEST", "AUTHOR", "CONCLUSION", "APPROVERS", "FILES")
    lines = [header]
    for row in rows:
        evaluation = row.get("evaluation")
        evaluated = evaluation if isinstance(evaluation, dict) else {}
        files = ", ".join(
            f"{f.get('path')} [{f.get('tier')}]" if isinstance(f, dict) else str(f)
            for f in _files(row)
        )
        conclusion = row.get("conclusion") or evaluated.get("conclusion") or ""
        if row.get("kind") == "merged":
            conclusion = f"merged ({conclusion or 'never evaluated'})"
        if row.get("kind") == "agent_action":  # a hook decision: what the agent did, and why
            conclusion = f"{row.get('decision')} ({row.get('rule')})"
            paths = row.get("paths")
            files = ", ".join(map(str, paths)) if isinstance(paths, list) else ""
            files = files or str(row.get("command", ""))
        lines.append(
            (
                str(row.get("time", "")),
                str(row.get("kind", "")),
                f"{row.get('repo', '')}#{row.get('pr', '')}"
                if row.get("pr")
                else str(row.get("repo", "")),
                str(row.get("author") or evaluated.get("author") or ""),
                str(conclusion),
                ", ".join(_approvers(row)),
                files,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.write("  ".join([*cells, line[-1]]).rstrip() + "\n")


async def _query(args: argparse.Namespace) -> list[dict[str, object]]:
    log = await _open(args)
    try:
        return await log.query(
            agent=args.agent,
            repo=args.repo,
            pr=args.pr,
            since=args.since,
            until=args.until,
            conclusion=args.conclusion,
        )
    finally:
        await log.close()


def run_query(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    try:
        args.since = parse_when(args.since, now=now) if args.since else None
        args.until = parse_when(args.until, now=now) if args.until else None
        rows = asyncio.run(_query(args))
    except (UsageProblem, argparse.ArgumentTypeError) as exc:
        print(f"gate audit: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "jsonl":
        for row in rows:
            sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")
    else:
        _table(rows, sys.stdout)
    return EXIT_OK


# --- verify ----------------------------------------------------------------------------


def _verification_keys(args: argparse.Namespace) -> dict[str, Ed25519PublicKey]:
    if args.jwks or args.key:
        return load_keys(jwks=args.jwks, key=args.key)
    try:
        keys = load_verification_keys(_data_dir(args))
    except KeyFileError as exc:
        raise UsageProblem(str(exc)) from None
    if not keys:
        raise UsageProblem(f"no keys in {_data_dir(args) / 'keys'}; pass --jwks or --key")
    return keys


def _checkpoints(args: argparse.Namespace) -> list[Checkpoint]:
    path = Path(args.checkpoints) if args.checkpoints else _data_dir(args) / CHECKPOINT_FILE
    try:
        return parse_checkpoints(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if args.checkpoints:
            raise UsageProblem(f"{path}: no such file") from None
        return []


async def verify_store(
    args: argparse.Namespace,
    *,
    checkpoints: list[Checkpoint],
    keys: dict[str, Ed25519PublicKey],
) -> VerifyReport:
    """Stream the log named by ``args`` through a :class:`LogVerifier`."""
    verifier = LogVerifier(checkpoints, keys, origin=args.origin)
    if args.redis_url:
        log = RedisAuditLog.from_url(
            args.redis_url, keyring=None, origin="", sink=None, prefix=args.redis_prefix
        )
        try:
            async for entry in log.iter_entries():
                if not verifier.feed(entry):
                    break
        finally:
            await log.close()
    else:
        path = _data_dir(args) / SQLITE_FILE
        if not path.exists():
            raise UsageProblem(f"{path}: no audit log there")
        with contextlib.closing(read_sqlite_entries(path)) as entries:
            for entry in entries:
                if not verifier.feed(entry):
                    break
    return verifier.finish()


def run_verify(args: argparse.Namespace) -> int:
    try:
        keys = _verification_keys(args)
        checkpoints = _checkpoints(args)
        report = asyncio.run(verify_store(args, checkpoints=checkpoints, keys=keys))
    except UsageProblem as exc:
        print(f"gate audit verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (InvalidCheckpoint, UnicodeDecodeError) as exc:
        print(f"gate audit verify: checkpoint file is not valid: {exc}", file=sys.stderr)
        return EXIT_BAD
    if not report.ok:
        where = (
            f"first bad entry: seq {report.first_bad_seq}: "
            if report.first_bad_seq is not None
            else ""
        )
        print(f"gate audit verify: {where}{report.reason}", file=sys.stderr)
        return EXIT_BAD
    latest = report.latest_checkpoint
    print(
        f"ok: {report.size} entries, root {report.root.hex()}, "
        f"{report.checkpoints_verified} checkpoint(s) verified"
        + (f", latest of size {latest.size} at {latest.time}" if latest else "")
    )
    if latest is None or latest.size < report.size:
        covered = latest.size if latest else 0
        print(
            f"warning: entries {covered}..{report.size - 1} are not covered by a signed "
            "checkpoint yet: their removal could not be detected",
            file=sys.stderr,
        )
    return EXIT_OK


# --- command line ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """``gate audit verify`` or the ``gate audit`` query."""
    return run_verify(args) if args.audit_command == "verify" else run_query(args)


def _source(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    # Not exclusive: with --redis-url the entries come from Redis, while keys and
    # checkpoints.log still live in the data dir.
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        default=default,
        help="data dir: audit.sqlite3, keys/, checkpoints.log (default: $GATE_DATA_DIR or ./.gate)",
    )
    # The service's own settings by default, so the log read is the log written.
    service_prefix = os.environ.get("GATE_REDIS_PREFIX") or "merge-gate"
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        default=(os.environ.get("GATE_REDIS_URL") or None) if default is None else default,
        help="read the entries from Redis instead (default: $GATE_REDIS_URL)",
    )
    parser.add_argument(
        "--redis-prefix",
        default=f"{service_prefix}:audit" if default is None else default,
        help=f"key prefix in Redis (default: $GATE_REDIS_PREFIX:audit, {DEFAULT_REDIS_PREFIX})",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gate audit`` (query) and ``gate audit verify`` to the ``gate`` CLI."""
    parser = subparsers.add_parser(
        "audit",
        help="query the audit log, or verify it",
        description="Query the audit log, or verify that nobody has tampered with it.",
        epilog="example: gate audit --agent --conclusion merged --since 7d",
    )
    parser.add_argument(
        "--agent",
        nargs="?",
        const=ANY_AGENT,
        metavar="LOGIN",
        help="only PRs by agents (by this agent login when given)",
    )
    parser.add_argument("--repo", metavar="OWNER/NAME")
    parser.add_argument("--pr", type=int, metavar="N")
    parser.add_argument("--since", metavar="WHEN", help="e.g. 7d, 12h, 2025-06-01")
    parser.add_argument("--until", metavar="WHEN")
    parser.add_argument(
        "--conclusion", help="merged, or an evaluation conclusion (allowed, blocked, ...)"
    )
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    _source(parser)
    parser.set_defaults(func=run, audit_command=None)
    sub = parser.add_subparsers(dest="audit_command", metavar="verify")
    verify = sub.add_parser("verify", help="check the chain, the tree and the checkpoints")
    # SUPPRESS: options given before "verify" are not reset by the sub-parser's defaults.
    _source(verify, default=argparse.SUPPRESS)
    verify.add_argument("--checkpoints", metavar="FILE", help="signed checkpoints file")
    keys = verify.add_mutually_exclusive_group()
    keys.add_argument("--jwks", metavar="URL|FILE", help="JWK Set with the log's keys")
    keys.add_argument("--key", metavar="PEM", help="one Ed25519 public key, PEM")
    verify.add_argument("--origin", help="the log's checkpoint origin, if it must match")
    verify.set_defaults(func=run)
