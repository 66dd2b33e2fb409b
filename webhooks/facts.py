"""Facts from GitHub: :class:`gate.decide.Facts` for one pull request.

The pull request object comes from the caller (it listed the pull requests of a
head sha, so reading it again would cost a call); files, reviews and commits,
the base's configuration, teams, file texts and the supply-chain scan are read
here. Nothing in this module writes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from gate.decide import Config
from gate.delegation import trailers
from gate.detectors.manifests import Package
from gate.engine import Needs
from gate.model import (
    Confirmation,
    Contents,
    OverrideRequest,
    PullSnapshot,
    ScanResult,
    ScanStatus,
    Teams,
)
from webhooks.events import (
    CLEAR_SECRET,
    CONFIRM_ROLLOUT,
    OverrideRequested,
    PullChanged,
    RolloutConfirmed,
)
from webhooks.reader import Lists, read_contents, read_snapshot
from webhooks.service import Service
from webhooks.supplychain import scan_packages

#: A check run's button (its ``requested_action`` identifier) -> the gate it confirms.
BUTTONS = {CONFIRM_ROLLOUT: "staged_rollout", CLEAR_SECRET: "secret_cleared"}
_CONFIRMATIONS_TTL = 90 * 24 * 3600


class ScanCache:
    """Scan results by (head sha, packages): a head's packages never change.

    "Unavailable" is not an answer and is never kept: the next evaluation asks again.
    """

    def __init__(self, *, size: int = 1024) -> None:
        self._results: OrderedDict[tuple[str, tuple[str, ...]], ScanResult] = OrderedDict()
        self._size = size

    async def scan(
        self, service: Service, *, packages: Sequence[Package], head_sha: str
    ) -> ScanResult:
        key = (head_sha, tuple(sorted(f"{p.ecosystem}:{p.name}:{p.spec}" for p in packages)))
        if key in self._results:
            return self._results[key]
        async with httpx.AsyncClient() as client:
            result = await scan_packages(
                packages=packages,
                head_sha=head_sha,
                client=client,
                urls=service.scan_urls,
                now=service.clock(),
            )
        if result.status is not ScanStatus.UNAVAILABLE:
            self._results[key] = result
            if len(self._results) > self._size:
                self._results.popitem(last=False)
        return result


async def record_confirmation(service: Service, intent: RolloutConfirmed) -> None:
    """Remember a check-run button press (*Confirm rollout*, *Not a secret*) for its head.

    Whether it counts is the engine's question, asked at every evaluation: who
    pressed it, on which head, and whether they qualify.
    """
    gate = BUTTONS.get(intent.identifier)
    if gate is None:
        return
    key = f"{intent.repo}@{intent.head_sha}"
    known: list[dict[str, str]] = json.loads((await service.store.get("confirm", key)) or b"[]")
    if any(entry["user"] == intent.user and entry["gate"] == gate for entry in known):
        return
    known.append(
        {
            "gate": gate,
            "user": intent.user,
            "head_sha": intent.head_sha,
            "at": service.clock().isoformat(),
        }
    )
    await service.store.put("confirm", key, json.dumps(known).encode(), ttl=_CONFIRMATIONS_TTL)


async def record_pusher(service: Service, intent: PullChanged) -> None:
    """Whoever pushed a new head is an author of the pull request, durably.

    GitHub has no API naming who pushed; the ``synchronize`` delivery's sender
    did, so a human who pushes an agent's commits can no longer approve them.
    """
    if not intent.sender:
        return
    key = f"{intent.repo}#{intent.number}"
    known: list[str] = json.loads((await service.store.get("pushers", key)) or b"[]")
    if intent.sender.lower() in (k.lower() for k in known):
        return
    known.append(intent.sender)
    await service.store.put("pushers", key, json.dumps(known).encode(), ttl=_CONFIRMATIONS_TTL)


async def pushers(service: Service, *, repo: str, number: int) -> frozenset[str]:
    known: list[str] = json.loads((await service.store.get("pushers", f"{repo}#{number}")) or b"[]")
    return frozenset(known)


async def confirmations(service: Service, *, repo: str, head: str) -> tuple[Confirmation, ...]:
    known = json.loads((await service.store.get("confirm", f"{repo}@{head}")) or b"[]")
    return tuple(Confirmation(**entry) for entry in known)


async def record_override(service: Service, intent: OverrideRequested, *, head_sha: str) -> None:
    """Remember an override request for the head it was made on (break-glass).

    Whether it counts is :mod:`gate.override`'s question, asked at every evaluation
    from the base branch's policy; a new head needs a new override.
    """
    key = f"{intent.repo}#{intent.number}"
    known: list[dict[str, object]] = json.loads((await service.store.get("override", key)) or b"[]")
    if any(entry.get("comment_id") == intent.comment_id for entry in known if intent.comment_id):
        return
    known.append(
        {
            "user": intent.user,
            "reason": intent.reason,
            "head_sha": head_sha,
            "at": service.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "comment_id": intent.comment_id,
        }
    )
    await service.store.put(
        "override", key, json.dumps(known[-20:]).encode(), ttl=_CONFIRMATIONS_TTL
    )


async def overrides(service: Service, *, repo: str, number: int) -> tuple[OverrideRequest, ...]:
    known = json.loads((await service.store.get("override", f"{repo}#{number}")) or b"[]")
    return tuple(OverrideRequest(**entry) for entry in known)


class GitHubFacts:
    """Everything :func:`gate.decide.decide` reads about one open pull request."""

    def __init__(
        self,
        service: Service,
        *,
        installation_id: int,
        repo: str,
        pull: Mapping[str, Any],
        scans: ScanCache | None,
        snapshot: PullSnapshot | None = None,
        lists: Lists | None = None,
    ) -> None:
        """``snapshot``: facts already known (a merge group's combined diff); then
        nothing about the pull request is read and nothing is scanned (its pull
        requests were scanned on their own heads)."""
        self._svc = service
        self._installation = installation_id
        self._repo = repo
        self._pull = pull
        self._scans = scans
        self._snapshot = snapshot
        self._lists = lists

    async def pull(self) -> PullSnapshot:
        if self._snapshot is not None:
            return self._snapshot
        snapshot = await read_snapshot(
            self._svc.gh,
            installation_id=self._installation,
            repo=self._repo,
            pull=self._pull,
            lists=self._lists,
        )
        confirmed, pushed, overridden = await asyncio.gather(
            confirmations(self._svc, repo=self._repo, head=snapshot.head_sha),
            pushers(self._svc, repo=self._repo, number=snapshot.number),
            overrides(self._svc, repo=self._repo, number=snapshot.number),
        )
        body = self._pull.get("body")
        assignees = self._pull.get("assignees") or []
        return dataclasses.replace(
            snapshot,
            confirmations=confirmed,
            pushers=snapshot.pushers | pushed,
            overrides=tuple(o for o in overridden if o.head_sha == snapshot.head_sha),
            # The description's trailers (a coding agent's session and logs) and
            # assignees (who handed the work over), for gate.delegation.
            trailers=(*snapshot.trailers, *trailers(body if isinstance(body, str) else "")),
            assignees=frozenset(
                str(a["login"]) for a in assignees if isinstance(a, Mapping) and a.get("login")
            ),
        )

    async def config(self, *, base_sha: str) -> Config:
        return await self._svc.configs.read(
            installation_id=self._installation, repo=self._repo, sha=base_sha
        )

    async def inputs(self, *, needs: Needs, pull: PullSnapshot) -> tuple[Teams, Contents]:
        teams, writers, admins, contents = await asyncio.gather(
            self._svc.teams.read(installation_id=self._installation, teams=needs.teams),
            self._svc.access.writers(
                installation_id=self._installation, repo=self._repo, logins=needs.writers
            ),
            self._admins(needs),
            read_contents(
                self._svc.gh,
                installation_id=self._installation,
                repo=self._repo,
                wanted=needs.contents,
                base_sha=pull.base_sha,
                head_sha=pull.head_sha,
            ),
        )
        return dataclasses.replace(teams, writers=writers, admins=admins), contents

    async def _admins(self, needs: Needs) -> frozenset[str]:
        if not needs.admins:
            return frozenset()
        return await self._svc.access.admins(installation_id=self._installation, repo=self._repo)

    async def scan(self, *, packages: Sequence[Package], head_sha: str) -> ScanResult | None:
        if self._scans is None:
            return None
        return await self._scans.scan(self._svc, packages=packages, head_sha=head_sha)
