"""Signed decision records: the predicate of merge-gate's in-toto statement.

The predicate is built from the same decision tree the check run renders, plus
the facts only the edge knows (time, delivery, app and installation ids).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gate import __version__
from gate.result import Decision
from gate.statement import build_statement, record_digest, sign_decision
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


def predicate(
    decision: Decision,
    *,
    evaluated_at: datetime,
    delivery_id: str,
    app_id: int,
    installation_id: int,
) -> dict[str, Any]:
    tree = decision.to_dict()
    return {
        "policy": {
            "path": decision.policy.path if decision.policy else None,
            "blob": decision.policy.blob if decision.policy else None,
            "digest": decision.policy.digest if decision.policy else None,
            "codeowners": decision.codeowners.path if decision.codeowners else None,
            "codeownersBlob": decision.codeowners.blob if decision.codeowners else None,
            "baseSha": decision.base_sha,
        },
        "conclusion": decision.outcome.value,
        "tier": decision.tier,
        "governance": {
            "governed": decision.governed,
            "agent": decision.agent,
            "author": decision.author,
            "reason": decision.governance,
        },
        "files": [
            {
                "path": f["path"],
                "previousPath": f["previous_path"],
                "tier": f["tier"],
                "denied": f["denied"],
                "reasons": f["reasons"],
                "findings": f["findings"],
            }
            for f in tree["files"]
        ],
        "requirements": [
            {
                "id": r["id"],
                "kind": r["kind"],
                "satisfied": r["satisfied"],
                "owners": r["owners"],
                "paths": r["paths"],
                "satisfiedBy": r["satisfied_by"],
                "explanation": r["explanation"],
            }
            for r in tree["requirements"]
        ],
        "evaluatedAt": evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deliveryId": delivery_id,
        "appId": app_id,
        "installationId": installation_id,
        "version": __version__,
    }


def sign(
    decision: Decision,
    *,
    keyring: KeyRing,
    evaluated_at: datetime,
    delivery_id: str,
    app_id: int,
    installation_id: int,
) -> Record:
    statement = build_statement(
        repo=decision.repo,
        number=decision.number,
        head_sha=decision.head_sha,
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
