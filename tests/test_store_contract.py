"""One contract, two stores: every test runs on a real SQLite file and a real Redis.

No mocks: SQLite lives in ``tmp_path``; Redis is the server at 127.0.0.1:6379,
each test under its own key prefix, deleted afterwards. Without a reachable
Redis the Redis half is skipped (set ``MERGE_GATE_REQUIRE_REDIS=1`` to make that
a failure instead). Queue time is a :class:`FakeClock` the tests step forward,
so leases, retries and debounce windows are exact and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from webhooks.store import (
    DEDUPE_SECONDS,
    Delivery,
    Job,
    Store,
    StoreUnavailable,
    group_of,
    open_store,
)
from webhooks.store.sqlite import SqliteStore

REDIS_URL = "redis://127.0.0.1:6379"
ROOT = Path(__file__).resolve().parents[1]
LEASE = 15.0


class FakeClock:
    """The queue's time, moved only by :meth:`advance`."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _redis_reachable() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


@dataclass
class Backend:
    kind: str
    data_dir: Path
    redis_url: str | None
    prefix: str
    clock: FakeClock = field(default_factory=FakeClock)
    opened: list[Store] = field(default_factory=list)

    async def open(
        self,
        *,
        clock: Callable[[], float] | None = None,
        debounce_seconds: float = 0.0,
        max_delay: float = 10.0,
    ) -> Store:
        """Another instance on the same backing store, as a second process would have."""
        store = await open_store(
            data_dir=self.data_dir,
            redis_url=self.redis_url,
            prefix=self.prefix,
            clock=clock or self.clock,
            debounce_seconds=debounce_seconds,
            max_delay=max_delay,
        )
        self.opened.append(store)
        return store


async def _backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    if kind == "redis" and not _redis_reachable():
        if os.environ.get("MERGE_GATE_REQUIRE_REDIS"):
            pytest.fail(f"no Redis at {REDIS_URL}")
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"merge-gate-test-{uuid.uuid4().hex}"
    chosen = Backend(
        kind=kind,
        data_dir=tmp_path / "data",
        redis_url=REDIS_URL if kind == "redis" else None,
        prefix=prefix,
    )
    yield chosen
    for store in chosen.opened:
        await store.close()
    if kind == "redis":
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["sqlite", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for chosen in _backend(request.param, tmp_path):
        yield chosen


@pytest.fixture
async def redis_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    async for chosen in _backend("redis", tmp_path):
        yield chosen


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()


def delivery(
    n: int | str,
    *,
    key: str = "pr:org/repo#12",
    action: str | None = "synchronize",
    received_at: float | None = None,
) -> Delivery:
    return Delivery(
        id=f"d-{n}",
        event="pull_request",
        action=action,
        key=key,
        body=b'{"n": "%s", "bytes": "\xff\x00"}' % str(n).encode(),
        received_at=time.time() if received_at is None else received_at,
    )


def ids(job: Job | None) -> list[str]:
    assert job is not None
    return [d.id for d in job.deliveries]


# -- accept -------------------------------------------------------------------------


async def test_accept_records_once(store: Store) -> None:
    first = delivery(1)
    assert await store.accept(first) is True
    # same id, different everything else: still the same delivery
    again = Delivery(
        id=first.id, event="push", action=None, key="install:1", body=b"{}", received_at=1.0
    )
    assert await store.accept(again) is False
    assert await store.depth() == 1


async def test_concurrent_accepts_dedupe(store: Store) -> None:
    burst = [delivery(i, key=f"pr:org/repo#{i % 7}") for i in range(60)]
    results = await asyncio.gather(*(store.accept(d) for d in [*burst, *burst[:15]]))
    assert results.count(True) == 60
    assert results.count(False) == 15
    assert await store.depth() == 60
    # old and new ids in one batch: each gets its own answer
    mixed = [delivery(f"new-{i}") if i % 2 else burst[i] for i in range(20)]
    results = await asyncio.gather(*(store.accept(d) for d in mixed))
    assert results == [bool(i % 2) for i in range(20)]
    assert await store.depth() == 70


async def test_dedupe_survives_completion(store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    await store.complete(job)
    assert await store.accept(delivery(1)) is False
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None


# -- claim --------------------------------------------------------------------------


async def test_claim_returns_every_pending_delivery_of_the_oldest_key(store: Store) -> None:
    at = time.time() - 3
    a1 = delivery("a1", key="pr:org/a#1", action=None, received_at=at)
    await store.accept(a1)
    await store.accept(delivery("b1", key="pr:org/b#2"))
    await store.accept(delivery("a2", key="pr:org/a#1"))
    await store.accept(delivery("a3", key="pr:org/a#1"))

    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert job.key == "pr:org/a#1"
    assert ids(job) == ["d-a1", "d-a2", "d-a3"]
    assert job.attempts == 0
    assert job.deliveries[0] == a1  # every field round-trips, bytes and None included

    other = await store.claim(worker="w2", lease_seconds=LEASE)
    assert other is not None
    assert (other.key, ids(other)) == ("pr:org/b#2", ["d-b1"])
    assert await store.claim(worker="w3", lease_seconds=LEASE) is None


async def test_burst_for_one_key_is_one_job(store: Store) -> None:
    for n in range(10):
        await store.accept(delivery(n))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert ids(job) == [f"d-{n}" for n in range(10)]
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    assert job is not None
    await store.complete(job)
    assert await store.depth() == 0
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None


async def test_deliveries_accepted_during_processing_stay_queued(store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    await store.accept(delivery(2))
    await store.accept(delivery(3))
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None  # key is leased
    assert job is not None
    await store.complete(job)
    assert await store.depth() == 2
    again = await store.claim(worker="w2", lease_seconds=LEASE)
    assert ids(again) == ["d-2", "d-3"]
    assert again is not None
    assert again.attempts == 0


async def _claim_all(stores: list[Store], *, rounds: int) -> list[Job]:
    claims = [
        stores[n % len(stores)].claim(worker=f"w{n}", lease_seconds=5.0) for n in range(rounds)
    ]
    return [job for job in await asyncio.gather(*claims) if job is not None]


async def test_concurrent_claims_never_share_a_key(store: Store) -> None:
    for n in range(60):
        await store.accept(delivery(n, key=f"pr:org/repo#{n % 20}"))
    jobs = await _claim_all([store], rounds=50)
    keys = [job.key for job in jobs]
    assert len(keys) == len(set(keys)) == 20
    assert all(len(job.deliveries) == 3 for job in jobs)


async def test_two_instances_never_share_a_key(backend: Backend, store: Store) -> None:
    other = await backend.open()
    for n in range(60):
        await store.accept(delivery(n, key=f"pr:org/repo#{n % 20}"))
    jobs = await _claim_all([store, other], rounds=50)
    keys = [job.key for job in jobs]
    assert len(keys) == len(set(keys)) == 20
    assert sorted(d.id for job in jobs for d in job.deliveries) == sorted(
        f"d-{n}" for n in range(60)
    )


# -- leases -------------------------------------------------------------------------


async def test_expired_lease_is_reclaimed_as_a_failed_attempt(
    backend: Backend, store: Store
) -> None:
    await store.accept(delivery(1))
    dead = await store.claim(worker="dies", lease_seconds=LEASE)
    assert dead is not None
    backend.clock.advance(LEASE - 0.001)
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    backend.clock.advance(0.001)

    job = await store.claim(worker="w2", lease_seconds=LEASE)
    assert job is not None
    assert (job.key, ids(job), job.attempts) == (dead.key, ids(dead), 1)
    assert job.token != dead.token
    # the late worker wakes up: its token no longer counts for anything
    assert await store.extend(dead, lease_seconds=LEASE) is False
    await store.complete(dead)
    await store.release(dead)
    await store.defer(dead, until=backend.clock.now)
    assert await store.fail(dead, error="late", retry_in=0, max_attempts=1) is None
    assert await store.depth() == 1
    assert await store.claim(worker="w3", lease_seconds=LEASE) is None

    await store.complete(job)
    assert await store.depth() == 0
    assert await store.dead_letters() == []


async def test_expired_lease_is_noticed_through_a_newer_delivery(
    backend: Backend, store: Store
) -> None:
    await store.accept(delivery(1))
    dead = await store.claim(worker="dies", lease_seconds=LEASE)
    assert dead is not None
    backend.clock.advance(1)
    await store.accept(delivery(2))  # does not end the lease early
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    backend.clock.advance(LEASE)
    job = await store.claim(worker="w2", lease_seconds=30.0)
    assert job is not None
    assert (ids(job), job.attempts) == (["d-1", "d-2"], 1)


async def test_a_short_lease_renewed_by_heartbeats_keeps_the_job(
    backend: Backend, store: Store
) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    for _ in range(6):  # 60 s of work on a 15 s lease, renewed every 10 s
        backend.clock.advance(10)
        assert await store.claim(worker="w2", lease_seconds=LEASE) is None
        assert await store.extend(job, lease_seconds=LEASE) is True
    backend.clock.advance(LEASE - 0.001)
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    assert await store.extend(job, lease_seconds=LEASE) is True
    await store.complete(job)
    assert await store.depth() == 0


async def test_an_unrenewed_lease_goes_to_another_worker(backend: Backend, store: Store) -> None:
    other = await backend.open()  # another process
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    backend.clock.advance(10)
    assert await store.extend(job, lease_seconds=LEASE) is True
    backend.clock.advance(LEASE)  # the heartbeats stopped: the worker hangs
    taken = await other.claim(worker="w2", lease_seconds=LEASE)
    assert taken is not None
    assert (ids(taken), taken.attempts) == (["d-1"], 1)
    assert await store.extend(job, lease_seconds=LEASE) is False
    assert await other.extend(taken, lease_seconds=LEASE) is True


async def test_release_gives_the_key_back_at_once(store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=5.0)
    assert job is not None
    await store.release(job)
    again = await store.claim(worker="w2", lease_seconds=5.0)
    assert again is not None
    assert (again.key, ids(again), again.attempts) == (job.key, ids(job), 0)
    await store.complete(job)  # stale token
    assert await store.depth() == 1


async def test_release_keeps_the_place_in_line(backend: Backend, store: Store) -> None:
    await store.accept(delivery("a", key="pr:org/repo#1"))
    backend.clock.advance(1)
    await store.accept(delivery("b", key="pr:org/repo#2"))
    job = await store.claim(worker="w1", lease_seconds=5.0)
    assert job is not None
    assert job.key == "pr:org/repo#1"
    await store.release(job)
    again = await store.claim(worker="w1", lease_seconds=5.0)
    assert again is not None
    assert again.key == "pr:org/repo#1"


async def test_burst_with_busy_workers_is_evaluated_at_most_twice_in_order(store: Store) -> None:
    evaluations: list[list[str]] = []
    in_flight: set[str] = set()
    stop = asyncio.Event()

    async def worker(name: str) -> None:
        while not stop.is_set():
            job = await store.claim(worker=name, lease_seconds=5.0)
            if job is None:
                await asyncio.sleep(0.001)
                continue
            assert job.key not in in_flight  # never two workers on one key
            in_flight.add(job.key)
            evaluations.append(ids(job))
            await asyncio.sleep(0.05)  # re-reading the pull request
            in_flight.discard(job.key)
            await store.complete(job)

    workers = [asyncio.create_task(worker(f"w{n}")) for n in range(3)]
    for n in range(10):
        await store.accept(delivery(n))
    while await store.depth():
        await asyncio.sleep(0.005)
    stop.set()
    await asyncio.gather(*workers)
    assert 1 <= len(evaluations) <= 2
    assert [i for evaluation in evaluations for i in evaluation] == [f"d-{n}" for n in range(10)]


# -- failures -----------------------------------------------------------------------


async def test_fail_retries_after_the_delay(backend: Backend, store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert await store.fail(job, error="boom", retry_in=30, max_attempts=5) is None
    await store.accept(delivery(2))  # a new delivery does not cut the delay short
    backend.clock.advance(29.999)
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    backend.clock.advance(0.001)
    again = await store.claim(worker="w2", lease_seconds=LEASE)
    assert again is not None
    assert (ids(again), again.attempts) == (["d-1", "d-2"], 1)


async def test_max_attempts_moves_deliveries_to_dead_letters(
    backend: Backend, store: Store
) -> None:
    await store.accept(delivery(1))
    await store.accept(delivery(2))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert await store.fail(job, error="first", retry_in=0, max_attempts=2) is None
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert job.attempts == 1
    await store.accept(delivery(3))  # arrives while the last attempt runs
    backend.clock.advance(7.25)
    letter = await store.fail(job, error="second", retry_in=0, max_attempts=2)
    assert letter is not None
    assert (letter.key, letter.delivery_ids, letter.error, letter.attempts) == (
        "pr:org/repo#12",
        ("d-1", "d-2"),
        "second",
        2,
    )
    assert letter.at == pytest.approx(backend.clock.now, abs=0.001)  # the store's clock
    assert await store.dead_letters() == [letter]
    # the dead deliveries left the queue; the newer one starts afresh
    assert await store.depth() == 1
    fresh = await store.claim(worker="w1", lease_seconds=LEASE)
    assert fresh is not None
    assert (ids(fresh), fresh.attempts) == (["d-3"], 0)


# -- deferral (an installation out of rate limit) ---------------------------------------


async def test_defer_requeues_at_the_given_time_without_an_attempt(
    backend: Backend, store: Store
) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    until = backend.clock.now + 600  # the installation's budget resets in 10 minutes
    await store.defer(job, until=until)
    await store.accept(delivery(2))  # waits with it
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    backend.clock.advance(599.999)
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    backend.clock.advance(0.001)
    again = await store.claim(worker="w2", lease_seconds=LEASE)
    assert again is not None
    assert (ids(again), again.attempts) == (["d-1", "d-2"], 0)
    # the old token defers nothing any more
    await store.defer(job, until=backend.clock.now + 600)
    assert await store.extend(again, lease_seconds=LEASE) is True


async def test_defer_keeps_the_attempts_of_earlier_failures(backend: Backend, store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    await store.fail(job, error="boom", retry_in=0, max_attempts=5)
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    await store.defer(job, until=backend.clock.now + 1)
    backend.clock.advance(1)
    again = await store.claim(worker="w1", lease_seconds=LEASE)
    assert again is not None
    assert again.attempts == 1


# -- debounce ---------------------------------------------------------------------------


async def _drain(store: Store) -> list[Job]:
    """Claim and complete whatever is ready now, as an idle worker pool would."""
    done = []
    while (job := await store.claim(worker="w1", lease_seconds=LEASE)) is not None:
        await store.complete(job)
        done.append(job)
    return done


async def test_debounce_lets_a_delivery_to_a_quiet_key_through_at_once(backend: Backend) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-1"]


async def test_debounce_waits_for_the_window_after_a_delivery_within_it(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))
    assert [ids(job) for job in await _drain(store)] == [["d-1"]]
    backend.clock.advance(1)
    await store.accept(delivery(2))  # 1 s after d-1, whose job is done
    backend.clock.advance(1.999)
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(0.001)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-2"]


async def test_debounce_remembers_a_key_for_the_window_only(backend: Backend) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))
    await _drain(store)
    backend.clock.advance(2)  # the window after d-1 has ended
    await store.accept(delivery(2))
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-2"]


async def test_debounce_evaluates_a_burst_twice_at_most_the_second_time_on_its_newest(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    jobs: list[Job] = []
    for n in range(10):  # an agent's pushes, a second apart, an idle worker pool
        await store.accept(delivery(n))
        jobs += await _drain(store)
        backend.clock.advance(1)
    for _ in range(12):  # the burst is over
        jobs += await _drain(store)
        backend.clock.advance(0.5)
    assert [ids(job) for job in jobs] == [["d-0"], [f"d-{n}" for n in range(1, 10)]]


async def test_debounce_coalesces_a_first_delivery_still_queued_into_the_burst(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))  # ready at once, but every worker is busy
    backend.clock.advance(0.5)
    await store.accept(delivery(2))
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(2)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-1", "d-2"]


async def test_debounce_takes_two_deliveries_accepted_together_after_the_window(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    assert all(await asyncio.gather(store.accept(delivery(1)), store.accept(delivery(2))))
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(2)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-1", "d-2"]


async def test_debounce_is_capped_for_a_key_with_steady_deliveries(backend: Backend) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(0))
    await _drain(store)
    for n in range(1, 11):  # every second for 10 s: the window never closes
        backend.clock.advance(1)
        await store.accept(delivery(n))
        assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(1)  # 10 s after d-1, 1 s after the last
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert ids(job) == [f"d-{n}" for n in range(1, 11)]


async def test_debounce_never_delays_a_key_that_already_waited(backend: Backend) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    assert all(await asyncio.gather(store.accept(delivery(0)), store.accept(delivery(1))))
    backend.clock.advance(30)  # every worker was busy
    await store.accept(delivery(2))
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-0", "d-1", "d-2"]


async def test_debounce_applies_to_deliveries_that_arrive_during_a_lease(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    backend.clock.advance(1)
    await store.accept(delivery(2))  # within the window after d-1
    backend.clock.advance(1)
    await store.complete(job)
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None  # 1 s after d-2
    backend.clock.advance(1)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-2"]


async def test_a_delivery_after_a_quiet_window_is_ready_once_the_lease_ends(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    backend.clock.advance(5)  # a slow evaluation
    await store.accept(delivery(2))
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None  # leased
    await store.complete(job)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-2"]


async def test_debounce_does_not_cut_a_retry_short(backend: Backend) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    await store.fail(job, error="boom", retry_in=20, max_attempts=5)
    backend.clock.advance(15)
    await store.accept(delivery(2))  # a quiet key's delivery: ready at once, but not before
    backend.clock.advance(4.999)
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(0.001)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-1", "d-2"]


async def test_debounce_is_per_key(backend: Backend) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery("a1", key="pr:org/repo#1"))
    backend.clock.advance(0.5)
    await store.accept(delivery("a2", key="pr:org/repo#1"))  # repo#1 waits until 2.5 s
    backend.clock.advance(0.5)
    await store.accept(delivery("b", key="pr:org/repo#2"))  # another key: at once
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-b"]
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(1.5)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-a1", "d-a2"]


async def test_no_debounce_window_makes_every_delivery_ready_at_once(store: Store) -> None:
    for n in range(3):
        await store.accept(delivery(n))
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-0", "d-1", "d-2"]


# -- fairness ---------------------------------------------------------------------------


def test_groups_are_repositories() -> None:
    assert group_of("pr:org/repo#12") == "org/repo"
    assert group_of("sha:org/repo@0123abcd") == "org/repo"
    assert group_of("group:org/repo@0123abcd") == "org/repo"
    assert group_of("install:42") == "install:42"
    assert group_of("pr:org/repo.js#1") == group_of("sha:org/repo.js@beef")
    assert group_of("odd") == "odd"
    assert group_of("pr:#1") == "pr:#1"


async def test_a_flood_in_one_repository_does_not_starve_another(store: Store) -> None:
    flood = [delivery(f"a{n}", key=f"pr:org/busy#{n}") for n in range(200)]
    assert all(await asyncio.gather(*map(store.accept, flood)))
    await store.accept(delivery("b", key="pr:org/quiet#1"))
    first = await store.claim(worker="w1", lease_seconds=LEASE)
    second = await store.claim(worker="w2", lease_seconds=LEASE)
    assert first is not None
    assert second is not None
    assert "pr:org/quiet#1" in {first.key, second.key}


async def test_an_installation_key_is_not_held_up_by_a_flood_or_its_repositories(
    backend: Backend, store: Store
) -> None:
    # installation 1's repository floods; installation 2 has a repository with work too
    flood = [delivery(f"a{n}", key=f"pr:busy/app#{n}") for n in range(100)]
    assert all(await asyncio.gather(*map(store.accept, flood)))
    backend.clock.advance(0.01)
    await store.accept(delivery("b", key="pr:calm/app#1"))
    backend.clock.advance(0.01)
    await store.accept(delivery("i", key="install:42"))  # installation 2 changed
    jobs = [await store.claim(worker="w1", lease_seconds=LEASE) for _ in range(3)]
    assert {job.key for job in jobs if job is not None} == {
        "pr:busy/app#0",
        "pr:calm/app#1",
        "install:42",
    }


async def test_a_spare_claim_passes_over_repositories_a_worker_is_busy_with(
    backend: Backend, store: Store
) -> None:
    for n in range(3):
        await store.accept(delivery(f"a{n}", key=f"pr:org/busy#{n}"))
    busy = await store.claim(worker="w1", lease_seconds=LEASE)
    assert busy is not None
    assert group_of(busy.key) == "org/busy"
    # org/busy has ready keys, but a worker holds one of its keys: not for a spare
    assert await store.claim(worker="spare", lease_seconds=LEASE, spare=True) is None
    await store.accept(delivery("b", key="pr:org/calm#1"))
    calm = await store.claim(worker="spare", lease_seconds=LEASE, spare=True)
    assert ids(calm) == ["d-b"]
    # an ordinary claim still takes the busy repository's next key
    assert (await store.claim(worker="w2", lease_seconds=LEASE)) is not None


async def test_a_spare_claim_takes_a_repository_once_its_leases_end(
    backend: Backend, store: Store
) -> None:
    for n in range(2):
        await store.accept(delivery(f"a{n}", key=f"pr:org/busy#{n}"))
    first = await store.claim(worker="w1", lease_seconds=LEASE)
    assert first is not None
    await store.complete(first)  # no lease left in org/busy
    assert ids(await store.claim(worker="spare", lease_seconds=LEASE, spare=True)) == ["d-a1"]


async def test_a_spare_claim_is_not_kept_out_by_an_expired_lease(
    backend: Backend, store: Store
) -> None:
    for n in range(2):
        await store.accept(delivery(f"a{n}", key=f"pr:org/busy#{n}"))
    dead = await store.claim(worker="w1", lease_seconds=LEASE)
    assert dead is not None
    backend.clock.advance(LEASE)  # its worker died
    job = await store.claim(worker="spare", lease_seconds=LEASE, spare=True)
    assert job is not None
    assert group_of(job.key) == "org/busy"
    # extended, released or deferred leases keep or drop the mark accordingly
    assert await store.extend(job, lease_seconds=LEASE)
    assert await store.claim(worker="spare", lease_seconds=LEASE, spare=True) is None
    await store.defer(job, until=backend.clock.now + 60)
    assert await store.claim(worker="spare", lease_seconds=LEASE, spare=True) is not None


async def test_claims_take_repositories_in_turn(backend: Backend, store: Store) -> None:
    for repo in ("a", "b", "c"):
        for n in range(4):
            await store.accept(delivery(f"{repo}{n}", key=f"pr:org/{repo}#{n}"))
            backend.clock.advance(0.01)
    jobs = [await store.claim(worker="w1", lease_seconds=LEASE) for _ in range(12)]
    assert None not in jobs
    repos = [group_of(job.key) for job in jobs if job is not None]
    # round robin: each window of three claims serves all three repositories
    for start in range(0, 12, 3):
        assert sorted(repos[start : start + 3]) == ["org/a", "org/b", "org/c"]
    # and within a repository, the oldest key first
    assert [job.key for job in jobs if job is not None and group_of(job.key) == "org/a"] == [
        f"pr:org/a#{n}" for n in range(4)
    ]


async def test_a_repository_served_recently_waits_its_turn(backend: Backend, store: Store) -> None:
    await store.accept(delivery("a1", key="pr:org/a#1"))
    await store.accept(delivery("b1", key="pr:org/b#1"))
    first = await store.claim(worker="w1", lease_seconds=LEASE)
    assert first is not None
    await store.complete(first)
    backend.clock.advance(1)
    again = "pr:org/a#2" if first.key == "pr:org/a#1" else "pr:org/b#2"
    await store.accept(delivery("x2", key=again))  # the served repository has more work
    second = await store.claim(worker="w1", lease_seconds=LEASE)
    assert second is not None
    assert group_of(second.key) != group_of(first.key)


async def test_a_repository_whose_turn_it_is_but_not_ready_is_skipped(
    backend: Backend,
) -> None:
    store = await backend.open(debounce_seconds=2.0, max_delay=10.0)
    await store.accept(delivery("a1", key="pr:org/a#1"))  # org/a has the first turn
    backend.clock.advance(0.5)
    await store.accept(delivery("b1", key="pr:org/b#1"))
    backend.clock.advance(1.0)
    await store.accept(delivery("a2", key="pr:org/a#1"))  # org/a waits again
    backend.clock.advance(1.0)  # 2.5 s: org/b is ready, org/a not until 3.5 s
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-b1"]
    assert await store.claim(worker="w1", lease_seconds=LEASE) is None
    backend.clock.advance(1.0)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-a1", "d-a2"]


# -- metrics and key/value ----------------------------------------------------------


async def test_depth_and_lag(backend: Backend, store: Store) -> None:
    now = time.time()
    assert await store.depth() == 0
    assert await store.lag(now=now) == 0.0
    await store.accept(delivery(1, key="pr:org/a#1", received_at=now - 30))
    await store.accept(delivery(2, key="pr:org/b#2", received_at=now - 10))
    assert await store.depth() == 2
    assert await store.lag(now=now) == pytest.approx(30, abs=1e-3)
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert await store.depth() == 2  # leased deliveries are still pending
    await store.complete(job)
    assert await store.depth() == 1
    assert await store.lag(now=now) == pytest.approx(10, abs=1e-3)
    # without ``now``: the store's clock
    assert await store.lag() == pytest.approx(backend.clock.now - (now - 10), abs=1e-3)


async def test_dedupe_window_follows_the_store_clock(backend: Backend, store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    await store.complete(job)
    backend.clock.advance(DEDUPE_SECONDS - 1)
    assert await store.accept(delivery(1)) is False
    backend.clock.advance(1)
    assert await store.accept(delivery(1)) is True  # a redelivery older than the window


async def test_put_get_with_ttl(store: Store) -> None:
    assert await store.get("installations", "42") is None
    await store.put("installations", "42", b'{"token": "x"}')
    assert await store.get("installations", "42") == b'{"token": "x"}'
    await store.put("installations", "42", b"{}")
    assert await store.get("installations", "42") == b"{}"
    assert await store.get("other", "42") is None
    await store.put("etag", "org/repo", b"W/1", ttl=0.2)
    assert await store.get("etag", "org/repo") == b"W/1"
    await asyncio.sleep(0.3)
    assert await store.get("etag", "org/repo") is None
    assert await store.get("installations", "42") == b"{}"
    with pytest.raises(ValueError, match="namespace"):
        await store.put("a:b", "c", b"")


async def test_ping(store: Store) -> None:
    await store.ping()


# -- outages ------------------------------------------------------------------------


async def test_redis_down_is_unavailable_fast(tmp_path: Path) -> None:
    store = await open_store(data_dir=tmp_path, redis_url="redis://127.0.0.1:1", prefix="x")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.accept(delivery(1))
        assert time.monotonic() - started < 1.0
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.claim(worker="w1", lease_seconds=LEASE)
        with pytest.raises(StoreUnavailable):
            await store.depth()
    finally:
        await store.close()


async def test_redis_reloads_a_flushed_accept_script(redis_backend: Backend) -> None:
    store = await redis_backend.open()
    # as after a Redis restart or SCRIPT FLUSH (not run here: the server is shared)
    store._accept.sha = "0" * 40  # type: ignore[attr-defined]
    results = await asyncio.gather(*(store.accept(delivery(n)) for n in range(5)))
    assert results == [True] * 5
    assert await store.depth() == 5


async def test_sqlite_data_dir_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StoreUnavailable):
        await open_store(data_dir=blocker, redis_url=None)
    with pytest.raises(StoreUnavailable):
        await open_store(data_dir=blocker / "below", redis_url=None)


async def test_sqlite_removed_data_dir_is_unavailable(tmp_path: Path) -> None:
    store = await open_store(data_dir=tmp_path / "data", redis_url=None)
    try:
        assert await store.accept(delivery(1)) is True
        shutil.rmtree(tmp_path / "data")
        # the open descriptor would happily write into the unlinked file
        with pytest.raises(StoreUnavailable):
            await store.accept(delivery(2))
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.close()


async def test_sqlite_locked_is_unavailable_then_recovers(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "queue.sqlite3", busy_timeout=0.1)
    other = sqlite3.connect(tmp_path / "queue.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.accept(delivery(1))
        assert time.monotonic() - started < 1.0
        other.execute("ROLLBACK")
        assert await store.accept(delivery(1)) is True
    finally:
        other.close()
        await store.close()


def _make_read_only(paths: list[Path]) -> Callable[[], None]:
    """Make ``paths`` unwritable and return the undo. Permissions do not stop root, so
    root uses the immutable attribute where the filesystem and capabilities allow it."""
    names = [str(path) for path in paths]
    if os.geteuid() != 0:
        for path in paths:
            path.chmod(stat.S_IRUSR | stat.S_IXUSR)

        def undo_chmod() -> None:
            for path in paths:
                path.chmod(stat.S_IRWXU)

        return undo_chmod

    def undo_chattr() -> None:
        subprocess.run(["chattr", "-i", *names], capture_output=True, check=False)

    made = subprocess.run(["chattr", "+i", *names], capture_output=True, check=False)
    if made.returncode != 0:
        undo_chattr()
        pytest.skip(f"cannot make files read-only as root: {made.stderr.decode().strip()}")
    return undo_chattr


async def test_sqlite_read_only_is_unavailable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await open_store(data_dir=data, redis_url=None)
    await store.close()

    async def open_and_accept() -> None:
        reopened = await open_store(data_dir=data, redis_url=None)
        try:
            await reopened.accept(delivery(1))
        finally:
            await reopened.close()

    undo = _make_read_only([data, *data.iterdir()])
    try:
        with pytest.raises(StoreUnavailable):
            await open_and_accept()
    finally:
        undo()


async def test_closed_store_is_unavailable(store: Store) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.accept(delivery(1))


# -- upgrades from the earlier layout --------------------------------------------------

_SQLITE_LAYOUT_1 = (
    "CREATE TABLE seen (id TEXT PRIMARY KEY, expires REAL NOT NULL) WITHOUT ROWID",
    "CREATE TABLE delivery (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,"
    " key TEXT NOT NULL, event TEXT NOT NULL, action TEXT, body BLOB NOT NULL,"
    " received_at REAL NOT NULL, accepted_at REAL NOT NULL, dedupe_until REAL NOT NULL)",
    "CREATE TABLE job_key (key TEXT PRIMARY KEY, ready_at REAL NOT NULL,"
    " first_seq INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, token TEXT,"
    " worker TEXT, lease_until REAL) WITHOUT ROWID",
    "CREATE INDEX job_key_ready ON job_key (ready_at, first_seq)",
    """CREATE TRIGGER delivery_accepted AFTER INSERT ON delivery
    BEGIN
        DELETE FROM seen WHERE id = NEW.id;
        INSERT INTO seen (id, expires) VALUES (NEW.id, NEW.dedupe_until);
        INSERT INTO job_key (key, ready_at, first_seq)
            SELECT NEW.key, NEW.accepted_at, NEW.seq
            WHERE NOT EXISTS (SELECT 1 FROM job_key WHERE key = NEW.key);
    END""",
)


async def test_sqlite_upgrades_a_queue_of_the_earlier_layout(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "queue.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    for statement in _SQLITE_LAYOUT_1:
        old.execute(statement)
    for n, key in enumerate(["pr:org/a#1", "pr:org/b#2", "pr:org/a#1"]):
        old.execute(
            "INSERT INTO delivery (id, key, event, action, body, received_at, accepted_at,"
            " dedupe_until) VALUES (?, ?, 'pull_request', 'opened', x'7b7d', ?, ?, ?)",
            (f"old-{n}", key, clock.now, clock.now, clock.now + DEDUPE_SECONDS),
        )
    old.close()
    store = await SqliteStore.open(path, clock=clock, debounce_seconds=2.0)
    try:
        again = dataclasses.replace(delivery(0), id="old-0")
        assert await store.accept(again) is False  # still remembered
        await store.accept(delivery("new", key="pr:org/c#3"))
        first = await store.claim(worker="w1", lease_seconds=LEASE)
        second = await store.claim(worker="w1", lease_seconds=LEASE)
        assert first is not None
        assert second is not None
        assert ids(first) == ["old-0", "old-2"]
        assert ids(second) == ["old-1"]
        third = await store.claim(worker="w1", lease_seconds=LEASE)
        assert ids(third) == ["d-new"]
        assert third is not None
        await store.complete(third)
        await store.accept(delivery("again", key="pr:org/c#3"))
        assert await store.claim(worker="w1", lease_seconds=LEASE) is None  # debounced
        clock.advance(2)
        assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-again"]
    finally:
        await store.close()


#: Layout 2's accept trigger: no leading edge (every delivery waits out its window).
_SQLITE_LAYOUT_2_TRIGGER = """CREATE TRIGGER delivery_queued AFTER INSERT ON delivery
BEGIN
    DELETE FROM seen WHERE id = NEW.id;
    INSERT INTO seen (id, expires) VALUES (NEW.id, NEW.dedupe_until);
    INSERT INTO job_group (grp, last_claim)
        SELECT NEW.grp, (SELECT COALESCE(MAX(last_claim), 0) + 1 FROM job_group)
        WHERE NOT EXISTS (SELECT 1 FROM job_group WHERE grp = NEW.grp);
    INSERT INTO job_key (key, grp, ready_at, first_seq, due_at)
        VALUES (NEW.key, NEW.grp, NEW.ready_after, NEW.seq, NEW.ready_by)
        ON CONFLICT (key) DO UPDATE SET ready_at = MAX(
            job_key.ready_at, MIN(excluded.ready_at, job_key.due_at), job_key.retry_at)
        WHERE job_key.token IS NULL AND NEW.ready_after > NEW.accepted_at;
END"""


async def test_sqlite_upgrades_layout_2_to_the_leading_edge(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "queue.sqlite3"
    await (await SqliteStore.open(path, clock=clock)).close()
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("DROP TRIGGER delivery_queued")
    old.execute("DROP TABLE quiet")
    old.execute(_SQLITE_LAYOUT_2_TRIGGER)
    old.execute("PRAGMA user_version = 2")
    old.close()
    store = await SqliteStore.open(path, clock=clock, debounce_seconds=2.0)
    try:
        await store.accept(delivery(1))
        assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["d-1"]
    finally:
        await store.close()


async def test_redis_upgrades_a_queue_of_the_earlier_layout(redis_backend: Backend) -> None:
    p = redis_backend.prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.xgroup_create(f"{p}:stream", "workers", id="0", mkstream=True)
        for n, key in enumerate(["pr:org/a#1", "pr:org/b#2"]):
            eid = await client.xadd(f"{p}:stream", {"k": key, "d": f"old-{n}"})
            await client.hset(
                f"{p}:d:old-{n}",
                mapping={"k": key, "ev": "pull_request", "body": b"{}", "at": "1.0", "eid": eid},
            )
            await client.rpush(f"{p}:q:{key}", f"old-{n}")
            await client.zadd(f"{p}:pending", {f"old-{n}": 1.0})
            await client.set(f"{p}:seen:old-{n}", "1", ex=60)
        # a retry waiting in the old delayed set (due in 30 s)
        due = (redis_backend.clock.now + 30) * 1000
        await client.hset(f"{p}:d:old-2", mapping={"k": "pr:org/c#3", "ev": "x", "body": b"{}"})
        await client.hset(f"{p}:d:old-2", mapping={"at": "1.0"})
        await client.rpush(f"{p}:q:pr:org/c#3", "old-2")
        await client.zadd(f"{p}:pending", {"old-2": 1.0})
        await client.zadd(f"{p}:delayed", {"pr:org/c#3": due})
    finally:
        await client.aclose()
    store = await redis_backend.open()
    again = dataclasses.replace(delivery(0), id="old-0")
    assert await store.accept(again) is False  # the old marker still counts
    jobs = [await store.claim(worker="w1", lease_seconds=LEASE) for _ in range(3)]
    assert [ids(job) for job in jobs[:2]] == [["old-0"], ["old-1"]]
    assert jobs[2] is None
    for job in jobs[:2]:
        assert job is not None
        await store.complete(job)
    redis_backend.clock.advance(30)
    late = await store.claim(worker="w1", lease_seconds=LEASE)
    assert ids(late) == ["old-2"]
    assert await store.depth() == 1
    # a receiver of the earlier version queues one more while the job runs
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.hset(f"{p}:d:old-3", mapping={"k": "pr:org/c#3", "ev": "x", "body": b"{}"})
        await client.hset(f"{p}:d:old-3", mapping={"at": "1.0"})
        await client.rpush(f"{p}:q:pr:org/c#3", "old-3")
        await client.zadd(f"{p}:pending", {"old-3": 1.0})
    finally:
        await client.aclose()
    assert late is not None
    await store.complete(late)
    assert ids(await store.claim(worker="w1", lease_seconds=LEASE)) == ["old-3"]


# -- another process ----------------------------------------------------------------

_PRODUCER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from webhooks.store import Delivery, open_store

    async def main(data_dir, redis_url, prefix, count):
        store = await open_store(data_dir=Path(data_dir), redis_url=redis_url or None,
                                 prefix=prefix)
        try:
            # 7 at a time, one per key: concurrent like a receiver under load, yet
            # each key's deliveries are accepted in order
            for start in range(0, count, 7):
                batch = [
                    Delivery(id=f"p-{n:04d}", event="pull_request", action="synchronize",
                             key=f"pr:org/repo#{n % 7}", body=b"{}", received_at=time.time())
                    for n in range(start, min(start + 7, count))
                ]
                assert all(await asyncio.gather(*map(store.accept, batch)))
        finally:
            await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


async def test_another_process_accepts_while_we_claim(backend: Backend) -> None:
    store = await backend.open(clock=time.time)  # the producer's clock is the real one
    count = 300
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    producer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _PRODUCER,
        str(backend.data_dir),
        backend.redis_url or "",
        backend.prefix,
        str(count),
        env=env,
        stderr=subprocess.PIPE,
    )
    done: list[str] = []
    per_key: dict[str, list[str]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = await store.claim(worker="consumer", lease_seconds=5.0)
        if job is None:
            if producer.returncode is not None and await store.depth() == 0:
                break
            await asyncio.sleep(0.002)
            continue
        done.extend(ids(job))
        per_key.setdefault(job.key, []).extend(ids(job))
        await store.complete(job)
    _, stderr = await producer.communicate()
    assert producer.returncode == 0, stderr.decode()

    assert sorted(done) == [f"p-{n:04d}" for n in range(count)]  # nothing lost, nothing twice
    for seen in per_key.values():
        assert seen == sorted(seen)  # each key's deliveries in accept order
    assert await store.depth() == 0


async def test_a_lock_has_one_owner_until_released_or_run_out(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    assert await first.lock("commit:o/r@abc", owner="a", ttl=10)
    assert not await second.lock("commit:o/r@abc", owner="b", ttl=10)
    # Its owner renews it; a stranger cannot release it.
    assert await first.lock("commit:o/r@abc", owner="a", ttl=10)
    await second.unlock("commit:o/r@abc", owner="b")
    assert not await second.lock("commit:o/r@abc", owner="b", ttl=10)
    await first.unlock("commit:o/r@abc", owner="a")
    assert await second.lock("commit:o/r@abc", owner="b", ttl=10)
    # A holder that died holds it only until its time runs out.
    backend.clock.advance(11)
    assert await first.lock("commit:o/r@abc", owner="a", ttl=10)
    assert await second.lock("commit:o/r@other", owner="b", ttl=10)
