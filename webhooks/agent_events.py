"""``POST /api/agent-events``: hook decisions from agents, into the central audit log.

``gate hook`` forwards each decision it made (allow, ask, deny) with a bearer token
issued by ``gate agent-token create``; the service checks the token (stored hashed, see
:mod:`webhooks.agent_tokens`) and appends one ``agent_action`` entry per event to the
same signed, hash-chained log its PR decisions go to, so ``gate audit --agent`` shows
both. The agent name is the one the token was issued for, not what the event claims.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gate.auditlog import parse_time
from webhooks import agent_tokens
from webhooks.service import Service

MAX_EVENTS = 500
MAX_BODY = 4 * 1024 * 1024
_DECISIONS = frozenset({"allow", "ask", "deny"})
_TEXT_FIELDS = (
    "session", "event", "tool", "action", "repo", "cwd", "rule", "source", "reason",
    "tier", "command", "base_ref", "base_sha", "policy_blob",
)  # fmt: skip
_TEXT_LIMIT = 4000


def _event_fields(event: object, agent: str, token: str) -> dict[str, object]:
    """The entry fields of one event; raises ``ValueError`` when it is not one."""
    if not isinstance(event, dict):
        raise ValueError("an event is not an object")
    decision = event.get("decision")
    if decision not in _DECISIONS:
        raise ValueError("decision must be allow, ask or deny")
    fields: dict[str, object] = {
        "agent": True,
        "author": agent,
        "decision": decision,
        "forwarded": True,
        "token_id": token[:12],
    }
    claimed = event.get("author")
    if isinstance(claimed, str) and claimed != agent:
        fields["claimed_agent"] = claimed[:100]
    for name in _TEXT_FIELDS:
        value = event.get(name)
        if isinstance(value, str):
            fields[name] = value[:_TEXT_LIMIT]
    paths = event.get("paths")
    if isinstance(paths, list):
        fields["paths"] = [str(p)[:_TEXT_LIMIT] for p in paths[:100]]
    when = event.get("time")
    if isinstance(when, str):
        parse_time(when)  # raises ValueError when malformed
        fields["reported_time"] = when
    seq = event.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        fields["local_seq"] = seq
    return fields


def routes(service: Service) -> list[Route]:
    async def agent_events(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        record = (
            await agent_tokens.authenticate(service.store, token.strip())
            if scheme.lower() == "bearer"
            else None
        )
        if record is None:
            return JSONResponse({"message": "a valid agent token is required"}, status_code=401)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"message": "request too large"}, status_code=413)
        try:
            data = json.loads(body)
            events = data["events"] if isinstance(data, dict) else None
            if not isinstance(events, list) or len(events) > MAX_EVENTS:
                raise ValueError(f"'events' must be a list of at most {MAX_EVENTS}")
            entries = [_event_fields(e, record.agent, record.id) for e in events]
        except (ValueError, KeyError) as error:
            return JSONResponse({"message": str(error)}, status_code=400)
        now = service.clock()
        seqs = [
            (await service.audit.append("agent_action", fields, time=now))[0] for fields in entries
        ]
        return JSONResponse({"appended": len(seqs), "seqs": seqs})

    return [Route("/api/agent-events", agent_events, methods=["POST"])]
