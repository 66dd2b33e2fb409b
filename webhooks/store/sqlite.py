"""The store on one SQLite file: the default for a single host.

Durability: the database runs in WAL mode with ``synchronous=FULL``, so a
transaction's COMMIT has fsync'ed the WAL before ``accept`` returns and a
delivery acknowledged with 202 survives a power cut, not only a process crash
(https://www.sqlite.org/pragma.html#pragma_synchronous,
https://www.sqlite.org/wal.html).

Concurrency: several processes may share the file (two ``gate serve`` on one
host). Every read-modify-write runs in ``BEGIN IMMEDIATE``, which takes the
database's single write lock up front, so two claimers serialise and can never
lease the same key (https://www.sqlite.org/lang_transaction.html); an accept is
a single INSERT statement, a transaction of its own. A process that finds the
lock taken waits up to ``busy_timeout`` and then reports
:class:`StoreUnavailable` (https://www.sqlite.org/pragma.html#pragma_busy_timeout).

Threading: one dedicated thread owns the connection; coroutines hand it work
through a queue and await a future, so the event loop never blocks on SQLite or
fsync. Accepts made in one event-loop iteration travel to the thread together,
and whatever accepts queue up while a commit is in flight go into the next
statement (group commit): one fsync acknowledges all of them, which keeps the
webhook acknowledgement path fast under bursts. Workers polling an empty queue
only read (WAL readers take no lock), so they never hold up an accept.

Layout::

    seen(id PK, expires)           delivery ids of the dedupe window
    delivery(seq PK, id, key, event, action, body, received_at,
             accepted_at, dedupe_until)
                                   pending deliveries, seq = accept order
    job_key(key PK, ready_at, first_seq, attempts, token, worker, lease_until)
                                   one row per key with pending deliveries;
                                   token/lease_until set while leased, ready_at
                                   in the future while waiting out a retry
    dead_letter(seq PK, key, delivery_ids JSON, error, attempts, at)
    kv(namespace, key, value, expires)
                                   small documents, PK (namespace, key)

``accept`` is one INSERT into ``delivery``; triggers drop it when the id is in
``seen`` and otherwise record the id and make a new key ready. ``seen`` alone
guards against duplicates: a second index on random delivery ids would cost
every insert another random B-tree page (a quarter of the accept's CPU). A
delivery still pending after the whole dedupe window could thus be queued
twice, which does no harm: the job re-reads GitHub once for both copies. All
times are this host's clock (``time.time()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from webhooks.store.base import (
    DEDUPE_SECONDS,
    Batcher,
    DeadLetter,
    Delivery,
    Job,
    StoreUnavailable,
    check_namespace,
)

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: Upper bound of queued calls the thread takes in one round (keeps replies flowing).
_MAX_BATCH = 256
#: How long the SQLite thread waits for more accepts once it has seen them arrive
#: together; a fraction of a commit (which fsyncs), so waiting pays for itself.
_GATHER_SECONDS = 0.0005
#: Rows per INSERT statement: 8 parameters each stays far below SQLite's limit
#: of 32766 (https://www.sqlite.org/limits.html#max_variable_number).
_ROWS_PER_INSERT = 500
#: Expired dedupe ids and key/value rows are deleted at most this often.
_PRUNE_EVERY = 60.0

# One statement per item: triggers need their inner semicolons.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS seen (
        id TEXT PRIMARY KEY,
        expires REAL NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS seen_expires ON seen (expires)",
    """CREATE TABLE IF NOT EXISTS delivery (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        key TEXT NOT NULL,
        event TEXT NOT NULL,
        action TEXT,
        body BLOB NOT NULL,
        received_at REAL NOT NULL,
        accepted_at REAL NOT NULL,
        dedupe_until REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS delivery_key ON delivery (key, seq)",
    "CREATE INDEX IF NOT EXISTS delivery_received ON delivery (received_at)",
    """CREATE TABLE IF NOT EXISTS job_key (
        key TEXT PRIMARY KEY,
        ready_at REAL NOT NULL,
        first_seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        token TEXT,
        worker TEXT,
        lease_until REAL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS job_key_ready ON job_key (ready_at, first_seq)",
    """CREATE TABLE IF NOT EXISTS dead_letter (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        delivery_ids TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS lock (
        name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        expires REAL,
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID""",
    # accept is a single INSERT into delivery (each statement is a GIL hand-off
    # between the SQLite thread and the event loop); these triggers do the rest.
    # A delivery id seen within the dedupe window is silently not inserted
    # (https://www.sqlite.org/lang_createtrigger.html#raise).
    """CREATE TRIGGER IF NOT EXISTS delivery_dedupe BEFORE INSERT ON delivery
    WHEN EXISTS (SELECT 1 FROM seen WHERE id = NEW.id AND expires > NEW.accepted_at)
    BEGIN
        SELECT RAISE(IGNORE);
    END""",
    # Remember the id; a new key is ready now, an existing one keeps its place,
    # lease and retry delay.
    """CREATE TRIGGER IF NOT EXISTS delivery_accepted AFTER INSERT ON delivery
    BEGIN
        DELETE FROM seen WHERE id = NEW.id;
        INSERT INTO seen (id, expires) VALUES (NEW.id, NEW.dedupe_until);
        INSERT INTO job_key (key, ready_at, first_seq)
            SELECT NEW.key, NEW.accepted_at, NEW.seq
            WHERE NOT EXISTS (SELECT 1 FROM job_key WHERE key = NEW.key);
    END""",
)


#: The oldest ready key: not waiting out a retry, not under a live lease.
_READY = (
    "SELECT key, attempts, token FROM job_key"
    " WHERE ready_at <= ? AND (token IS NULL OR lease_until <= ?)"
    " ORDER BY ready_at, first_seq LIMIT 1"
)


def _unavailable(error: BaseException) -> StoreUnavailable:
    if isinstance(error, StoreUnavailable):
        return error
    return StoreUnavailable(f"sqlite: {type(error).__name__}: {error}")


def _is_outage(error: BaseException) -> bool:
    """Locked, I/O, disk full, read-only, corrupt: the store cannot serve, not a bug here."""
    if isinstance(
        error, sqlite3.ProgrammingError | sqlite3.IntegrityError | sqlite3.InterfaceError
    ):
        return False
    return isinstance(error, StoreUnavailable | sqlite3.Error | OSError)


@dataclass(slots=True)
class _Call:
    """One unit of work for the SQLite thread: a function, or a batch of accepts."""

    fn: Callable[[sqlite3.Connection], Any] | None
    deliveries: list[Delivery] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


#: A call, its result and the exception it raised (None when it returned).
_Outcome = tuple[_Call, Any, BaseException | None]


def _settle(outcomes: list[_Outcome]) -> None:
    """Runs on the event loop: hand each waiting coroutine its result."""
    for call, result, error in outcomes:
        if call.future.done():  # the awaiting coroutine was cancelled
            continue
        if error is not None:
            call.future.set_exception(error)
        else:
            call.future.set_result(result)


class SqliteStore:
    """:class:`webhooks.store.base.Store` on a SQLite file; create with :meth:`open`."""

    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self._path = path
        self._busy_ms = int(busy_timeout * 1000)
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="merge-gate-sqlite", daemon=True)
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._closed = False
        self._last_prune = 0.0
        self._concurrent = False
        self._accepts: Batcher[Delivery, bool] = Batcher(self._accept_many)

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float = 3.0) -> SqliteStore:
        """Create the directory and schema (idempotent; safe with other processes)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _unavailable(error) from error
        store = cls(path, busy_timeout=busy_timeout)
        store._thread.start()
        try:
            await store.ping()  # connects and creates the schema
        except BaseException:
            await store.close()
            raise
        return store

    # -- the thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            calls, stop = self._gather(first)
            self._dispatch(calls)
            if stop:
                break
            self._maybe_prune()
        self._shutdown()

    def _gather(self, first: _Call) -> tuple[list[_Call], bool]:
        """The calls to run together, and whether close() was requested.

        Under concurrent accepts (the last batch held several) wait up to
        ``_GATHER_SECONDS`` for more: one commit then acknowledges them all. A lone
        caller never waits.
        """
        calls = [first]
        deadline = time.monotonic() + _GATHER_SECONDS if self._concurrent else 0.0
        while len(calls) < _MAX_BATCH:
            try:
                remaining = deadline - time.monotonic()
                if remaining > 0:
                    nxt = self._queue.get(timeout=remaining)
                else:
                    nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return calls, True
            calls.append(nxt)
        accepts = sum(len(call.deliveries or ()) for call in calls)
        self._concurrent = accepts > 1
        return calls, False

    def _dispatch(self, calls: list[_Call]) -> None:
        # Order is kept; neighbouring accepts share INSERT statements.
        outcomes: list[_Outcome] = []
        i = 0
        while i < len(calls):
            if calls[i].deliveries is None:
                outcomes.append(self._run_one(calls[i]))
                i += 1
                continue
            j = i
            while j < len(calls) and calls[j].deliveries is not None:
                j += 1
            outcomes.extend(self._run_accepts(calls[i:j]))
            i = j
        self._reply(outcomes)

    def _run_one(self, call: _Call) -> _Outcome:
        assert call.fn is not None
        try:
            return (call, call.fn(self._connection()), None)
        except BaseException as error:
            return (call, None, _unavailable(error) if _is_outage(error) else error)

    def _run_accepts(self, calls: Sequence[_Call]) -> list[_Outcome]:
        """The accepts of several calls together; each call's result lists one per delivery."""
        deliveries = [delivery for call in calls for delivery in call.deliveries or ()]
        try:
            conn = self._connection()
            try:
                results = self._accept_batch(conn, deliveries)
            except Exception as error:
                if _is_outage(error) or len(deliveries) == 1:
                    raise
                # one malformed delivery must not fail its neighbours: one transaction each
                results = [self._accept_alone(conn, delivery) for delivery in deliveries]
        except BaseException as error:
            failure = _unavailable(error) if _is_outage(error) else error
            return [(call, None, failure) for call in calls]
        outcomes: list[_Outcome] = []
        start = 0
        for call in calls:
            count = len(call.deliveries or ())
            outcomes.append((call, results[start : start + count], None))
            start += count
        return outcomes

    def _accept_alone(self, conn: sqlite3.Connection, delivery: Delivery) -> bool | BaseException:
        try:
            return self._accept_batch(conn, [delivery])[0]
        except Exception as error:
            if _is_outage(error):
                raise
            return error

    @staticmethod
    def _reply(outcomes: list[_Outcome]) -> None:
        # One wake-up per event loop and batch, not one per call.
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, batch in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is gone; nobody is waiting
                loop.call_soon_threadsafe(_settle, batch)

    def _shutdown(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None
        # Whatever raced with close() gets an answer instead of hanging.
        while True:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                return
            if call is not None:
                self._reply([(call, None, StoreUnavailable("sqlite: store is closed"))])

    def _maybe_prune(self) -> None:
        now = time.time()
        if now - self._last_prune < _PRUNE_EVERY or self._conn is None:
            return
        self._last_prune = now
        try:
            with self._write(self._conn):
                self._conn.execute("DELETE FROM seen WHERE expires <= ?", (now,))
                self._conn.execute("DELETE FROM kv WHERE expires <= ?", (now,))
        except (sqlite3.Error, StoreUnavailable) as error:
            _log.warning("sqlite store: pruning expired rows failed: %s", error)

    # -- plumbing ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; we issue BEGIN IMMEDIATE ourselves.
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=self._busy_ms / 1000)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreUnavailable(f"sqlite: cannot enable WAL (journal_mode={mode})")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        stat = os.stat(self._path)
        self._identity = (stat.st_dev, stat.st_ino)
        return conn

    def _connection(self) -> sqlite3.Connection:
        # Connecting lazily on the thread: sqlite3 connections stay on their thread,
        # and a store opened while the disk is unavailable recovers once it is back.
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _check_file(self) -> None:
        """Refuse to write into a database file that was deleted or replaced.

        An open descriptor keeps writing to an unlinked file, so without this a
        removed data directory would swallow every "accepted" delivery.
        """
        try:
            stat = os.stat(self._path)
        except OSError as error:
            raise StoreUnavailable(f"sqlite: database file is gone: {error}") from error
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise StoreUnavailable("sqlite: database file was replaced while open")

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._check_file()
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                # a failed ROLLBACK must not hide the error that caused it
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    async def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreUnavailable("sqlite: store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Call(fn=fn, deliveries=None, loop=loop, future=future))
        return await future

    async def _accept_many(self, deliveries: list[Delivery]) -> list[bool | BaseException]:
        if self._closed:
            raise StoreUnavailable("sqlite: store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bool | BaseException]] = loop.create_future()
        self._queue.put(_Call(fn=None, deliveries=deliveries, loop=loop, future=future))
        return await future

    # -- Store ------------------------------------------------------------------------

    async def accept(self, delivery: Delivery) -> bool:
        # Accepts of one loop iteration travel to the thread together (one wake-up);
        # the thread commits whatever accepts it finds queued in one transaction.
        return await self._accepts.submit(delivery)

    def _accept_batch(
        self, conn: sqlite3.Connection, deliveries: list[Delivery]
    ) -> list[bool | BaseException]:
        """Insert the batch in as few SQLite calls as possible.

        Each call releases and re-acquires the GIL, and under load the event loop
        keeps it for up to ``sys.getswitchinterval()`` (5 ms) at a time, so calls,
        not rows, are what an accept waits for. One multi-row INSERT outside
        BEGIN/COMMIT is its own transaction: it takes the write lock, runs the
        triggers and commits (fsync) within a single call.
        """
        now = time.time()
        dedupe_until = now + DEDUPE_SECONDS
        results: list[bool | BaseException] = []
        self._check_file()
        for start in range(0, len(deliveries), _ROWS_PER_INSERT):
            chunk = deliveries[start : start + _ROWS_PER_INSERT]
            rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            # A row whose id was seen within the dedupe window is not inserted (trigger).
            cursor = conn.execute(
                "INSERT INTO delivery (id, key, event, action, body, received_at,"  # noqa: S608
                f" accepted_at, dedupe_until) VALUES {rows}",
                [
                    value
                    for d in chunk
                    for value in (
                        d.id,
                        d.key,
                        d.event,
                        d.action,
                        d.body,
                        d.received_at,
                        now,
                        dedupe_until,
                    )
                ],
            )
            if cursor.rowcount == len(chunk):  # the usual case: no duplicates
                results.extend([True] * len(chunk))
                continue
            # Which ones? Those this statement remembered: seen with exactly our expiry.
            marks = ", ".join(["?"] * len(chunk))
            (found,) = conn.execute(
                f"SELECT json_group_array(id) FROM seen WHERE expires = ? AND id IN ({marks})",  # noqa: S608
                [dedupe_until, *(d.id for d in chunk)],
            ).fetchone()
            inserted = set(json.loads(found))
            for delivery in chunk:
                # a second copy of an id in the same batch is the duplicate
                results.append(delivery.id in inserted)
                inserted.discard(delivery.id)
        return results

    async def claim(self, *, worker: str, lease_seconds: float) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            now = time.time()
            # Idle workers poll: look first without the write lock (WAL readers never
            # wait for writers), so polling does not hold up the receiver's accepts.
            if conn.execute(_READY, (now, now)).fetchone() is None:
                return None
            with self._write(conn):
                row = conn.execute(_READY, (now, now)).fetchone()
                if row is None:  # another process took it in between
                    return None
                key, attempts, previous = row
                if previous is not None:  # its holder let the lease expire: a failed attempt
                    attempts += 1
                token = secrets.token_hex(16)
                conn.execute(
                    "UPDATE job_key SET token = ?, worker = ?, lease_until = ?, attempts = ?"
                    " WHERE key = ?",
                    (token, worker, now + lease_seconds, attempts, key),
                )
                deliveries = tuple(
                    Delivery(
                        id=r[0],
                        event=r[1],
                        action=r[2],
                        key=key,
                        body=bytes(r[3]),
                        received_at=r[4],
                    )
                    for r in conn.execute(
                        "SELECT id, event, action, body, received_at FROM delivery"
                        " WHERE key = ? ORDER BY seq",
                        (key,),
                    )
                )
            return Job(key=key, deliveries=deliveries, attempts=attempts, token=token)

        return await self._submit(run)

    def _holds(self, conn: sqlite3.Connection, job: Job) -> bool:
        row = conn.execute("SELECT token FROM job_key WHERE key = ?", (job.key,)).fetchone()
        if row is None or row[0] != job.token:
            _log.info("sqlite store: stale lease token for %s (another worker took over)", job.key)
            return False
        return True

    @staticmethod
    def _drop(conn: sqlite3.Connection, job: Job, *, now: float) -> None:
        """Delete the job's deliveries; requeue the key if others arrived meanwhile."""
        conn.executemany(
            "DELETE FROM delivery WHERE key = ? AND id = ?",
            [(job.key, delivery_id) for delivery_id in job.delivery_ids],
        )
        (first,) = conn.execute(
            "SELECT MIN(seq) FROM delivery WHERE key = ?", (job.key,)
        ).fetchone()
        if first is None:
            conn.execute("DELETE FROM job_key WHERE key = ?", (job.key,))
        else:
            conn.execute(
                "UPDATE job_key SET token = NULL, worker = NULL, lease_until = NULL, attempts = 0,"
                " ready_at = ?, first_seq = ? WHERE key = ?",
                (now, first, job.key),
            )

    async def complete(self, job: Job) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                if self._holds(conn, job):
                    self._drop(conn, job, now=time.time())

        await self._submit(run)

    async def fail(
        self, job: Job, *, error: str, retry_in: float, max_attempts: int
    ) -> DeadLetter | None:
        def run(conn: sqlite3.Connection) -> DeadLetter | None:
            now = time.time()
            with self._write(conn):
                if not self._holds(conn, job):
                    return None
                (attempts,) = conn.execute(
                    "SELECT attempts FROM job_key WHERE key = ?", (job.key,)
                ).fetchone()
                attempts += 1
                if attempts < max_attempts:
                    conn.execute(
                        "UPDATE job_key SET token = NULL, worker = NULL, lease_until = NULL,"
                        " attempts = ?, ready_at = ? WHERE key = ?",
                        (attempts, now + retry_in, job.key),
                    )
                    return None
                letter = DeadLetter(
                    key=job.key,
                    delivery_ids=job.delivery_ids,
                    error=error,
                    attempts=attempts,
                    at=now,
                )
                conn.execute(
                    "INSERT INTO dead_letter (key, delivery_ids, error, attempts, at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (job.key, json.dumps(list(job.delivery_ids)), error, attempts, now),
                )
                # Deliveries that arrived meanwhile get a fresh start (a new push may fix it).
                self._drop(conn, job, now=now)
                return letter

        return await self._submit(run)

    async def release(self, job: Job) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                # ready_at is untouched (<= now), so the key keeps its place in line.
                conn.execute(
                    "UPDATE job_key SET token = NULL, worker = NULL, lease_until = NULL"
                    " WHERE key = ? AND token = ?",
                    (job.key, job.token),
                )

        await self._submit(run)

    async def extend(self, job: Job, *, lease_seconds: float) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._write(conn):
                cursor = conn.execute(
                    "UPDATE job_key SET lease_until = ? WHERE key = ? AND token = ?",
                    (time.time() + lease_seconds, job.key, job.token),
                )
                return cursor.rowcount == 1

        return await self._submit(run)

    async def dead_letters(self) -> list[DeadLetter]:
        def run(conn: sqlite3.Connection) -> list[DeadLetter]:
            return [
                DeadLetter(
                    key=r[0],
                    delivery_ids=tuple(json.loads(r[1])),
                    error=r[2],
                    attempts=r[3],
                    at=r[4],
                )
                for r in conn.execute(
                    "SELECT key, delivery_ids, error, attempts, at FROM dead_letter ORDER BY seq"
                )
            ]

        return await self._submit(run)

    async def depth(self) -> int:
        def run(conn: sqlite3.Connection) -> int:
            (count,) = conn.execute("SELECT COUNT(*) FROM delivery").fetchone()
            return int(count)

        return await self._submit(run)

    async def lag(self, *, now: float) -> float:
        def run(conn: sqlite3.Connection) -> float | None:
            (oldest,) = conn.execute("SELECT MIN(received_at) FROM delivery").fetchone()
            return None if oldest is None else float(oldest)

        oldest = await self._submit(run)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    async def put(
        self, namespace: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> None:
        check_namespace(namespace)

        def run(conn: sqlite3.Connection) -> None:
            expires = None if ttl is None else time.time() + ttl
            with self._write(conn):
                conn.execute(
                    "INSERT INTO kv (namespace, key, value, expires) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (namespace, key) DO UPDATE"
                    " SET value = excluded.value, expires = excluded.expires",
                    (namespace, key, value, expires),
                )

        await self._submit(run)

    async def get(self, namespace: str, key: str) -> bytes | None:
        check_namespace(namespace)

        def run(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM kv WHERE namespace = ? AND key = ?"
                " AND (expires IS NULL OR expires > ?)",
                (namespace, key, time.time()),
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._submit(run)

    async def lock(self, name: str, *, owner: str, ttl: float) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            now = time.time()
            with self._write(conn):
                row = conn.execute(
                    "SELECT owner, until FROM lock WHERE name = ?", (name,)
                ).fetchone()
                if row is not None and row[0] != owner and float(row[1]) > now:
                    return False
                conn.execute(
                    "INSERT INTO lock (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name)"
                    " DO UPDATE SET owner = excluded.owner, until = excluded.until",
                    (name, owner, now + ttl),
                )
                return True

        return await self._submit(run)

    async def unlock(self, name: str, *, owner: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                conn.execute("DELETE FROM lock WHERE name = ? AND owner = ?", (name, owner))

        await self._submit(run)

    async def ping(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            self._check_file()
            conn.execute("SELECT 1 FROM job_key LIMIT 1").fetchall()

        await self._submit(run)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
