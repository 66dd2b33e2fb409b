"""One contract, two stores: every test runs on a real SQLite file and a real Redis.

No mocks: SQLite lives in ``tmp_path``; Redis is the server at 127.0.0.1:6379,
each test under its own key prefix, deleted afterwards. Without a reachable
Redis the Redis half is skipped (set ``MERGE_GATE_REQUIRE_REDIS=1`` to make that
a failure instead).
"""

from __future__ import annotations

import asyncio
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

from webhooks.store import Delivery, Job, Store, StoreUnavailable, open_store
from webhooks.store.sqlite import SqliteStore

REDIS_URL = "redis://127.0.0.1:6379"
ROOT = Path(__file__).resolve().parents[1]
LEASE = 0.2


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
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        """Another instance on the same backing store, as a second process would have."""
        store = await open_store(
            data_dir=self.data_dir, redis_url=self.redis_url, prefix=self.prefix
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


async def test_expired_lease_is_reclaimed_as_a_failed_attempt(store: Store) -> None:
    await store.accept(delivery(1))
    dead = await store.claim(worker="dies", lease_seconds=LEASE)
    assert dead is not None
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    await asyncio.sleep(LEASE * 1.5)

    job = await store.claim(worker="w2", lease_seconds=LEASE)
    assert job is not None
    assert (job.key, ids(job), job.attempts) == (dead.key, ids(dead), 1)
    assert job.token != dead.token
    # the late worker wakes up: its token no longer counts for anything
    assert await store.extend(dead, lease_seconds=LEASE) is False
    await store.complete(dead)
    await store.release(dead)
    assert await store.fail(dead, error="late", retry_in=0, max_attempts=1) is None
    assert await store.depth() == 1
    assert await store.claim(worker="w3", lease_seconds=LEASE) is None

    await store.complete(job)
    assert await store.depth() == 0
    assert await store.dead_letters() == []


async def test_expired_lease_is_noticed_through_a_newer_delivery(store: Store) -> None:
    await store.accept(delivery(1))
    dead = await store.claim(worker="dies", lease_seconds=LEASE)
    assert dead is not None
    await store.accept(delivery(2))
    await asyncio.sleep(LEASE * 1.5)
    # a long lease of its own: for Redis, the dead worker's entry is not yet idle
    # enough to reclaim, so the key is found through the newer delivery
    job = await store.claim(worker="w2", lease_seconds=30.0)
    assert job is not None
    assert (ids(job), job.attempts) == (["d-1", "d-2"], 1)


async def test_extend_keeps_the_lease(store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    await asyncio.sleep(LEASE / 2)
    assert await store.extend(job, lease_seconds=2.0) is True
    await asyncio.sleep(LEASE)  # past the first lease
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    assert await store.extend(job, lease_seconds=2.0) is True
    await store.complete(job)
    assert await store.depth() == 0


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


async def test_fail_retries_after_the_delay(store: Store) -> None:
    await store.accept(delivery(1))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert await store.fail(job, error="boom", retry_in=0.3, max_attempts=5) is None
    await store.accept(delivery(2))  # a new delivery does not cut the delay short
    assert await store.claim(worker="w2", lease_seconds=LEASE) is None
    await asyncio.sleep(0.35)
    again = await store.claim(worker="w2", lease_seconds=LEASE)
    assert again is not None
    assert (ids(again), again.attempts) == (["d-1", "d-2"], 1)


async def test_max_attempts_moves_deliveries_to_dead_letters(store: Store) -> None:
    await store.accept(delivery(1))
    await store.accept(delivery(2))
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert await store.fail(job, error="first", retry_in=0, max_attempts=2) is None
    job = await store.claim(worker="w1", lease_seconds=LEASE)
    assert job is not None
    assert job.attempts == 1
    await store.accept(delivery(3))  # arrives while the last attempt runs
    before = time.time()
    letter = await store.fail(job, error="second", retry_in=0, max_attempts=2)
    assert letter is not None
    assert (letter.key, letter.delivery_ids, letter.error, letter.attempts) == (
        "pr:org/repo#12",
        ("d-1", "d-2"),
        "second",
        2,
    )
    assert before - 1 <= letter.at <= time.time() + 1
    assert await store.dead_letters() == [letter]
    # the dead deliveries left the queue; the newer one starts afresh
    assert await store.depth() == 1
    fresh = await store.claim(worker="w1", lease_seconds=LEASE)
    assert fresh is not None
    assert (ids(fresh), fresh.attempts) == (["d-3"], 0)


# -- metrics and key/value ----------------------------------------------------------


async def test_depth_and_lag(store: Store) -> None:
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


async def test_another_process_accepts_while_we_claim(backend: Backend, store: Store) -> None:
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
