"""``gate trace``: the incident timeline of every decision, merge and agent action that matches.

    gate trace [--secret FINGERPRINT | --secret -] [--path GLOB] [--package NAME]
               [--agent LOGIN] [--session ID] [--approver LOGIN] [--pr OWNER/NAME#N]
               [--since WHEN] [--format table|jsonl|markdown]
               [--data-dir DIR] [--redis-url URL] [--redis-prefix PREFIX]

It reads what the service wrote, with the service's settings (``GATE_DATA_DIR``,
``GATE_REDIS_URL``, ``GATE_REDIS_PREFIX``): the audit log (SQLite or Redis), the
signed checkpoints and keys in the data dir, and the signed decision records the
store still keeps. ``--secret`` takes the redacted form a check run shows
(``AKIA…sha256:0123456789ab`` or just ``sha256:0123456789ab``); ``--secret -``
reads the raw secret from stdin and fingerprints it here, without storing or
printing it. Every row says whether its entry is intact in the hash chain,
included in a signed checkpoint, and whether its signed record verifies
(:mod:`gate.trace`). Exit 0 when every row verifies or is merely not checkpointed
yet, 1 when any row fails verification, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate import trace
from gate.auditlog import format_time
from gate.checkpoint import Checkpoint, InvalidCheckpoint, parse_checkpoints
from gate.globs import GlobError
from webhooks.audit_store import CHECKPOINT_FILE, SQLITE_FILE, RedisAuditLog, read_sqlite_entries
from webhooks.commands.audit import parse_when
from webhooks.commands.verify import UsageProblem, load_keys
from webhooks.keys import KeyFileError, data_dir_from_env, load_verification_keys
from webhooks.store import open_store

EXIT_OK, EXIT_BAD, EXIT_USAGE = 0, 1, 2
#: ``--secret -``: the raw secret is read from stdin.
_STDIN = "-"


def parse_pull(text: str) -> tuple[str, int]:
    """``OWNER/NAME#N`` -> (``OWNER/NAME``, N)."""
    repo, _, number = text.rpartition("#")
    if "/" not in repo or not number.isdigit():
        raise UsageProblem(f"{text!r} is not OWNER/NAME#N")
    return repo, int(number)


def _query(args: argparse.Namespace, *, stdin: str | None) -> trace.TraceQuery:
    fingerprint = None
    if args.secret == _STDIN:
        secret = (stdin or "").strip()
        if not secret:
            raise UsageProblem("--secret -: no secret on stdin")
        fingerprint = trace.fingerprint(secret)
    elif args.secret:
        try:
            fingerprint = trace.parse_fingerprint(args.secret)
        except ValueError as error:
            raise UsageProblem(str(error)) from None
    repo, pr = parse_pull(args.pr) if args.pr else (None, None)
    since = None
    if args.since:
        try:
            since = format_time(parse_when(args.since, now=datetime.now(UTC)))
        except argparse.ArgumentTypeError as error:
            raise UsageProblem(str(error)) from None
    try:
        return trace.TraceQuery.of(
            fingerprint=fingerprint,
            path=args.path,
            package=args.package,
            agent=args.agent,
            session=args.session,
            approver=args.approver,
            repo=repo,
            pr=pr,
            since=since,
        )
    except GlobError as error:
        raise UsageProblem(f"--path: {error}") from None


def _keys(args: argparse.Namespace, data_dir: Path) -> dict[str, Ed25519PublicKey]:
    if args.jwks or args.key:
        return load_keys(jwks=args.jwks, key=args.key)
    try:
        keys = load_verification_keys(data_dir)
    except KeyFileError as exc:
        raise UsageProblem(str(exc)) from None
    if not keys:
        raise UsageProblem(f"no keys in {data_dir / 'keys'}; pass --jwks or --key")
    return keys


def _checkpoints(data_dir: Path) -> list[Checkpoint]:
    try:
        return parse_checkpoints((data_dir / CHECKPOINT_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []


async def _records(
    args: argparse.Namespace, data_dir: Path, rows: list[dict[str, object]]
) -> dict[str, dict[str, object]]:
    """The signed envelopes the store still keeps, by record digest."""
    wanted = {
        str(r["decision_id"]): str(r["record_digest"])
        for r in rows
        if isinstance(r.get("decision_id"), str) and isinstance(r.get("record_digest"), str)
    }
    if not wanted:
        return {}
    store = await open_store(data_dir=data_dir, redis_url=args.redis_url, prefix=args.redis_prefix)
    found: dict[str, dict[str, object]] = {}
    try:
        for decision_id, digest in wanted.items():
            raw = await store.get("decision", decision_id)
            if raw is None:
                continue
            envelope = json.loads(raw).get("envelope")
            if isinstance(envelope, dict):
                # Keyed by the digest the log names: a mismatch is found by verification.
                found[digest] = envelope
    finally:
        await store.close()
    return found


async def _scan(
    args: argparse.Namespace, data_dir: Path, query: trace.TraceQuery
) -> tuple[list[trace.TraceRow], str]:
    keys = _keys(args, data_dir)
    traced = trace.TraceScan(query, _checkpoints(data_dir), keys)
    if args.redis_url:
        log = RedisAuditLog.from_url(
            args.redis_url, keyring=None, origin="", sink=None, prefix=f"{args.redis_prefix}:audit"
        )
        try:
            async for entry in log.iter_entries():
                traced.feed(entry)
        finally:
            await log.close()
    else:
        path = data_dir / SQLITE_FILE
        if not path.exists():
            raise UsageProblem(f"{path}: no audit log there")
        with contextlib.closing(read_sqlite_entries(path)) as entries:
            for entry in entries:
                traced.feed(entry)
    return traced.rows(await _records(args, data_dir, traced.matched))


def _title(args: argparse.Namespace, query: trace.TraceQuery) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("secret", query.fingerprint),
            ("path", query.path),
            ("package", query.package),
            ("agent", query.agent),
            ("session", query.session),
            ("approver", query.approver),
            ("pull request", args.pr),
            ("since", query.since),
        )
        if value
    ]
    return ", ".join(parts) or "everything"


def run(args: argparse.Namespace) -> int:
    try:
        stdin = sys.stdin.read() if args.secret == _STDIN else None
        query = _query(args, stdin=stdin)
        data_dir = Path(args.data_dir) if args.data_dir else data_dir_from_env()
        rows, summary = asyncio.run(_scan(args, data_dir, query))
    except UsageProblem as exc:
        print(f"gate trace: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (InvalidCheckpoint, UnicodeDecodeError) as exc:
        print(f"gate trace: checkpoint file is not valid: {exc}", file=sys.stderr)
        return EXIT_BAD
    if args.format == "jsonl":
        sys.stdout.write(trace.jsonl(rows))
    elif args.format == "markdown":
        sys.stdout.write(trace.markdown(rows, summary, title=_title(args, query)))
    else:
        sys.stdout.write(trace.table(rows, summary))
    failed = [r for r in rows if r.failed]
    if failed or "BROKEN" in summary:
        print(
            f"gate trace: {len(failed)} of {len(rows)} row(s) FAIL verification; "
            "run `gate audit verify` and treat them as tampered",
            file=sys.stderr,
        )
        return EXIT_BAD
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="incident timeline from the audit log",
        description="Every decision, merge and agent action that matches, verified.",
        epilog="example: gate trace --secret 'AKIA…sha256:0123456789ab' --format markdown",
    )
    parser.add_argument("--secret", metavar="FINGERPRINT", help="sha256:<12 hex>, or - for stdin")
    parser.add_argument("--path", metavar="GLOB", help="a changed path (policy glob syntax)")
    parser.add_argument("--package", metavar="NAME", help="a dependency a PR added")
    parser.add_argument("--agent", metavar="LOGIN", help="the agent that authored it")
    parser.add_argument("--session", metavar="ID", help="an agent session id")
    parser.add_argument("--approver", metavar="LOGIN", help="a human whose approval counted")
    parser.add_argument("--pr", metavar="OWNER/NAME#N")
    parser.add_argument("--since", metavar="WHEN", help="e.g. 7d, 12h, 2025-06-01")
    parser.add_argument("--format", choices=("table", "jsonl", "markdown"), default="table")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="default: $GATE_DATA_DIR or ./.gate (keys, checkpoints)"
    )
    parser.add_argument(
        "--redis-url",
        metavar="URL",
        default=os.environ.get("GATE_REDIS_URL") or None,
        help="the service's Redis (default: $GATE_REDIS_URL)",
    )
    parser.add_argument(
        "--redis-prefix",
        default=os.environ.get("GATE_REDIS_PREFIX") or "merge-gate",
        help="the service's GATE_REDIS_PREFIX (default: merge-gate)",
    )
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--jwks", metavar="URL|FILE", help="JWK Set with the service's keys")
    keys.add_argument("--key", metavar="PEM", help="one Ed25519 public key, PEM")
    parser.set_defaults(func=run)
