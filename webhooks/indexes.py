"""Small bounded indexes the service keeps in its store, beside the queue.

- Which open pull requests' decisions depended on a team (``team-pulls``): a
  ``membership`` ``removed`` must be able to turn a green check red, so each
  published decision records, per team its requirements named, the pull request
  and the head it was decided on.
- Which pull requests were delivered at a head (``head-pulls``): GitHub's
  commit → pull requests look-up may not name pull requests from forks, so every
  ``pull_request`` delivery records its (number, head), and a head's decision
  also covers those (a blocked fork PR cannot be left out of its commit's tree).

Each index keeps its newest entries and is guarded by the store's lock, since
workers update it concurrently.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from gate.result import Decision
from webhooks.store import Store

_MAX_ENTRIES = 500
_TTL = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Entry:
    repo: str
    number: int
    head_sha: str


async def _add(store: Store, namespace: str, key: str, entry: Entry, *, owner: str) -> None:
    name = f"{namespace}:{key}"
    for _ in range(100):
        if await store.lock(name, owner=owner, ttl=5.0):
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError(f"{name} stayed locked")
    try:
        known: dict[str, dict[str, object]] = json.loads((await store.get(namespace, key)) or b"{}")
        item = f"{entry.repo}#{entry.number}"
        known.pop(item, None)
        known[item] = {"repo": entry.repo, "number": entry.number, "head_sha": entry.head_sha}
        kept = dict(list(known.items())[-_MAX_ENTRIES:])
        await store.put(namespace, key, json.dumps(kept).encode(), ttl=_TTL)
    finally:
        await store.unlock(name, owner=owner)


async def _entries(store: Store, namespace: str, key: str) -> list[Entry]:
    known: dict[str, dict[str, object]] = json.loads((await store.get(namespace, key)) or b"{}")
    return [
        Entry(repo=str(v["repo"]), number=int(str(v["number"])), head_sha=str(v["head_sha"]))
        for v in known.values()
    ]


async def add_team_pull(store: Store, *, team: str, pull: Decision, owner: str) -> None:
    entry = Entry(pull.repo, pull.number, pull.head_sha)
    await _add(store, "team-pulls", team, entry, owner=owner)


async def team_pulls(store: Store, *, team: str) -> list[Entry]:
    return await _entries(store, "team-pulls", team)


async def add_head_pull(store: Store, *, repo: str, number: int, head: str, owner: str) -> None:
    await _add(store, "head-pulls", f"{repo}@{head}", Entry(repo, number, head), owner=owner)


async def head_pulls(store: Store, *, repo: str, head: str) -> list[int]:
    return [e.number for e in await _entries(store, "head-pulls", f"{repo}@{head}")]
