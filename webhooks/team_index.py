"""Which open pull requests' decisions depended on a team: redone when it changes.

A ``membership`` ``removed`` must be able to turn a green check red, so each
published decision records, per team its requirements named, the pull request
and the head it was decided on. The index is bounded (the newest entries are
kept) and guarded by the store's lock, since workers update it concurrently.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from gate.result import Decision
from webhooks.store import Store

_NAMESPACE = "team-pulls"
_MAX_ENTRIES = 500
_TTL = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Entry:
    repo: str
    number: int
    head_sha: str


async def _locked(store: Store, name: str, owner: str) -> None:
    for _ in range(100):
        if await store.lock(name, owner=owner, ttl=5.0):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{name} stayed locked")


async def add(store: Store, *, team: str, pull: Decision, owner: str) -> None:
    name = f"team-index:{team}"
    await _locked(store, name, owner)
    try:
        known: dict[str, dict[str, object]] = json.loads(
            (await store.get(_NAMESPACE, team)) or b"{}"
        )
        key = f"{pull.repo}#{pull.number}"
        known.pop(key, None)
        known[key] = {"repo": pull.repo, "number": pull.number, "head_sha": pull.head_sha}
        kept = dict(list(known.items())[-_MAX_ENTRIES:])
        await store.put(_NAMESPACE, team, json.dumps(kept).encode(), ttl=_TTL)
    finally:
        await store.unlock(name, owner=owner)


async def entries(store: Store, *, team: str) -> list[Entry]:
    known: dict[str, dict[str, object]] = json.loads((await store.get(_NAMESPACE, team)) or b"{}")
    return [
        Entry(repo=str(v["repo"]), number=int(str(v["number"])), head_sha=str(v["head_sha"]))
        for v in known.values()
    ]
