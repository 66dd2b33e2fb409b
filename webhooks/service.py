"""Everything the receiver and the workers share, wired once from settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from gate.detectors import builtin
from gate.detectors.base import Detector
from webhooks.audit_store import AuditLog, default_origin, open_audit_log
from webhooks.github import GitHubApp
from webhooks.keys import KeyRing, load_keyring
from webhooks.metrics import Metrics
from webhooks.reader import ConfigReader, PermissionReader, TeamReader
from webhooks.settings import Settings
from webhooks.store import Store, open_store
from webhooks.supplychain import ScanUrls


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Service:
    settings: Settings
    store: Store
    gh: GitHubApp
    keyring: KeyRing
    audit: AuditLog
    metrics: Metrics
    configs: ConfigReader
    teams: TeamReader
    access: PermissionReader
    detectors: dict[str, Detector]
    scan_urls: ScanUrls = field(default_factory=ScanUrls)
    clock: Callable[[], datetime] = utcnow
    wall: Callable[[], float] = time.time
    #: Set by the receiver after an accept, so workers in the same process start at
    #: once instead of at their next poll (workers elsewhere poll the store).
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        await self.audit.close(self.clock())
        await self.store.close()
        await self.gh.close()


async def build(
    settings: Settings,
    *,
    scan_urls: ScanUrls | None = None,
    github_transport: httpx.AsyncBaseTransport | None = None,
) -> Service:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    gh = GitHubApp(
        app_id=settings.app_id,
        private_key=settings.app_key_pem(),
        base_url=settings.github_api_url,
        on_call=metrics.github_call,
        on_graphql=metrics.github_graphql,
        transport=github_transport,
        rate_limit_reserve=settings.rate_limit_reserve,
    )
    keyring = load_keyring(data_dir=settings.data_dir, key_file=settings.signing_key_file)
    store = await open_store(
        data_dir=settings.data_dir,
        redis_url=settings.redis,
        prefix=settings.redis_prefix,
        debounce_seconds=settings.debounce_seconds,
        max_delay=settings.debounce_max_seconds,
    )
    audit = await open_audit_log(
        data_dir=settings.data_dir,
        keyring=keyring,
        origin=default_origin(app_id=settings.app_id),
        redis_url=settings.redis,
        redis_prefix=f"{settings.redis_prefix}:audit",
    )
    return Service(
        settings=settings,
        store=store,
        gh=gh,
        keyring=keyring,
        audit=audit,
        metrics=metrics,
        configs=ConfigReader(gh),
        teams=TeamReader(gh),
        access=PermissionReader(gh),
        detectors=builtin(),
        scan_urls=scan_urls
        or ScanUrls(osv_querybatch=settings.osv_url, pypi=settings.pypi_url, npm=settings.npm_url),
    )
