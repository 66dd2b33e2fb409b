"""Durable store and work queue: SQLite on one host, Redis for several.

See :mod:`webhooks.store.base` for the contract both implementations keep.
"""

from __future__ import annotations

from pathlib import Path

from webhooks.store.base import (
    DEDUPE_SECONDS,
    DeadLetter,
    Delivery,
    Job,
    Store,
    StoreUnavailable,
)

__all__ = [
    "DEDUPE_SECONDS",
    "DeadLetter",
    "Delivery",
    "Job",
    "Store",
    "StoreUnavailable",
    "open_store",
]


async def open_store(*, data_dir: Path, redis_url: str | None, prefix: str = "merge-gate") -> Store:
    """Redis at ``redis_url`` when given, else SQLite in ``data_dir / "queue.sqlite3"``.

    SQLite is opened (directory and schema created) here and raises
    :class:`StoreUnavailable` if it cannot be; Redis connects lazily, so a
    service can start while Redis is down and answer 503 until it is back.
    """
    if redis_url:
        from webhooks.store.redis import RedisStore

        return RedisStore.open(redis_url, prefix=prefix)
    from webhooks.store.sqlite import SqliteStore

    return await SqliteStore.open(Path(data_dir) / "queue.sqlite3")
