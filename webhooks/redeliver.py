"""Missed-delivery recovery: GitHub never redelivers by itself.

Lists the App's webhook deliveries (kept by GitHub for 3 days) and asks for a
redelivery of each GUID that has no successful attempt in the window.
- https://docs.github.com/rest/apps/webhooks#list-deliveries-for-an-app-webhook
- https://docs.github.com/rest/apps/webhooks#redeliver-a-delivery-for-an-app-webhook
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from webhooks.github import GitHubApp, GitHubError

log = logging.getLogger("merge_gate.redeliver")
MAX_PAGES = 50


@dataclass
class Report:
    seen: int = 0
    failed_guids: list[str] = field(default_factory=list)
    redelivered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _when(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(item["delivered_at"]).replace("Z", "+00:00"))


def _cursor(link: str) -> str | None:
    for part in link.split(","):
        if 'rel="next"' in part:
            url = part.split(";")[0].strip().strip("<>")
            for pair in url.split("?", 1)[-1].split("&"):
                key, _, value = pair.partition("=")
                if key == "cursor":
                    return value
    return None


async def redeliver(
    gh: GitHubApp, *, since: timedelta, now: datetime, dry_run: bool = False
) -> Report:
    report = Report()
    attempts: dict[str, list[dict[str, Any]]] = {}
    cursor: str | None = None
    oldest = now - since
    for _ in range(MAX_PAGES):
        params: dict[str, Any] = {"per_page": 100}
        if cursor:
            params["cursor"] = cursor
        answer = await gh.call(
            "GET",
            "/app/hook/deliveries",
            installation_id=None,
            params=params,
            route="GET /app/hook/deliveries",
        )
        items = [i for i in answer.data or [] if isinstance(i, dict)]
        report.seen += len(items)
        for item in items:
            if _when(item) >= oldest:
                attempts.setdefault(str(item["guid"]), []).append(item)
        cursor = _cursor(answer.headers.get("link", ""))
        if not cursor or not items or min(_when(i) for i in items) < oldest:
            break
    for guid, tries in sorted(attempts.items()):
        if any(200 <= int(t.get("status_code", 0)) < 300 for t in tries):
            continue
        report.failed_guids.append(guid)
        latest = max(tries, key=_when)
        if dry_run:
            continue
        try:
            await gh.call(
                "POST",
                f"/app/hook/deliveries/{latest['id']}/attempts",
                installation_id=None,
                route="POST /app/hook/deliveries/{id}/attempts",
            )
        except GitHubError as error:
            report.errors.append(f"{guid}: {error}")
            continue
        report.redelivered.append(guid)
        log.info("redelivery requested", extra={"delivery": guid})
    return report


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``3d`` -> timedelta."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"a duration looks like 90m, 24h or 3d, not {text!r}")
    return timedelta(**{units[text[-1]]: int(text[:-1])})
