"""The durable store/queue seam between the webhook receiver and the workers.

The receiver verifies a delivery, derives its coalescing key and calls
:meth:`Store.accept`; it answers 202 only once ``accept`` has returned (the
delivery is durably recorded), 200 for a duplicate delivery id and 503 when
``accept`` raises :class:`StoreUnavailable`.

Workers :meth:`Store.claim` a *key*, not a delivery: a job carries every
pending delivery of that key, because the worker evaluates the pull request's
current state (it re-reads GitHub) and one evaluation answers them all. A burst
of ``synchronize`` deliveries for one pull request is therefore evaluated once
or twice, in order, and never by two workers at once (a key has at most one
live lease).

Semantics shared by both implementations (``tests/test_store_contract.py``
checks them against each):

- *Clock*: every lease, retry delay, debounce window and dedupe window is
  measured with the clock the store was opened with (``time.time`` unless a
  test injects another), never with the database server's; hosts sharing one
  Redis must keep their clocks in sync (NTP), which is far tighter than a lease.
- *Ready*: a key is ready when it has pending deliveries, no live lease holds
  it and the time has come. With a debounce window ``w`` and a cap ``m``, each
  delivery gets a ready time when accepted at ``t``: ``t`` itself when the key
  had no delivery in ``(t - w, t]`` (leading edge: a lone push to a quiet pull
  request waits for nothing), else ``t + w`` (trailing). The store remembers
  each key's last delivery time for ``w`` after it, also once its job has
  completed. A key whose pending deliveries' latest ready time is ``ready``,
  whose first pending one was accepted at ``first`` and whose retry (``fail``)
  or deferral (``defer``) ends at ``retry`` is ready at
  ``max(min(ready, first + m), retry)``. A burst of pushes is thus evaluated at
  most twice: at its first push (when a worker takes it before the second
  arrives) and once after the burst, on the newest head; pushes that queue up
  behind a busy worker pool coalesce into one evaluation. A key with steady
  deliveries still waits at most ``m``, and ``w = 0`` disables debouncing.
- *Fairness*: keys are grouped by repository (:func:`group_of`); a claim serves
  the group whose last claim is the oldest among those with a ready key, and
  within it the key ready the longest. A flood in one repository therefore
  delays another repository's pull request by one claim, not by the flood.
  Repositories of different installations are different groups, and an
  ``install:<id>`` key (an installation's own changes) is a group of its own, so
  neither another installation's flood nor its own repositories hold it up.
  A claim with ``spare=True`` passes over groups with a key under a live lease.
- *Attempts*: ``Job.attempts`` counts earlier claims of this key's work that
  failed (:meth:`Store.fail`) or whose lease expired. A worker that claims a job
  with ``attempts >= max_attempts`` (its predecessors kept dying) should call
  ``fail`` at once to dead-letter it.
- *Tokens*: each claim issues a fresh lease token. ``complete``/``fail``/
  ``release`` with a token that is no longer the key's current one (the lease
  expired and another worker claimed the key) change nothing: the new holder
  evaluates the pull request again, so no delivery is lost. A token whose lease
  merely expired, with nobody having claimed since, is still honoured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

#: GitHub never redelivers on its own; people and scripts may redeliver deliveries
#: up to 3 days old (7 on GitHub Enterprise Server), see
#: https://docs.github.com/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks.
#: Remembering delivery ids for a week covers both.
DEDUPE_SECONDS = 7 * 24 * 3600

#: The debounce window the service uses unless ``GATE_DEBOUNCE_SECONDS`` says
#: otherwise: an agent's pushes come seconds apart, one evaluation after the
#: burst answers them all.
DEBOUNCE_SECONDS = 2.0
#: However busy a key, its first pending delivery waits no longer than this.
DEBOUNCE_MAX_DELAY = 10.0


def group_of(key: str) -> str:
    """The fairness group of a coalescing key: its repository, else the key itself.

    Keys are made by :func:`webhooks.events.route`: ``pr:owner/repo#12``,
    ``sha:owner/repo@<sha>``, ``group:owner/repo@<sha>`` and ``install:<id>``.
    A repository name holds neither ``#`` nor ``@``, so the repository is what
    lies between the first ``:`` and the first of those.
    """
    kind, sep, rest = key.partition(":")
    if not sep or kind == "install":
        return key
    for stop in ("#", "@"):
        rest = rest.partition(stop)[0]
    return rest or key


class StoreUnavailable(Exception):
    """The store cannot record or serve right now (locked, I/O error, Redis down)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str  # X-GitHub-Delivery
    event: str  # X-GitHub-Event
    action: str | None
    key: str  # coalescing key, e.g. "pr:org/repo#12", "install:42"
    body: bytes  # raw JSON body
    received_at: float  # unix time

    @property
    def group(self) -> str:
        """The fairness group (repository) of this delivery's key."""
        return group_of(self.key)


@dataclass(frozen=True, slots=True)
class Job:
    key: str
    #: All pending deliveries of this key at claim time, oldest (first accepted) first.
    deliveries: tuple[Delivery, ...]
    #: How many times this key's work was claimed and failed/expired before.
    attempts: int
    #: Lease token; complete/fail/release/extend must present it.
    token: str

    @property
    def delivery_ids(self) -> tuple[str, ...]:
        return tuple(delivery.id for delivery in self.deliveries)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: str
    delivery_ids: tuple[str, ...]
    error: str
    attempts: int
    at: float


class Store(Protocol):
    async def accept(self, delivery: Delivery) -> bool:
        """Record ``delivery`` durably under ``delivery.key``.

        True when newly recorded; False when its id was seen in the last
        :data:`DEDUPE_SECONDS`. Raises :class:`StoreUnavailable` when it cannot record.
        """
        ...

    async def claim(self, *, worker: str, lease_seconds: float, spare: bool = False) -> Job | None:
        """Lease a ready key, fairly (see *Fairness*); None when nothing is ready.

        ``spare``: only from a group none of whose keys is under a live lease. A
        spare worker thus never joins a flood: it stays free for the next quiet
        repository's pull request, which otherwise waits for a busy worker.
        """
        ...

    async def complete(self, job: Job) -> None:
        """Drop exactly ``job.deliveries``; later deliveries of the key stay queued."""
        ...

    async def fail(
        self, job: Job, *, error: str, retry_in: float, max_attempts: int
    ) -> DeadLetter | None:
        """Release the lease, retry after ``retry_in`` s, dead-letter after ``max_attempts``."""
        ...

    async def release(self, job: Job) -> None:
        """Give the key back at once without counting an attempt (graceful shutdown)."""
        ...

    async def extend(self, job: Job, *, lease_seconds: float) -> bool:
        """Heartbeat: the lease now ends ``lease_seconds`` from now; False if it was lost."""
        ...

    async def defer(self, job: Job, *, until: float) -> None:
        """Give the key back, ready again at ``until``, without counting an attempt.

        For a worker whose installation has spent its rate-limit budget: the job
        waits in the queue for the budget's reset instead of holding a worker.
        Deliveries accepted meanwhile wait with it.
        """
        ...

    async def dead_letters(self) -> list[DeadLetter]:
        """Every dead-letter record, oldest first."""
        ...

    async def depth(self) -> int:
        """Number of pending deliveries (leased ones included)."""
        ...

    async def lag(self, *, now: float | None = None) -> float:
        """Age in seconds of the oldest pending delivery's ``received_at``; 0 if none.

        ``now`` defaults to the store's clock.
        """
        ...

    async def put(
        self, namespace: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> None:
        """Store a small value; it disappears ``ttl`` seconds from now when given."""
        ...

    async def get(self, namespace: str, key: str) -> bytes | None: ...

    async def lock(self, name: str, *, owner: str, ttl: float) -> bool:
        """Take (or, for the same ``owner``, renew) a lock for ``ttl`` seconds.

        False while another owner holds it and its time has not run out. Used to
        serialise evaluations that publish to the same commit.
        """
        ...

    async def unlock(self, name: str, *, owner: str) -> None:
        """Drop the lock if ``owner`` still holds it."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers."""
        ...

    async def close(self) -> None: ...


def check_namespace(namespace: str) -> None:
    """Namespaces become part of Redis key names; a ``:`` would make them ambiguous."""
    if not namespace or ":" in namespace:
        raise ValueError(f"namespace must be non-empty and free of ':', got {namespace!r}")


class Batcher(Generic[ItemT, ResultT]):
    """Runs the calls made during one event-loop iteration as one batch.

    The receiver's requests that reach ``accept`` together then share one
    round trip: one SQLite commit (one fsync) or one Redis pipeline, instead of
    one each. A lone call waits for nothing but the current iteration to end.
    ``run`` gets the items in call order and returns, in the same order, a
    result or the exception for each; if it raises, every call of the batch
    raises that.
    """

    def __init__(
        self,
        run: Callable[[list[ItemT]], Awaitable[Sequence[ResultT | BaseException]]],
        *,
        max_batch: int = 256,
    ) -> None:
        self._run = run
        self._max_batch = max_batch
        self._pending: dict[
            asyncio.AbstractEventLoop, list[tuple[ItemT, asyncio.Future[ResultT]]]
        ] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while running

    async def submit(self, item: ItemT) -> ResultT:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append((item, future))
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        for start in range(0, len(batch), self._max_batch):
            task = loop.create_task(self._execute(batch[start : start + self._max_batch]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _execute(self, batch: list[tuple[ItemT, asyncio.Future[ResultT]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except asyncio.CancelledError:  # the loop is shutting down
            for _, future in batch:
                future.cancel()
            raise
        except Exception as error:  # every caller of the batch hears about it
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # the caller was cancelled
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
