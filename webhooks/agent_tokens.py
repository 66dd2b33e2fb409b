"""Agent tokens: what a ``gate hook`` presents to forward its events to the service.

A token is 32 random bytes (``secrets.token_urlsafe``) prefixed ``mga_`` so scanners can
recognise it; the service stores only its SHA-256 (hex) in the service's ``Store``
(namespace ``agent-token``), with the agent name it was issued for and whether it was
revoked. A stolen database therefore yields no usable token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from webhooks.store import Store

NAMESPACE = "agent-token"
PREFIX = "mga_"


def token_id(token: str) -> str:
    """The stored key of a token: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AgentToken:
    id: str
    agent: str
    created: str
    revoked: bool = False

    def dump(self) -> bytes:
        return json.dumps(
            {"agent": self.agent, "created": self.created, "revoked": self.revoked}
        ).encode()


async def issue(store: Store, *, agent: str, now: datetime) -> tuple[str, AgentToken]:
    """A new token for ``agent``: (the token, shown once; its stored record)."""
    token = PREFIX + secrets.token_urlsafe(32)
    record = AgentToken(id=token_id(token), agent=agent, created=now.isoformat())
    await store.put(NAMESPACE, record.id, record.dump())
    return token, record


async def lookup(store: Store, ident: str) -> AgentToken | None:
    raw = await store.get(NAMESPACE, ident)
    if raw is None:
        return None
    data = json.loads(raw)
    return AgentToken(
        id=ident,
        agent=str(data["agent"]),
        created=str(data["created"]),
        revoked=bool(data.get("revoked")),
    )


async def authenticate(store: Store, token: str) -> AgentToken | None:
    """The live record of ``token``; None when unknown or revoked."""
    if not token.startswith(PREFIX):
        return None
    found = await lookup(store, token_id(token))
    return found if found is not None and not found.revoked else None


async def revoke(store: Store, ident_or_token: str) -> AgentToken | None:
    """Revoke by id (hex SHA-256) or by the token itself; None when unknown."""
    ident = token_id(ident_or_token) if ident_or_token.startswith(PREFIX) else ident_or_token
    found = await lookup(store, ident)
    if found is None:
        return None
    revoked = AgentToken(id=found.id, agent=found.agent, created=found.created, revoked=True)
    await store.put(NAMESPACE, ident, revoked.dump())
    return revoked
