"""The commit lock outlives a slow evaluation, and its holder learns when it lost it."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.test_store_contract import backend, store  # noqa: F401  (fixtures)
from webhooks import commitlock
from webhooks.store import Store

LEASE = 0.6


async def test_a_slow_holder_keeps_the_lock_past_its_lease(store: Store) -> None:  # noqa: F811
    async with commitlock.hold(
        store, "commit:o/r@a", owner="A", lease=LEASE, clock=time.time
    ) as held:
        for _ in range(4):  # more than three leases in all
            await asyncio.sleep(LEASE / 1.5)
            assert not await store.lock("commit:o/r@a", owner="B", ttl=LEASE)
        assert not held.lost()
    # released on exit: the next evaluation takes it at once
    assert await store.lock("commit:o/r@a", owner="B", ttl=LEASE)


async def test_a_holder_whose_lock_was_taken_knows_it(store: Store) -> None:  # noqa: F811
    async with commitlock.hold(
        store, "commit:o/r@b", owner="A", lease=LEASE, clock=time.time
    ) as held:
        # A stall long enough for the lease to run out and another worker to take it.
        await store.unlock("commit:o/r@b", owner="A")
        assert await store.lock("commit:o/r@b", owner="B", ttl=10)
        await asyncio.sleep(LEASE)  # the next renewal finds B
        assert held.lost()
    # A's exit leaves B's lock alone
    assert not await store.lock("commit:o/r@b", owner="C", ttl=LEASE)


async def test_a_renewal_that_comes_too_late_counts_as_lost(store: Store) -> None:  # noqa: F811
    skew = [0.0]

    def clock() -> float:
        return time.time() + skew[0]

    async with commitlock.hold(store, "commit:o/r@c", owner="A", lease=LEASE, clock=clock) as held:
        assert not held.lost()
        skew[0] = LEASE  # the event loop stalled past the lease before a renewal ran
        assert held.lost()
        await asyncio.sleep(LEASE / 2)
        assert held.lost()  # and it stays lost: someone may have published meanwhile


async def test_a_commit_held_elsewhere_too_long_is_busy(store: Store) -> None:  # noqa: F811
    assert await store.lock("commit:o/r@d", owner="B", ttl=10)
    with pytest.raises(commitlock.Busy):
        async with commitlock.hold(store, "commit:o/r@d", owner="A", lease=LEASE, clock=time.time):
            pytest.fail("entered a lock another worker holds")


async def test_a_lock_freed_while_waiting_is_taken_and_says_it_waited(
    store: Store,  # noqa: F811
) -> None:
    assert await store.lock("commit:o/r@e", owner="B", ttl=10)

    async def release_soon() -> None:
        await asyncio.sleep(0.05)
        await store.unlock("commit:o/r@e", owner="B")

    releasing = asyncio.create_task(release_soon())
    async with commitlock.hold(
        store, "commit:o/r@e", owner="A", lease=2.0, clock=time.time
    ) as held:
        assert held.waited
        assert not held.lost()
    await releasing
