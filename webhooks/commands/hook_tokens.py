"""``gate agent-token create --agent NAME`` / ``gate agent-token revoke ID``.

Run beside the service (same ``GATE_DATA_DIR``, or ``GATE_REDIS_URL`` and
``GATE_REDIS_PREFIX``): the token goes into the service's store, hashed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from gate.agents.protocols import AGENTS


async def _with_store(args: argparse.Namespace) -> int:
    from webhooks import agent_tokens
    from webhooks.keys import data_dir_from_env
    from webhooks.store import open_store

    data_dir = Path(args.data_dir) if args.data_dir else data_dir_from_env()
    store = await open_store(
        data_dir=data_dir,
        redis_url=os.environ.get("GATE_REDIS_URL") or None,
        prefix=os.environ.get("GATE_REDIS_PREFIX", "merge-gate"),
    )
    try:
        if args.subcommand == "create":
            token, record = await agent_tokens.issue(store, agent=args.agent, now=datetime.now(UTC))
            print(f"token: {token}")
            print(f"id:    {record.id}")
            print("Give the token to the hook as GATE_AGENT_TOKEN; it is not shown again.")
            return 0
        revoked = await agent_tokens.revoke(store, args.id)
        if revoked is None:
            print(f"gate agent-token: no token {args.id!r}", file=sys.stderr)
            return 1
        print(f"revoked {revoked.id} ({revoked.agent})")
        return 0
    finally:
        await store.close()


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_with_store(args))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "agent-token", help="issue or revoke tokens hooks use to forward their events"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="the service's data dir")
    sub = parser.add_subparsers(dest="subcommand", required=True, metavar="create|revoke")
    create = sub.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--agent", required=True, choices=sorted(AGENTS))
    create.set_defaults(func=run)
    revoke = sub.add_parser("revoke", help="revoke a token by id or by the token")
    revoke.add_argument("id", metavar="ID|TOKEN")
    revoke.set_defaults(func=run)
