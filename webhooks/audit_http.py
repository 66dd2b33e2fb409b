"""The audit log over HTTP: latest checkpoint, inclusion and consistency proofs.

Proofs follow RFC 9162 section 2.1; hashes are base64 as in checkpoints.
Reading never writes: the latest checkpoint is the last one written to the sink.
These endpoints are public, so they serve hashes and proofs only, never an
entry (entries name private repositories, files and people): whoever holds an
entry (from ``gate audit``) checks it against the leaf hash and the proof.
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from gate.merkle import leaf_hash
from webhooks.audit_store import AuditLogError
from webhooks.service import Service


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else None


def routes(service: Service) -> list[Route]:
    audit = service.audit

    async def checkpoint(request: Request) -> Response:
        cp = await audit.latest_checkpoint()
        if cp is None:
            return JSONResponse({"message": "no checkpoint yet"}, status_code=404)
        return PlainTextResponse(cp.note(), headers={"Cache-Control": "no-cache"})

    async def inclusion(request: Request) -> Response:
        seq, size = _int(request, "seq"), _int(request, "size")
        if seq is None or size is None:
            return JSONResponse({"message": "seq and size are required integers"}, status_code=400)
        try:
            proof = await audit.inclusion_proof(seq, size)
            entry = (await audit.entries(seq, seq + 1))[0]
        except (AuditLogError, ValueError, IndexError) as error:
            return JSONResponse({"message": str(error)}, status_code=400)
        return JSONResponse(
            {
                "seq": seq,
                "tree_size": size,
                "leaf_hash": base64.b64encode(leaf_hash(entry)).decode(),
                "proof": [base64.b64encode(h).decode() for h in proof],
            }
        )

    async def consistency(request: Request) -> Response:
        old, new = _int(request, "old"), _int(request, "new")
        if old is None or new is None:
            return JSONResponse({"message": "old and new are required integers"}, status_code=400)
        try:
            proof = await audit.consistency_proof(old, new)
        except (AuditLogError, ValueError) as error:
            return JSONResponse({"message": str(error)}, status_code=400)
        return JSONResponse(
            {"old": old, "new": new, "proof": [base64.b64encode(h).decode() for h in proof]}
        )

    return [
        Route("/audit/checkpoint", checkpoint, methods=["GET"]),
        Route("/audit/inclusion", inclusion, methods=["GET"]),
        Route("/audit/consistency", consistency, methods=["GET"]),
    ]
