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
             accepted_at, dedupe_until, grp, ready_after, ready_by)
                                   pending deliveries, seq = accept order;
                                   ready_after/ready_by = accepted_at plus the
                                   debounce window / its cap
    job_key(key PK, grp, ready_at, first_seq, attempts, token, worker,
            lease_until, due_at, retry_at, was_ready)
                                   one row per key with pending deliveries;
                                   ready_at is when it can be claimed: the
                                   debounced time, a retry's or deferral's end
                                   (retry_at), or while leased the lease's end
                                   (so an expired lease makes it claimable)
    job_group(grp PK, last_claim)  groups (repositories) with keys; last_claim
                                   is a turn counter: a claim or a new group
                                   takes the next number, the lowest is served
                                   first (round robin)
    quiet(key PK, until)           when each key's debounce window after its
                                   last delivery ends, kept after its job
                                   completed (leading edge); pruned once past
    dead_letter(seq PK, key, delivery_ids JSON, error, attempts, at)
    kv(namespace, key, value, expires)
                                   small documents, PK (namespace, key)

``accept`` is one INSERT into ``delivery``; triggers drop it when the id is in
``seen`` and otherwise record the id, make a new key (and group) known and push
an idle key's ready time to the end of the debounce window. ``seen`` alone
guards against duplicates: a second index on random delivery ids would cost
every insert another random B-tree page (a quarter of the accept's CPU). A
delivery still pending after the whole dedupe window could thus be queued
twice, which does no harm: the job re-reads GitHub once for both copies.

Claim walks the groups by ``last_claim`` and takes the first one's oldest ready
key through the index ``(grp, ready_at, first_seq)``: a lookup per group, never
a scan of the keys. All queue times come from the store's clock (``time.time()``
unless one is injected); key/value expiry is wall-clock time.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from webhooks.store.base import (
    DEBOUNCE_MAX_DELAY,
    DEDUPE_SECONDS,
    Batcher,
    DeadLetter,
    Delivery,
    Job,
    check_namespace,
    group_of,
)
from webhooks.store.sqlite_thread import SqliteThread, _unavailable

_log = logging.getLogger(__name__)

T = TypeVar("T")

#: Rows per INSERT statement: 8 parameters each stays far below SQLite's limit
#: of 32766 (https://www.sqlite.org/limits.html#max_variable_number).
_ROWS_PER_INSERT = 500

#: ``PRAGMA user_version`` of the current layout; 0 or 1 is the layout before
#: debouncing and fairness, 2 the one before the leading edge (the ``quiet``
#: table and the trigger that reads it), upgraded in place by :func:`_migrate`.
_VERSION = 3

# One statement per item: triggers need their inner semicolons.
_TABLES = (
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
        dedupe_until REAL NOT NULL,
        grp TEXT NOT NULL DEFAULT '',
        ready_after REAL NOT NULL DEFAULT 0,
        ready_by REAL NOT NULL DEFAULT 0
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
        lease_until REAL,
        grp TEXT NOT NULL DEFAULT '',
        due_at REAL NOT NULL DEFAULT 0,
        retry_at REAL NOT NULL DEFAULT 0,
        was_ready REAL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS job_group (
        grp TEXT PRIMARY KEY,
        last_claim REAL NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS quiet (
        key TEXT PRIMARY KEY,
        until REAL NOT NULL
    ) WITHOUT ROWID""",
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
)

#: Indexes and triggers over the current columns (created after any migration).
_LOGIC = (
    "CREATE INDEX IF NOT EXISTS job_key_ready ON job_key (ready_at, first_seq)",
    "CREATE INDEX IF NOT EXISTS job_key_fair ON job_key (grp, ready_at, first_seq)",
    "CREATE INDEX IF NOT EXISTS job_group_turn ON job_group (last_claim, grp)",
    # accept is a single INSERT into delivery (each statement is a GIL hand-off
    # between the SQLite thread and the event loop); these triggers do the rest.
    # A delivery id seen within the dedupe window is silently not inserted
    # (https://www.sqlite.org/lang_createtrigger.html#raise).
    """CREATE TRIGGER IF NOT EXISTS delivery_dedupe BEFORE INSERT ON delivery
    WHEN EXISTS (SELECT 1 FROM seen WHERE id = NEW.id AND expires > NEW.accepted_at)
    BEGIN
        SELECT RAISE(IGNORE);
    END""",
    # Remember the id. Leading edge: a delivery to a key that had none in the
    # window before it (no ``quiet`` row still running) is ready at once, its
    # ready_after cut to its accept time; either way the key's quiet time now
    # ends with this delivery's window. A new key is ready at its delivery's
    # ready_after; a new group joins the end of the rotation, as a group just
    # served does. An idle key whose new delivery came within the window moves
    # its ready time to the end of the new window, capped at its first pending
    # delivery's ready_by, never before a retry's end (upsert:
    # https://www.sqlite.org/lang_upsert.html). A leased key is left alone:
    # complete/fail/release set its next ready time.
    """CREATE TRIGGER IF NOT EXISTS delivery_queued AFTER INSERT ON delivery
    BEGIN
        DELETE FROM seen WHERE id = NEW.id;
        INSERT INTO seen (id, expires) VALUES (NEW.id, NEW.dedupe_until);
        UPDATE delivery SET ready_after = NEW.accepted_at
            WHERE seq = NEW.seq AND NEW.ready_after > NEW.accepted_at
            AND NOT EXISTS (SELECT 1 FROM quiet WHERE key = NEW.key AND until > NEW.accepted_at);
        INSERT INTO quiet (key, until) SELECT NEW.key, NEW.ready_after
            WHERE NEW.ready_after > NEW.accepted_at
            ON CONFLICT (key) DO UPDATE SET until = excluded.until;
        INSERT INTO job_group (grp, last_claim)
            SELECT NEW.grp, (SELECT COALESCE(MAX(last_claim), 0) + 1 FROM job_group)
            WHERE NOT EXISTS (SELECT 1 FROM job_group WHERE grp = NEW.grp);
        INSERT INTO job_key (key, grp, ready_at, first_seq, due_at)
            SELECT NEW.key, NEW.grp, d.ready_after, NEW.seq, NEW.ready_by
            FROM delivery AS d WHERE d.seq = NEW.seq
            ON CONFLICT (key) DO UPDATE SET ready_at = MAX(
                job_key.ready_at, MIN(excluded.ready_at, job_key.due_at), job_key.retry_at)
            WHERE job_key.token IS NULL AND excluded.ready_at > NEW.accepted_at;
    END""",
)

#: Layout 1 -> 2: the columns debouncing and fairness need. Old rows get the
#: neutral values: ready as before (ready_after = ready_by = accepted_at).
_MIGRATE_1_TO_2 = (
    "DROP TRIGGER IF EXISTS delivery_accepted",
    "ALTER TABLE delivery ADD COLUMN grp TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE delivery ADD COLUMN ready_after REAL NOT NULL DEFAULT 0",
    "ALTER TABLE delivery ADD COLUMN ready_by REAL NOT NULL DEFAULT 0",
    "UPDATE delivery SET ready_after = accepted_at, ready_by = accepted_at",
    "ALTER TABLE job_key ADD COLUMN grp TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE job_key ADD COLUMN due_at REAL NOT NULL DEFAULT 0",
    "ALTER TABLE job_key ADD COLUMN retry_at REAL NOT NULL DEFAULT 0",
    "ALTER TABLE job_key ADD COLUMN was_ready REAL",
    "UPDATE job_key SET retry_at = ready_at",
)


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database of an earlier layout to :data:`_VERSION` (inside BEGIN IMMEDIATE)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= _VERSION:
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(job_key)")}
    if "grp" not in columns:  # a database of layout 1 (a new one has every column)
        for statement in _MIGRATE_1_TO_2:
            conn.execute(statement)
        keys = [key for (key,) in conn.execute("SELECT key FROM job_key")]
        conn.executemany(
            "UPDATE job_key SET grp = ? WHERE key = ?", [(group_of(key), key) for key in keys]
        )
        conn.executemany(
            "UPDATE delivery SET grp = ? WHERE key = ?", [(group_of(key), key) for key in keys]
        )
        conn.executemany(
            "INSERT OR IGNORE INTO job_group (grp, last_claim) VALUES (?, 0)",
            [(group_of(key),) for key in keys],
        )
    # 2 -> 3: the trigger is recreated (by _LOGIC) reading the new quiet table
    conn.execute("DROP TRIGGER IF EXISTS delivery_queued")
    conn.execute(f"PRAGMA user_version = {_VERSION}")


#: Anything ready at all? (the index on ready_at; no write lock needed to ask)
_ANY_READY = "SELECT 1 FROM job_key WHERE ready_at <= ? LIMIT 1"

#: The fair choice: groups in turn (least recently claimed first), each offering
#: its oldest ready key; the first group that has one wins. An expired lease has
#: ready_at = its end, so it is claimable like any other ready key.
_FAIR = """
SELECT k.key, k.attempts, k.token, k.ready_at, k.grp
FROM job_group AS g
JOIN job_key AS k ON k.key = (
    SELECT key FROM job_key
    WHERE grp = g.grp AND ready_at <= ?
    ORDER BY ready_at, first_seq LIMIT 1
)
ORDER BY g.last_claim, g.grp
LIMIT 1
"""

#: The same for a spare worker: only groups none of whose keys is leased (a
#: leased key's ready_at is its lease's end, so the index finds live leases).
_SPARE = """
SELECT k.key, k.attempts, k.token, k.ready_at, k.grp
FROM job_group AS g
JOIN job_key AS k ON k.key = (
    SELECT key FROM job_key
    WHERE grp = g.grp AND ready_at <= ?
    ORDER BY ready_at, first_seq LIMIT 1
)
WHERE NOT EXISTS (
    SELECT 1 FROM job_key AS held
    WHERE held.grp = g.grp AND held.ready_at > ? AND held.token IS NOT NULL
)
ORDER BY g.last_claim, g.grp
LIMIT 1
"""


def _choice(now: float, *, spare: bool) -> tuple[str, tuple[float, ...]]:
    """The claim's query and its parameters."""
    return (_SPARE, (now, now)) if spare else (_FAIR, (now,))


def _insert(
    conn: sqlite3.Connection,
    deliveries: list[Delivery],
    *,
    now: float,
    debounce: float,
    max_delay: float,
) -> list[bool | BaseException]:
    """Insert the batch in as few SQLite calls as possible.

    Each call releases and re-acquires the GIL, and under load the event loop
    keeps it for up to ``sys.getswitchinterval()`` (5 ms) at a time, so calls,
    not rows, are what an accept waits for. One multi-row INSERT outside
    BEGIN/COMMIT is its own transaction: it takes the write lock, runs the
    triggers and commits (fsync) within a single call.
    """
    dedupe_until = now + DEDUPE_SECONDS
    ready_after = now + debounce
    ready_by = now + max(max_delay, debounce) if debounce else now
    results: list[bool | BaseException] = []
    for start in range(0, len(deliveries), _ROWS_PER_INSERT):
        chunk = deliveries[start : start + _ROWS_PER_INSERT]
        rows = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        # A row whose id was seen within the dedupe window is not inserted (trigger).
        cursor = conn.execute(
            "INSERT INTO delivery (id, key, event, action, body, received_at,"  # noqa: S608
            f" accepted_at, dedupe_until, grp, ready_after, ready_by) VALUES {rows}",
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
                    d.group,
                    ready_after,
                    ready_by,
                )
            ],
        )
        if cursor.rowcount == len(chunk):  # the usual case: no duplicates
            results.extend([True] * len(chunk))
            continue
        # Which ones? The rows it inserted: AUTOINCREMENT gave them the consecutive
        # seqs ending at lastrowid (the triggers' own inserts do not count:
        # https://www.sqlite.org/c3ref/last_insert_rowid.html).
        last = cursor.lastrowid or 0
        (found,) = conn.execute(
            "SELECT json_group_array(id) FROM delivery WHERE seq > ? AND seq <= ?",
            (last - cursor.rowcount, last),
        ).fetchone()
        inserted = set(json.loads(found))
        for delivery in chunk:
            # a second copy of an id in the same batch is the duplicate
            results.append(delivery.id in inserted)
            inserted.discard(delivery.id)
    return results


class _Documents(SqliteThread):
    """Small documents with an expiry, and named locks, beside the queue."""

    _clock: Callable[[], float]

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
            now = self._clock()
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


class SqliteStore(_Documents):
    """:class:`webhooks.store.base.Store` on a SQLite file; create with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float,
        clock: Callable[[], float] = time.time,
        debounce_seconds: float = 0.0,
        max_delay: float = DEBOUNCE_MAX_DELAY,
    ) -> None:
        if debounce_seconds < 0 or max_delay < 0:
            raise ValueError("debounce_seconds and max_delay must not be negative")
        super().__init__(path, busy_timeout=busy_timeout)
        self._clock = clock
        self._debounce = debounce_seconds
        self._max_delay = max_delay
        self._accepts: Batcher[Delivery, bool] = Batcher(self._accept_many)

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        busy_timeout: float = 3.0,
        clock: Callable[[], float] = time.time,
        debounce_seconds: float = 0.0,
        max_delay: float = DEBOUNCE_MAX_DELAY,
    ) -> SqliteStore:
        """Create the directory and schema (idempotent; safe with other processes).

        ``debounce_seconds`` and ``max_delay`` are the debounce window and its
        cap (see :mod:`webhooks.store.base`); ``clock`` tells the queue's time.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _unavailable(error) from error
        store = cls(
            path,
            busy_timeout=busy_timeout,
            clock=clock,
            debounce_seconds=debounce_seconds,
            max_delay=max_delay,
        )
        store._thread.start()
        try:
            await store.ping()  # connects and creates the schema
        except BaseException:
            await store.close()
            raise
        return store

    # -- the tables -------------------------------------------------------------------

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        for statement in _TABLES:
            conn.execute(statement)
        _migrate(conn)
        for statement in _LOGIC:
            conn.execute(statement)

    def _prune(self, conn: sqlite3.Connection, *, wall: float) -> None:
        now = self._clock()
        conn.execute("DELETE FROM seen WHERE expires <= ?", (now,))
        conn.execute("DELETE FROM quiet WHERE until <= ?", (now,))
        conn.execute("DELETE FROM kv WHERE expires <= ?", (wall,))

    # -- Store ------------------------------------------------------------------------

    async def accept(self, delivery: Delivery) -> bool:
        # Accepts of one loop iteration travel to the thread together (one wake-up);
        # the thread commits whatever accepts it finds queued in one transaction.
        return await self._accepts.submit(delivery)

    def _accept_batch(
        self, conn: sqlite3.Connection, deliveries: list[Delivery]
    ) -> list[bool | BaseException]:
        self._check_file()
        return _insert(
            conn,
            deliveries,
            now=self._clock(),
            debounce=self._debounce,
            max_delay=self._max_delay,
        )

    async def claim(self, *, worker: str, lease_seconds: float, spare: bool = False) -> Job | None:
        def run(conn: sqlite3.Connection) -> Job | None:
            now = self._clock()
            # Idle workers poll: look first without the write lock (WAL readers never
            # wait for writers), so polling does not hold up the receiver's accepts.
            if conn.execute(_ANY_READY, (now,)).fetchone() is None:
                return None
            with self._write(conn):
                row = conn.execute(*_choice(now, spare=spare)).fetchone()
                if row is None:  # another process took it in between
                    return None
                key, attempts, previous, ready_at, group = row
                if previous is not None:  # its holder let the lease expire: a failed attempt
                    attempts += 1
                    ready_at = None  # its place in line is gone
                token = secrets.token_hex(16)
                lease_until = now + lease_seconds
                conn.execute(
                    "UPDATE job_key SET token = ?, worker = ?, lease_until = ?, attempts = ?,"
                    " ready_at = ?, was_ready = ?, retry_at = 0 WHERE key = ?",
                    (token, worker, lease_until, attempts, lease_until, ready_at, key),
                )
                conn.execute(
                    "UPDATE job_group SET last_claim ="
                    " (SELECT MAX(last_claim) FROM job_group) + 1 WHERE grp = ?",
                    (group,),
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
    def _drop(conn: sqlite3.Connection, job: Job) -> None:
        """Delete the job's deliveries; requeue the key if others arrived meanwhile.

        Those wait out the debounce window of the last of them, capped by the
        first's (both recorded per delivery when it was accepted).
        """
        conn.executemany(
            "DELETE FROM delivery WHERE key = ? AND id = ?",
            [(job.key, delivery_id) for delivery_id in job.delivery_ids],
        )
        first, ready_after, due = conn.execute(
            "SELECT MIN(seq), MAX(ready_after), MIN(ready_by) FROM delivery WHERE key = ?",
            (job.key,),
        ).fetchone()
        if first is not None:
            conn.execute(
                "UPDATE job_key SET token = NULL, worker = NULL, lease_until = NULL, attempts = 0,"
                " ready_at = ?, first_seq = ?, due_at = ?, retry_at = 0, was_ready = NULL"
                " WHERE key = ?",
                (min(ready_after, due), first, due, job.key),
            )
            return
        conn.execute("DELETE FROM job_key WHERE key = ?", (job.key,))
        group = group_of(job.key)
        conn.execute(
            "DELETE FROM job_group WHERE grp = ?"
            " AND NOT EXISTS (SELECT 1 FROM job_key WHERE grp = ?)",
            (group, group),
        )

    async def complete(self, job: Job) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                if self._holds(conn, job):
                    self._drop(conn, job)

        await self._submit(run)

    async def fail(
        self, job: Job, *, error: str, retry_in: float, max_attempts: int
    ) -> DeadLetter | None:
        def run(conn: sqlite3.Connection) -> DeadLetter | None:
            now = self._clock()
            with self._write(conn):
                if not self._holds(conn, job):
                    return None
                (attempts,) = conn.execute(
                    "SELECT attempts FROM job_key WHERE key = ?", (job.key,)
                ).fetchone()
                attempts += 1
                if attempts < max_attempts:
                    self._wait(conn, job, until=now + retry_in, attempts=attempts)
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
                self._drop(conn, job)
                return letter

        return await self._submit(run)

    @staticmethod
    def _wait(conn: sqlite3.Connection, job: Job, *, until: float, attempts: int) -> None:
        """End the lease; the key is ready again at ``until`` (a retry or a deferral)."""
        conn.execute(
            "UPDATE job_key SET token = NULL, worker = NULL, lease_until = NULL,"
            " attempts = ?, ready_at = ?, retry_at = ?, was_ready = NULL WHERE key = ?",
            (attempts, until, until, job.key),
        )

    async def release(self, job: Job) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                # back to the ready time it had when claimed: its place in line
                conn.execute(
                    "UPDATE job_key SET token = NULL, worker = NULL, lease_until = NULL,"
                    " ready_at = COALESCE(was_ready, ?), was_ready = NULL"
                    " WHERE key = ? AND token = ?",
                    (self._clock(), job.key, job.token),
                )

        await self._submit(run)

    async def defer(self, job: Job, *, until: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with self._write(conn):
                row = conn.execute(
                    "SELECT token, attempts FROM job_key WHERE key = ?", (job.key,)
                ).fetchone()
                if row is not None and row[0] == job.token:
                    self._wait(conn, job, until=until, attempts=row[1])

        await self._submit(run)

    async def extend(self, job: Job, *, lease_seconds: float) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with self._write(conn):
                lease_until = self._clock() + lease_seconds
                cursor = conn.execute(
                    "UPDATE job_key SET lease_until = ?, ready_at = ? WHERE key = ? AND token = ?",
                    (lease_until, lease_until, job.key, job.token),
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

    async def lag(self, *, now: float | None = None) -> float:
        if now is None:
            now = self._clock()

        def run(conn: sqlite3.Connection) -> float | None:
            (oldest,) = conn.execute("SELECT MIN(received_at) FROM delivery").fetchone()
            return None if oldest is None else float(oldest)

        oldest = await self._submit(run)
        return 0.0 if oldest is None else max(0.0, now - oldest)

    async def ping(self) -> None:
        def run(conn: sqlite3.Connection) -> None:
            self._check_file()
            conn.execute("SELECT 1 FROM job_key LIMIT 1").fetchall()

        await self._submit(run)
