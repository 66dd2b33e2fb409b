"""Signed decision records, and the typed document each published decision is kept as.

The predicate and the statement are pure (:mod:`gate.statement`, next to
``verify_record``); this module adds the key and the edge's facts (time,
delivery, app and installation ids).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate.result import Decision, decision_from_dict
from gate.statement import decision_statement, predicate, record_digest, sign_decision
from webhooks.keys import KeyRing


@dataclass(frozen=True, slots=True)
class Record:
    envelope: Mapping[str, object]
    digest: str

    def fenced(self) -> str:
        """The envelope as a fenced ``json`` block for the check run's ``output.text``."""
        body = json.dumps(self.envelope, indent=2, sort_keys=True)
        return (
            "Signed decision record (DSSE envelope, in-toto Statement v1). "
            "Verify with `gate verify --jwks <public-url>/.well-known/jwks.json`.\n\n"
            f"```json\n{body}\n```\n"
        )

    def text(self, *, details_url: str, limit: int) -> str:
        """``output.text``: the whole envelope when it fits, never a cut one.

        A record too large for the check run (65535 characters) is named by its
        digest and served whole at ``{details_url}/record``.
        """
        fenced = self.fenced()
        if len(fenced) <= limit:
            return fenced
        return (
            f"Signed decision record {self.digest} (DSSE envelope, in-toto Statement v1) is "
            f"too large for a check run. Download it from {details_url}/record and verify "
            f"with `gate verify {details_url}/record --jwks <public-url>/.well-known/jwks.json`."
        )


def sign(
    decision: Decision,
    *,
    keyring: KeyRing,
    evaluated_at: datetime,
    delivery_id: str,
    app_id: int,
    installation_id: int,
) -> Record:
    statement = decision_statement(
        decision,
        predicate=predicate(
            decision,
            evaluated_at=evaluated_at,
            delivery_id=delivery_id,
            app_id=app_id,
            installation_id=installation_id,
        ),
    )
    envelope = sign_decision(
        statement=statement, private_key=keyring.active.private_key, keyid=keyring.active.kid
    )
    return Record(envelope=envelope, digest=record_digest(envelope))


def new_id() -> str:
    """A details-page id: 128 random bits, so a page cannot be found by guessing."""
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A published decision as the store keeps it (namespace ``decision``)."""

    decision: Decision
    envelope: Mapping[str, object]
    digest: str
    at: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "decision": self.decision.to_dict(),
                "envelope": self.envelope,
                "digest": self.digest,
                "at": self.at,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> StoredDecision:
        raw: dict[str, Any] = json.loads(data)
        return cls(
            decision=decision_from_dict(raw["decision"]),
            envelope=raw["envelope"],
            digest=str(raw["digest"]),
            at=str(raw["at"]),
        )
