"""Durable store and work queue: SQLite on one host, Redis for several.

See :mod:`webhooks.store.base` for the contract both implementations keep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from webhooks.store.base import (
    DEBOUNCE_MAX_DELAY,
    DEBOUNCE_SECONDS,
    DEDUPE_SECONDS,
    DeadLetter,
    Delivery,
    Job,
    Store,
    StoreUnavailable,
    group_of,
)

__all__ = [
    "DEBOUNCE_MAX_DELAY",
    "DEBOUNCE_SECONDS",
    "DEDUPE_SECONDS",
    "DeadLetter",
    "Delivery",
    "Job",
    "Store",
    "StoreUnavailable",
    "group_of",
    "open_store",
]


async def open_store(
    *,
    data_dir: Path,
    redis_url: str | None,
    prefix: str = "merge-gate",
    clock: Callable[[], float] = time.time,
    debounce_seconds: float = 0.0,
    max_delay: float = DEBOUNCE_MAX_DELAY,
) -> Store:
    """Redis at ``redis_url`` when given, else SQLite in ``data_dir / "queue.sqlite3"``.

    SQLite is opened (directory and schema created) here and raises
    :class:`StoreUnavailable` if it cannot be; Redis connects lazily, so a
    service can start while Redis is down and answer 503 until it is back.

    ``debounce_seconds`` (0: off, the default here; the service passes
    ``GATE_DEBOUNCE_SECONDS``, default :data:`DEBOUNCE_SECONDS`) and ``max_delay``
    shape when a key becomes ready; ``clock`` is the queue's time (tests pass a
    fake one to step through leases and delays without sleeping).
    """
    if debounce_seconds < 0 or max_delay < 0:
        raise ValueError("debounce_seconds and max_delay must not be negative")
    if redis_url:
        from webhooks.store.redis import RedisStore

        return RedisStore.open(
            redis_url,
            prefix=prefix,
            clock=clock,
            debounce_seconds=debounce_seconds,
            max_delay=max_delay,
        )
    from webhooks.store.sqlite import SqliteStore

    return await SqliteStore.open(
        Path(data_dir) / "queue.sqlite3",
        clock=clock,
        debounce_seconds=debounce_seconds,
        max_delay=max_delay,
    )
