"""``gate redeliver --since DURATION``: redeliver deliveries that never succeeded."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("redeliver", help="redeliver failed webhook deliveries")
    parser.add_argument(
        "--since", default="24h", help="how far back (GitHub keeps 3 days): 90m, 24h, 3d"
    )
    parser.add_argument("--dry-run", action="store_true", help="list, do not redeliver")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from webhooks.github import GitHubApp, GitHubError
    from webhooks.redeliver import parse_duration, redeliver
    from webhooks.settings import SettingsError, load

    try:
        since = parse_duration(args.since)
        settings = load(os.environ)
    except (ValueError, SettingsError) as error:
        print(f"gate: error: {error}", file=sys.stderr)
        return 2
    gh = GitHubApp(
        app_id=settings.app_id, private_key=settings.app_key_pem(), base_url=settings.github_api_url
    )
    try:
        report = asyncio.run(
            redeliver(gh, since=since, now=datetime.now(UTC), dry_run=args.dry_run)
        )
    except GitHubError as error:
        print(f"gate: error: {error}", file=sys.stderr)
        return 1
    verb = "would redeliver" if args.dry_run else "redelivered"
    print(
        f"{report.seen} deliveries listed; {len(report.failed_guids)} never succeeded; "
        f"{verb} {len(report.redelivered) if not args.dry_run else len(report.failed_guids)}"
    )
    for guid in report.failed_guids:
        print(f"  {guid}")
    for problem in report.errors:
        print(f"  error: {problem}", file=sys.stderr)
    return 1 if report.errors else 0
