"""Where the audit log lives: SQLite on one host, Redis across replicas.

Both keep the log format of :mod:`gate.auditlog` (hash-chained RFC 8785 entries, each a
leaf of an RFC 9162 tree) and serve proofs from an in-memory :class:`gate.merkle.MerkleTree`
of the stored leaf hashes, loaded lazily and caught up with appends made elsewhere.

Checkpoints (signed C2SP notes, :mod:`gate.checkpoint`) go to a sink *outside* the store,
by default the append-only file ``<data_dir>/checkpoints.log``: whoever can rewrite the
database cannot also rewrite what the log already vouched for. A checkpoint is written
after every ``checkpoint_every`` entries, when ``checkpoint_seconds`` have passed since
the last one (checked on append and by :meth:`AuditLog.maybe_checkpoint`, which the
service may call from a timer), and by :meth:`AuditLog.close` at shutdown. The log
refuses to sign a checkpoint inconsistent with the last one it signed.

- :class:`SQLiteAuditLog`: stdlib ``sqlite3`` in WAL mode, file ``<data_dir>/audit.sqlite3``.
  All calls run on one dedicated thread (the connection never changes threads); appends
  are ``BEGIN IMMEDIATE`` transactions, so a second process (``gate keygen --rotate``)
  may append too.
- :class:`RedisAuditLog`: ``redis.asyncio``. Every append goes through one Lua script that
  reads the log head (size and last entry hash), checks it is the head the entry was built
  on, RPUSHes the entry and its leaf hash and moves the head, atomically. Redis' Lua has
  no SHA-256 (only ``redis.sha1hex``), so the entry, whose ``prev`` is a SHA-256, is built
  by the client and the script compares-and-sets; a replica that lost the race rebuilds
  on the head the script returned and tries again. The log stays one linear chain however
  many replicas append. Keys: ``{<prefix>}:head`` (hash), ``{<prefix>}:entries`` and
  ``{<prefix>}:leaves`` (lists); the braces make them one Redis Cluster hash slot.

Queries: SQLite indexes kind, time, repo and pr; Redis scans the list (fine for an audit
trail of decisions; see :class:`gate.auditlog.AuditQuery` for the ``merged`` join).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from gate.auditlog import (
    GENESIS_PREV,
    AuditQuery,
    QueryScan,
    entry_hash,
    format_time,
    make_entry,
    merged_row,
    parse_entry,
    query_for,
)
from gate.checkpoint import Checkpoint, parse_checkpoints, sign_checkpoint
from gate.merkle import MerkleTree, leaf_hash
from webhooks.audit_sqlite import CHECKPOINT_FILE as CHECKPOINT_FILE
from webhooks.audit_sqlite import AuditLogError as AuditLogError
from webhooks.audit_sqlite import (
    _append_row,
    _blob,
    _connect,
    _text,
)

if TYPE_CHECKING:  # imported when used: ``gate hook`` appends without loading Redis
    import redis.asyncio as aioredis

    from webhooks.keys import KeyRing

CHECKPOINT_EVERY = 1000
CHECKPOINT_SECONDS = 300.0
SQLITE_FILE = "audit.sqlite3"
DEFAULT_REDIS_PREFIX = "merge-gate:audit"
_CHUNK = 10_000
_T = TypeVar("_T")


def default_origin(*, app_id: int | str | None = None, host: str | None = None) -> str:
    """``merge-gate/app-<id>``, else ``merge-gate/<host>``, else ``merge-gate/local``."""
    if app_id is not None:
        return f"merge-gate/app-{app_id}"
    return f"merge-gate/{host or 'local'}"


class AuditLog(Protocol):
    origin: str

    async def append(
        self, kind: str, fields: Mapping[str, object], *, time: datetime
    ) -> tuple[int, bytes]: ...
    async def entries(self, start: int, end: int) -> list[bytes]: ...
    def iter_entries(self, start: int = 0) -> AsyncIterator[bytes]: ...
    async def size(self) -> int: ...
    async def root(self, size: int | None = None) -> bytes: ...
    async def checkpoint(self, now: datetime) -> Checkpoint: ...
    async def latest_checkpoint(self) -> Checkpoint | None: ...
    async def maybe_checkpoint(self, now: datetime) -> Checkpoint | None: ...
    async def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]: ...
    async def consistency_proof(self, old: int, new: int) -> list[bytes]: ...
    async def query(
        self,
        *,
        agent: str | None = None,
        repo: str | None = None,
        pr: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        conclusion: str | None = None,
    ) -> list[dict[str, object]]: ...
    async def close(self, now: datetime | None = None) -> None: ...


class FileCheckpointSink:
    """Append-only file of signed checkpoint notes, one after another, blank-line apart."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (checkpoint.note() + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[Checkpoint]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return parse_checkpoints(text)


class CheckpointSink(Protocol):
    def write(self, checkpoint: Checkpoint) -> None: ...
    def read(self) -> list[Checkpoint]: ...


class _Base:
    """Checkpoint policy and signing, proofs and queries over a lazily synced tree."""

    def __init__(
        self,
        *,
        keyring: KeyRing | None,
        origin: str,
        sink: CheckpointSink | None,
        checkpoint_every: int,
        checkpoint_seconds: float,
    ) -> None:
        self.origin = origin
        self._keyring = keyring
        self._sink = sink
        self._every = checkpoint_every
        self._seconds = checkpoint_seconds
        self._tree = MerkleTree()
        self._cp_lock = asyncio.Lock()
        mine = [cp for cp in sink.read() if cp.origin == origin] if sink else []
        self._last_cp: Checkpoint | None = max(mine, key=lambda cp: cp.size, default=None)
        # When this process saw the oldest entry that no checkpoint covers yet.
        self._uncovered_since: datetime | None = None

    # Implemented by the stores.
    async def _sync_tree(self) -> None:
        raise NotImplementedError

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return fn()

    async def size(self) -> int:
        raise NotImplementedError

    async def root(self, size: int | None = None) -> bytes:
        await self._sync_tree()
        return await self._run(lambda: self._tree.root(size))

    async def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        await self._sync_tree()
        return await self._run(lambda: self._tree.inclusion_proof(seq, tree_size))

    async def consistency_proof(self, old: int, new: int) -> list[bytes]:
        await self._sync_tree()
        return await self._run(lambda: self._tree.consistency_proof(old, new))

    def _due(self, size: int, now: datetime) -> bool:
        last_size = self._last_cp.size if self._last_cp else 0
        if size <= last_size or self._keyring is None or self._sink is None:
            return False
        if self._uncovered_since is None:  # the clock starts with the first uncovered entry
            self._uncovered_since = now
        if size - last_size >= self._every:
            return True
        return (now - self._uncovered_since).total_seconds() >= self._seconds

    async def latest_checkpoint(self) -> Checkpoint | None:
        """The largest checkpoint of this log in the sink (written by any replica), if any.

        Reading never writes: this does not sign a new checkpoint.
        """
        if self._sink is None:
            return self._last_cp
        sink = self._sink
        mine = [cp for cp in await asyncio.to_thread(sink.read) if cp.origin == self.origin]
        return max(mine, key=lambda cp: cp.size, default=self._last_cp)

    async def maybe_checkpoint(self, now: datetime) -> Checkpoint | None:
        """Sign and write a checkpoint if N entries or M seconds have gone by."""
        if self._due(await self.size(), now):
            return await self.checkpoint(now)
        return None

    async def checkpoint(self, now: datetime) -> Checkpoint:
        """Sign the current tree head and write it to the sink."""
        if self._keyring is None:
            raise AuditLogError("this audit log was opened without a signing key")
        async with self._cp_lock:
            await self._sync_tree()
            size, root = await self._run(lambda: (self._tree.size, self._tree.root()))
            last = self._last_cp
            if last is not None:
                # c2sp.org/tlog-checkpoint: never sign a head inconsistent with an earlier one.
                if size < last.size:
                    raise AuditLogError(f"log has {size} entries, its last checkpoint {last.size}")
                if await self._run(lambda: self._tree.root(last.size)) != last.root:
                    raise AuditLogError(f"log no longer matches its checkpoint of size {last.size}")
            cp = sign_checkpoint(
                Checkpoint(self.origin, size, root, (f"time {format_time(now)}",)),
                private_key=self._keyring.active.private_key,
            )
            if self._sink is not None:
                await asyncio.to_thread(self._sink.write, cp)
            self._last_cp, self._uncovered_since = cp, None
            return cp

    async def _after_append(self, seq: int, now: datetime) -> None:
        if self._due(seq + 1, now):
            await self.checkpoint(now)

    async def _final_checkpoint(self, now: datetime | None) -> None:
        if now is not None and self._keyring is not None and self._sink is not None:
            last_size = self._last_cp.size if self._last_cp else 0
            if await self.size() > last_size:
                await self.checkpoint(now)


# --- SQLite ----------------------------------------------------------------------------


def read_sqlite_entries(path: Path, *, start: int = 0) -> Generator[bytes, None, None]:
    """Every entry from ``start`` on, straight from the file, read-only and streaming."""
    if not path.exists():
        raise FileNotFoundError(path)
    con = _connect(path, read_only=True)
    try:
        rows = con.execute("SELECT entry FROM audit_entries WHERE seq >= ? ORDER BY seq", (start,))
        for (entry,) in rows:
            yield _blob(entry)
    finally:
        con.close()


class SQLiteAuditLog(_Base):
    """The audit log in one SQLite file (WAL). Open with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        *,
        keyring: KeyRing | None,
        origin: str,
        sink: CheckpointSink | None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        super().__init__(
            keyring=keyring,
            origin=origin,
            sink=sink,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
        )
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-sqlite")
        self._con: sqlite3.Connection | None = None

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        keyring: KeyRing | None,
        origin: str,
        sink: CheckpointSink | None = None,
        read_only: bool = False,
        synchronous: str = "NORMAL",
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> SQLiteAuditLog:
        """Open (creating unless ``read_only``) the log at ``path``.

        ``synchronous=NORMAL`` (WAL) keeps appends well under a millisecond; a power cut
        may then lose the last appends, never corrupt the file. Use ``FULL`` to fsync
        every append.
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        if read_only and not path.exists():
            raise FileNotFoundError(path)
        log = cls(
            path,
            keyring=keyring,
            origin=origin,
            sink=sink,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
        )
        try:
            log._con = await log._run(
                lambda: _connect(path, read_only=read_only, synchronous=synchronous)
            )
        except BaseException:
            log._executor.shutdown(wait=True)
            raise
        return log

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            raise AuditLogError("audit log is closed")
        return self._con

    def _append_sync(
        self, kind: str, fields: Mapping[str, object], time: datetime
    ) -> tuple[int, bytes]:
        seq, leaf = _append_row(self._db, kind, fields, time)
        if self._tree.size == seq:
            self._tree.append(leaf)
        return seq, leaf

    async def append(
        self, kind: str, fields: Mapping[str, object], *, time: datetime
    ) -> tuple[int, bytes]:
        """Append an entry; returns its seq and RFC 9162 leaf hash."""
        seq, leaf = await self._run(lambda: self._append_sync(kind, fields, time))
        await self._after_append(seq, time)
        return seq, leaf

    def _sync_tree_sync(self) -> None:
        rows = self._db.execute(
            "SELECT seq, leaf FROM audit_entries WHERE seq >= ? ORDER BY seq", (self._tree.size,)
        )
        for seq, leaf in rows:
            if seq != self._tree.size:
                raise AuditLogError(f"audit log has a gap: entry {self._tree.size} is missing")
            self._tree.append(_blob(leaf))

    async def _sync_tree(self) -> None:
        await self._run(self._sync_tree_sync)

    async def size(self) -> int:
        row = await self._run(
            lambda: self._db.execute("SELECT MAX(seq) FROM audit_entries").fetchone()
        )
        return 0 if row[0] is None else int(row[0]) + 1

    async def entries(self, start: int, end: int) -> list[bytes]:
        rows = await self._run(
            lambda: self._db.execute(
                "SELECT entry FROM audit_entries WHERE seq >= ? AND seq < ? ORDER BY seq",
                (start, end),
            ).fetchall()
        )
        return [_blob(entry) for (entry,) in rows]

    async def iter_entries(self, start: int = 0) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.entries(start, start + _CHUNK)
            for entry in chunk:
                yield entry
            if len(chunk) < _CHUNK:
                return
            start += _CHUNK

    def _query_sync(self, query: AuditQuery) -> list[dict[str, object]]:
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if query.kinds is not None:
            where.append(f"kind IN ({', '.join('?' * len(query.kinds))})")
            params.extend(sorted(query.kinds))
        for column, op, value in (
            ("time", ">=", query.since),
            ("time", "<", query.until),
            ("repo", "=", query.repo),
            ("pr", "=", query.pr),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        # Only column names and placeholders are interpolated; values are bound.
        clauses = " AND ".join(where)
        sql = f"SELECT seq, entry FROM audit_entries WHERE {clauses} ORDER BY seq"  # noqa: S608
        rows: list[dict[str, object]] = []
        for seq, raw in self._db.execute(sql, params).fetchall():
            entry = parse_entry(_blob(raw))
            row = (
                merged_row(entry, self._evaluation_before(seq, entry))
                if entry.get("kind") == "merged"
                else entry
            )
            if query.matches(row):
                rows.append(row)
        return rows

    def _evaluation_before(
        self, seq: int, merged: Mapping[str, object]
    ) -> dict[str, object] | None:
        """The PR's last evaluation before ``seq``, of the merged head if there is one."""
        found = self._db.execute(
            "SELECT entry FROM audit_entries WHERE kind = 'evaluation' AND repo = ? AND pr = ?"
            " AND seq < ? ORDER BY (head_sha IS ?) DESC, seq DESC LIMIT 1",
            (_text(merged.get("repo")), merged.get("pr"), seq, _text(merged.get("head_sha"))),
        ).fetchone()
        return parse_entry(_blob(found[0])) if found else None

    async def query(
        self,
        *,
        agent: str | None = None,
        repo: str | None = None,
        pr: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        conclusion: str | None = None,
    ) -> list[dict[str, object]]:
        """Entries matching the filters, ``merged`` ones joined to their evaluation."""
        q = query_for(
            agent=agent, repo=repo, pr=pr, since=since, until=until, conclusion=conclusion
        )
        return await self._run(lambda: self._query_sync(q))

    async def close(self, now: datetime | None = None) -> None:
        """Write a final checkpoint (if ``now`` is given and anything is new), then close."""
        if self._con is None:
            return
        try:
            await self._final_checkpoint(now)
        finally:
            con, self._con = self._con, None
            await asyncio.get_running_loop().run_in_executor(self._executor, con.close)
            self._executor.shutdown(wait=True)


def _raw(value: bytes | str) -> bytes:
    """Our clients never decode responses; the typing of redis-py allows either."""
    return value if isinstance(value, bytes) else value.encode("utf-8")


# --- Redis -----------------------------------------------------------------------------

# KEYS: head, entries, leaves. ARGV: expected size, expected last hash, entry, leaf, entry hash.
# Returns {1, size, last} when appended at seq=size, or {0, size, last}: the real head.
_APPEND_LUA = """
local head = redis.call('HMGET', KEYS[1], 'size', 'hash')
local size = tonumber(head[1]) or 0
local last = head[2] or string.rep('0', 64)
if size ~= tonumber(ARGV[1]) or last ~= ARGV[2] then
  return {0, size, last}
end
if redis.call('LLEN', KEYS[2]) ~= size then
  return redis.error_reply('audit log head and entry list disagree')
end
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[4])
redis.call('HSET', KEYS[1], 'size', size + 1, 'hash', ARGV[5])
return {1, size, last}
"""
_MAX_RACES = 100


class RedisAuditLog(_Base):
    """The audit log in Redis lists, appended through one compare-and-set Lua script."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keyring: KeyRing | None,
        origin: str,
        sink: CheckpointSink | None,
        prefix: str = DEFAULT_REDIS_PREFIX,
        owns_client: bool = False,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> None:
        super().__init__(
            keyring=keyring,
            origin=origin,
            sink=sink,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
        )
        self._redis = client
        self._owns_client = owns_client
        self.keys = tuple(f"{{{prefix}}}:{name}" for name in ("head", "entries", "leaves"))
        self._script = client.register_script(_APPEND_LUA)
        self._head: tuple[int, str] | None = None  # our guess; the script has the truth
        self._append_lock = asyncio.Lock()
        self._tree_lock = asyncio.Lock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        keyring: KeyRing | None,
        origin: str,
        sink: CheckpointSink | None,
        prefix: str = DEFAULT_REDIS_PREFIX,
        checkpoint_every: int = CHECKPOINT_EVERY,
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> RedisAuditLog:
        """A log on a client of its own for ``url`` (closed by :meth:`close`)."""
        import redis.asyncio as aioredis

        return cls(
            aioredis.Redis.from_url(url, decode_responses=False),
            keyring=keyring,
            origin=origin,
            sink=sink,
            prefix=prefix,
            owns_client=True,
            checkpoint_every=checkpoint_every,
            checkpoint_seconds=checkpoint_seconds,
        )

    async def append(
        self, kind: str, fields: Mapping[str, object], *, time: datetime
    ) -> tuple[int, bytes]:
        """Append an entry; returns its seq and RFC 9162 leaf hash."""
        async with self._append_lock:
            for _ in range(_MAX_RACES):
                # A wrong guess costs one round trip: the script answers with the real head.
                seq, prev = self._head or (0, GENESIS_PREV)
                entry = make_entry(seq=seq, time=time, kind=kind, prev=prev, fields=fields)
                leaf, digest = leaf_hash(entry), entry_hash(entry)
                done, size, last = await self._script(
                    keys=list(self.keys), args=[seq, prev, entry, leaf, digest]
                )
                if done == 1:
                    self._head = (seq + 1, digest)
                    break
                self._head = (int(size), _raw(last).decode())  # another replica appended first
            else:
                raise AuditLogError("could not append: the log head kept moving")
        if self._tree.size == seq:
            self._tree.append(leaf)
        await self._after_append(seq, time)
        return seq, leaf

    async def _sync_tree(self) -> None:
        async with self._tree_lock:
            while True:
                start = self._tree.size
                leaves = await self._redis.lrange(self.keys[2], start, start + _CHUNK - 1)
                for index, leaf in enumerate(leaves, start):
                    # append() may have added our own leaves while LRANGE was in flight.
                    if index == self._tree.size:
                        self._tree.append(_raw(leaf))
                if len(leaves) < _CHUNK:
                    return

    async def size(self) -> int:
        return int(await self._redis.llen(self.keys[1]))

    async def entries(self, start: int, end: int) -> list[bytes]:
        if end <= start:
            return []
        return [_raw(entry) for entry in await self._redis.lrange(self.keys[1], start, end - 1)]

    async def iter_entries(self, start: int = 0) -> AsyncIterator[bytes]:
        while True:
            chunk = await self.entries(start, start + _CHUNK)
            for entry in chunk:
                yield entry
            if len(chunk) < _CHUNK:
                return
            start += _CHUNK

    async def query(
        self,
        *,
        agent: str | None = None,
        repo: str | None = None,
        pr: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        conclusion: str | None = None,
    ) -> list[dict[str, object]]:
        """Entries matching the filters (a scan), ``merged`` ones joined to their evaluation."""
        scan = QueryScan(
            query_for(
                agent=agent, repo=repo, pr=pr, since=since, until=until, conclusion=conclusion
            )
        )
        async for raw in self.iter_entries():
            scan.feed(raw)
        return scan.rows

    async def delete_all(self) -> None:
        """Remove this log's keys (tests and benchmarks only)."""
        await self._redis.delete(*self.keys)
        self._head, self._tree = None, MerkleTree()

    async def close(self, now: datetime | None = None) -> None:
        """Write a final checkpoint (if ``now`` is given and anything is new), then close."""
        try:
            await self._final_checkpoint(now)
        finally:
            if self._owns_client:
                await self._redis.aclose()


async def open_audit_log(
    *,
    data_dir: Path,
    keyring: KeyRing | None,
    origin: str,
    redis_url: str | None = None,
    redis_prefix: str = DEFAULT_REDIS_PREFIX,
    read_only: bool = False,
) -> SQLiteAuditLog | RedisAuditLog:
    """The service's log: Redis when ``redis_url`` is set, else ``<data_dir>/audit.sqlite3``;
    checkpoints to ``<data_dir>/checkpoints.log`` either way."""
    sink = FileCheckpointSink(data_dir / CHECKPOINT_FILE)
    if redis_url:
        return RedisAuditLog.from_url(
            redis_url, keyring=keyring, origin=origin, sink=sink, prefix=redis_prefix
        )
    return await SQLiteAuditLog.open(
        data_dir / SQLITE_FILE, keyring=keyring, origin=origin, sink=sink, read_only=read_only
    )
