"""The lock that serialises evaluations publishing to one commit.

A check run belongs to a commit, so two evaluations of pull requests sharing a
head must not interleave: the later reader could publish first and the earlier,
weaker result last. The lock is the store's (``Store.lock``, an expiring lease
so a dead holder cannot block a commit forever) and is renewed while its holder
works: a slow evaluation (a supply-chain scan, GitHub's retries) may take longer
than one lease. Should a renewal find the lock gone or taken, or come too late,
another evaluation may have published in between, so the holder must not
publish what it read before: :meth:`Held.lost` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from webhooks.store import Store, StoreUnavailable


@dataclass(slots=True)
class Held:
    """A held commit lock; ``waited`` says whether others held it first."""

    waited: bool
    #: Store-clock time until which the lock is surely ours.
    until: float
    clock: Callable[[], float]
    broken: bool = field(default=False)

    def lost(self) -> bool:
        """Whether another holder could have had the lock since it was taken."""
        return self.broken or self.clock() >= self.until


class Busy(Exception):
    """Another evaluation held the commit for longer than a caller should wait."""


@contextlib.asynccontextmanager
async def hold(
    store: Store, name: str, *, owner: str, lease: float, clock: Callable[[], float]
) -> AsyncIterator[Held]:
    """Take ``name``, renew it every third of ``lease`` while the block runs, release it."""
    waited, delay, spent = False, 0.05, 0.0
    while True:
        taken_at = clock()
        if await store.lock(name, owner=owner, ttl=lease):
            break
        if spent > lease / 2:
            raise Busy(name)
        waited = True
        await asyncio.sleep(delay)
        spent += delay
        delay = min(delay * 2, 0.5)
    held = Held(waited=waited, until=taken_at + lease, clock=clock)
    renewer = asyncio.create_task(_renew(store, name, owner=owner, lease=lease, held=held))
    try:
        yield held
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await store.unlock(name, owner=owner)  # only if still ours: the store checks


async def _renew(store: Store, name: str, *, owner: str, lease: float, held: Held) -> None:
    while not held.broken:
        await asyncio.sleep(lease / 3)
        asked = held.clock()
        if held.lost():  # a renewal came too late: someone may have held it meanwhile
            held.broken = True
            return
        try:
            renewed = await store.lock(name, owner=owner, ttl=lease)
        except StoreUnavailable:
            continue  # the lease still runs; lost() turns true when it ends
        if not renewed:
            held.broken = True
            return
        held.until = asked + lease
