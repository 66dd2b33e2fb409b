"""Signing and audit-log benchmark. Run with ``python -m benchmarks.bench_signing``.

- ``sign_append_sqlite`` / ``sign_append_redis``: the per-decision cost in the service:
  build the in-toto Statement, sign the DSSE envelope, take its record digest, append
  the ``evaluation`` entry (canonical JSON, hash chain, leaf hash, Merkle tree, periodic
  checkpoints). The goal is under 1 ms a decision. ``sign_only`` isolates the first three.
- ``audit_verify``: a log of ``log_entries`` (default 1,000,000) evaluation entries is
  written straight into SQLite with ``executemany`` (entries built with ``json.dumps``,
  which for ASCII-only content is byte-identical to RFC 8785; checked on a sample), one
  signed checkpoint is written, then ``gate audit verify`` runs over it in-process.

Figures only, no pass/fail: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gate import __version__
from gate.auditlog import GENESIS_PREV, format_time, make_entry
from gate.checkpoint import Checkpoint, sign_checkpoint
from gate.merkle import CompactRange
from gate.statement import build_statement, record_digest, sign_decision
from webhooks.audit_store import (
    CHECKPOINT_FILE,
    SQLITE_FILE,
    FileCheckpointSink,
    RedisAuditLog,
    SQLiteAuditLog,
)
from webhooks.commands import audit
from webhooks.keys import KeyRing, load_keyring

REDIS_URL = "redis://127.0.0.1:6379/0"
ORIGIN = "merge-gate/bench"
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def _predicate(i: int) -> dict[str, object]:
    return {
        "policy": {
            "digest": "sha256:" + "ab" * 32,
            "codeownersBlob": "cd" * 20,
            "baseSha": "ef" * 20,
        },
        "files": [
            {"path": f"src/module_{i % 50}.py", "tier": "low", "reasons": ["default"]},
            {"path": "db/migrate/001_init.sql", "tier": "high", "reasons": ["migration"]},
        ],
        "requirements": [
            {"name": "code-owner", "satisfiedBy": [{"user": "alice", "reviewId": 10_000 + i}]}
        ],
        "conclusion": "allowed",
        "evaluatedAt": format_time(T0),
        "deliveryId": str(uuid.UUID(int=i)),
        "appId": 123456,
        "installationId": 7654321,
        "mergeGateVersion": __version__,
    }


def _fields(i: int, digest: str) -> dict[str, object]:
    return {
        "repo": "acme/widgets",
        "pr": i % 500 + 1,
        "head_sha": f"{i:040x}",
        "author": "devin-ai-integration[bot]",
        "agent": True,
        "conclusion": "allowed",
        "files": [{"path": f"src/module_{i % 50}.py", "tier": "low"}],
        "approvers": [{"user": "alice", "review_id": 10_000 + i}],
        "record_digest": digest,
        "delivery_id": str(uuid.UUID(int=i)),
    }


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered) * 1e3, 4),
        "p50_ms": round(ordered[len(ordered) // 2] * 1e3, 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3, 4),
    }


def _sign(i: int, keyring: KeyRing) -> str:
    statement = build_statement(
        repo="acme/widgets", number=i % 500 + 1, head_sha=f"{i:040x}", predicate=_predicate(i)
    )
    envelope = sign_decision(
        statement=statement, private_key=keyring.active.private_key, keyid=keyring.active.kid
    )
    return record_digest(envelope)


async def _sign_append(
    log: SQLiteAuditLog | RedisAuditLog, keyring: KeyRing, n: int
) -> dict[str, float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        digest = _sign(i, keyring)
        await log.append("evaluation", _fields(i, digest), time=T0 + timedelta(seconds=i))
        samples.append(time.perf_counter() - start)
    return _stats(samples)


async def _bench_appends(data_dir: Path, keyring: KeyRing, decisions: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    sign_samples = []
    for i in range(decisions):
        start = time.perf_counter()
        _sign(i, keyring)
        sign_samples.append(time.perf_counter() - start)
    results["sign_only"] = _stats(sign_samples)

    sink = FileCheckpointSink(data_dir / "sqlite" / CHECKPOINT_FILE)
    sqlite_log = await SQLiteAuditLog.open(
        data_dir / "append.sqlite3", keyring=keyring, origin=ORIGIN, sink=sink
    )
    try:
        results["sign_append_sqlite"] = await _sign_append(sqlite_log, keyring, decisions)
    finally:
        await sqlite_log.close(T0)

    prefix = f"merge-gate-bench:{uuid.uuid4().hex}"
    redis_log = RedisAuditLog.from_url(
        REDIS_URL,
        keyring=keyring,
        origin=ORIGIN,
        sink=FileCheckpointSink(data_dir / "redis" / CHECKPOINT_FILE),
        prefix=prefix,
    )
    try:
        results["sign_append_redis"] = await _sign_append(redis_log, keyring, decisions)
    finally:
        await redis_log.delete_all()
        await redis_log.close()
    return results


def _build_log(data_dir: Path, keyring: KeyRing, entries: int) -> dict[str, float]:
    """``entries`` chained evaluation entries straight into SQLite, plus one checkpoint."""
    start = time.perf_counter()
    db_path = data_dir / SQLITE_FILE
    asyncio.run(_create_schema(db_path))  # the store's own schema, empty
    con = sqlite3.connect(db_path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    compact = CompactRange()
    prev = GENESIS_PREV
    batch: list[tuple[object, ...]] = []
    when = format_time(T0)
    sample = make_entry(
        seq=0, time=when, kind="evaluation", prev=prev, fields=_fields(0, "sha256:" + "00" * 32)
    )
    con.execute("BEGIN")
    for seq in range(entries):
        fields = _fields(seq, "sha256:" + "00" * 32)
        obj = {**fields, "seq": seq, "time": when, "kind": "evaluation", "prev": prev}
        entry = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
        if seq == 0 and entry != sample:
            raise AssertionError("json.dumps differs from RFC 8785 for these entries")
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        compact.append(leaf)
        prev = hashlib.sha256(entry).hexdigest()
        batch.append(
            (seq, entry, leaf, "evaluation", when, fields["repo"], fields["pr"], fields["head_sha"])
        )
        if len(batch) == 50_000:
            con.executemany("INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
            batch.clear()
    con.executemany("INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
    con.execute("COMMIT")
    con.close()
    checkpoint = sign_checkpoint(
        Checkpoint(ORIGIN, entries, compact.root(), (f"time {when}",)),
        private_key=keyring.active.private_key,
    )
    FileCheckpointSink(data_dir / CHECKPOINT_FILE).write(checkpoint)
    return {
        "entries": entries,
        "build_seconds": round(time.perf_counter() - start, 2),
        "db_megabytes": round(db_path.stat().st_size / 1e6, 1),
    }


async def _create_schema(path: Path) -> None:
    log = await SQLiteAuditLog.open(path, keyring=None, origin=ORIGIN, sink=None)
    await log.close()


def _audit_verify(data_dir: Path) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="gate")
    audit.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["audit", "verify", "--data-dir", str(data_dir)])
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = audit.run(args)
    seconds = time.perf_counter() - start
    return {
        "exit": code,
        "seconds": round(seconds, 2),
        "output": (out.getvalue() + err.getvalue()).strip(),
    }


def run(*, decisions: int = 2000, log_entries: int = 1_000_000) -> dict[str, Any]:
    """Measure; returns the figures (also printed by ``main``)."""
    with tempfile.TemporaryDirectory(prefix="bench-signing-") as tmp:
        data_dir = Path(tmp)
        keyring = load_keyring(data_dir=data_dir)
        results = asyncio.run(_bench_appends(data_dir, keyring, decisions))
        results["audit_log_build"] = _build_log(data_dir, keyring, log_entries)
        results["audit_verify"] = _audit_verify(data_dir)
        results["audit_verify"]["entries_per_second"] = round(
            log_entries / max(results["audit_verify"]["seconds"], 1e-9)
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_signing")
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--log-entries", type=int, default=1_000_000)
    options = parser.parse_args()
    print(json.dumps(run(decisions=options.decisions, log_entries=options.log_entries), indent=2))


if __name__ == "__main__":
    main()
