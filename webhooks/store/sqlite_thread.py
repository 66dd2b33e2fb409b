"""The one thread that owns a SQLite connection, and how coroutines hand it work.

sqlite3 connections stay on the thread that made them, and a COMMIT (fsync)
must not block the event loop, so one dedicated thread owns the connection;
coroutines queue calls and await a future. Accepts queued together travel as
one batch (group commit): one fsync acknowledges all of them. The queue's
semantics live in :class:`webhooks.store.sqlite.SqliteStore` on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from webhooks.store.base import Delivery, StoreUnavailable

_log = logging.getLogger("webhooks.store.sqlite")

T = TypeVar("T")

#: Upper bound of queued calls the thread takes in one round (keeps replies flowing).
_MAX_BATCH = 256
#: How long the SQLite thread waits for more accepts once it has seen them arrive
#: together; a fraction of a commit (which fsyncs), so waiting pays for itself.
_GATHER_SECONDS = 0.0005
#: How often the thread deletes expired rows (seconds).
_PRUNE_EVERY = 60.0


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


class SqliteThread:
    """A SQLite file served by one thread; subclasses say what the tables mean."""

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

    # -- what the store on top provides ---------------------------------------------

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """Create or upgrade the tables, inside the connecting transaction."""
        raise NotImplementedError

    def _prune(self, conn: sqlite3.Connection, *, wall: float) -> None:
        """Delete expired rows, inside a write transaction."""
        raise NotImplementedError

    def _accept_batch(
        self, conn: sqlite3.Connection, deliveries: list[Delivery]
    ) -> list[bool | BaseException]:
        """Record deliveries; one result (or the exception) per delivery."""
        raise NotImplementedError

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
        wall = time.time()
        if wall - self._last_prune < _PRUNE_EVERY or self._conn is None:
            return
        self._last_prune = wall
        try:
            with self._write(self._conn):
                self._prune(self._conn, wall=wall)
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
                self._create_schema(conn)
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

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)
