"""The SQLite audit log's rows, without an event loop.

:class:`webhooks.audit_store.SQLiteAuditLog` and short-lived processes share these:
``gate hook`` runs once per agent action and appends one entry, so it must not pay for
importing ``asyncio``, Redis or the signing machinery on every call (signing is
imported only when a checkpoint is due).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gate.auditlog import GENESIS_PREV, entry_hash, format_time, make_entry, parse_time
from gate.merkle import MerkleTree, leaf_hash

#: Signed checkpoints, beside the log (see :mod:`webhooks.audit_store`).
CHECKPOINT_FILE = "checkpoints.log"

if TYPE_CHECKING:
    from gate.checkpoint import Checkpoint
    from webhooks.audit_store import CheckpointSink
    from webhooks.keys import KeyRing


class AuditLogError(Exception):
    """The store disagrees with itself or with a checkpoint it signed, or cannot sign."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_entries (
    seq INTEGER PRIMARY KEY,
    entry BLOB NOT NULL,
    leaf BLOB NOT NULL,
    kind TEXT NOT NULL,
    time TEXT NOT NULL,
    repo TEXT,
    pr INTEGER,
    head_sha TEXT
);
CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (kind, time);
CREATE INDEX IF NOT EXISTS audit_entries_pull ON audit_entries (repo, pr, kind);
"""


def _connect(path: Path, *, read_only: bool, synchronous: str = "NORMAL") -> sqlite3.Connection:
    if read_only:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={synchronous}")
        con.executescript(_SCHEMA)
    con.execute("PRAGMA busy_timeout=5000")
    return con


def _append_row(
    con: sqlite3.Connection, kind: str, fields: Mapping[str, object], time: datetime
) -> tuple[int, bytes]:
    """Append one entry in its own write transaction; returns its seq and leaf hash."""
    con.execute("BEGIN IMMEDIATE")  # the write lock first: seq and prev are ours alone
    try:
        last = con.execute(
            "SELECT seq, entry FROM audit_entries ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev = (0, GENESIS_PREV) if last is None else (last[0] + 1, entry_hash(_blob(last[1])))
        entry = make_entry(seq=seq, time=time, kind=kind, prev=prev, fields=fields)
        leaf = leaf_hash(entry)
        pr = fields.get("pr")
        con.execute(
            "INSERT INTO audit_entries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                entry,
                leaf,
                kind,
                format_time(time),
                _text(fields.get("repo")),
                pr if isinstance(pr, int) and not isinstance(pr, bool) else None,
                _text(fields.get("head_sha")),
            ),
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return seq, leaf


def append_sqlite(
    path: Path, kind: str, fields: Mapping[str, object], *, time: datetime
) -> tuple[int, bytes]:
    """Append one entry to the SQLite log at ``path`` without an event loop.

    For short-lived processes (``gate hook`` runs once per agent action): the same
    format, chain and transaction as :meth:`SQLiteAuditLog.append`.
    """
    con = _connect(path, read_only=False)
    try:
        return _append_row(con, kind, fields, time)
    finally:
        con.close()


def checkpoint_sqlite(
    path: Path,
    *,
    sink: CheckpointSink,
    keyring: KeyRing,
    origin: str,
    now: datetime,
    every: int,
    seconds: float,
) -> Checkpoint | None:
    """Sign a checkpoint of the SQLite log at ``path`` if ``every`` entries or ``seconds``
    have gone by since the last one of ``origin``; the synchronous twin of
    :meth:`SQLiteAuditLog.maybe_checkpoint` for short-lived processes.

    Refuses (``AuditLogError``) to sign a head inconsistent with the last checkpoint.
    """
    from gate.checkpoint import Checkpoint, sign_checkpoint

    mine = [cp for cp in sink.read() if cp.origin == origin]
    last = max(mine, key=lambda cp: cp.size, default=None)
    covered = last.size if last else 0
    con = _connect(path, read_only=False)
    try:
        row = con.execute("SELECT MAX(seq) FROM audit_entries").fetchone()
        size = 0 if row[0] is None else int(row[0]) + 1
        if size <= covered:
            return None
        oldest = con.execute("SELECT time FROM audit_entries WHERE seq = ?", (covered,)).fetchone()
        waited = (now - parse_time(oldest[0])).total_seconds() if oldest else 0.0
        if size - covered < every and waited < seconds:
            return None
        tree = MerkleTree()
        for (leaf,) in con.execute(
            "SELECT leaf FROM audit_entries WHERE seq < ? ORDER BY seq", (size,)
        ):
            tree.append(_blob(leaf))
    finally:
        con.close()
    if last is not None and tree.root(last.size) != last.root:
        raise AuditLogError(f"log no longer matches its checkpoint of size {last.size}")
    cp = sign_checkpoint(
        Checkpoint(origin, size, tree.root(), (f"time {format_time(now)}",)),
        private_key=keyring.active.private_key,
    )
    sink.write(cp)
    return cp


def _blob(value: bytes | str) -> bytes:
    """A stored entry or hash as bytes; SQLite hands back TEXT if someone stored TEXT."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
