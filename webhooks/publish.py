"""Publishing a decision: everything merge-gate writes, driven only by a ``Decision``.

Sign it, keep the signed record, write the commit's ``merge-gate`` check run,
ask the reviewers each pull request needs, and append the audit entries. The
same path publishes a pull request's, a commit's, a merge group's and a failed
job's decision, so each is signed and has a real details page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from gate import audit_entries, render
from gate.owners import Owner
from gate.result import Decision, DecisionKind, Outcome
from webhooks import checks, records, team_index
from webhooks.service import Service

log = logging.getLogger("merge_gate.publish")

_DECISION_TTL = 180 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Published:
    decision_id: str
    digest: str
    run_id: int
    requested: tuple[int, ...]


def _to_ask(decision: Decision) -> list[Decision]:
    """The pull requests to request reviewers on: open requirements, not denied, not drafts."""
    if decision.outcome is Outcome.DENIED or decision.kind is DecisionKind.MERGE_GROUP:
        return []
    return [
        p
        for p in decision.pulls
        if p.number
        and not p.draft
        and p.outcome is Outcome.NEEDS_APPROVAL
        and (p.request_users or p.request_teams)
    ]


class Publisher:
    def __init__(self, service: Service) -> None:
        self._svc = service

    async def publish(
        self, decision: Decision, *, installation_id: int, delivery_id: str, redo: bool = False
    ) -> Published:
        svc = self._svc
        now = svc.clock()
        record = records.sign(
            decision,
            keyring=svc.keyring,
            evaluated_at=now,
            delivery_id=delivery_id,
            app_id=svc.settings.app_id,
            installation_id=installation_id,
        )
        decision_id = records.new_id()
        stored = records.StoredDecision(
            decision=decision, envelope=record.envelope, digest=record.digest, at=now.isoformat()
        )
        await svc.store.put("decision", decision_id, stored.to_json(), ttl=_DECISION_TTL)
        details_url = f"{svc.settings.public_url}/decisions/{decision_id}"
        body, more = checks.check_run_output(
            decision,
            details_url=details_url,
            text=record.fenced(),
            annotations=render.annotate(decision, raw_details=record.digest),
        )
        # The review requests and the check-run write go out together (one round
        # trip); a refused request is noted on the check run afterwards.
        asking = _to_ask(decision)
        writing = checks.publish(
            svc.gh,
            svc.store,
            installation_id=installation_id,
            repo=decision.repo,
            head_sha=decision.head_sha,
            body=body,
            more_annotations=more,
            look_up=redo,
        )
        run_id, notes = await asyncio.gather(writing, self._ask(asking, installation_id))
        refused = [f"#{p.number}: {n}" for p, n in zip(asking, notes, strict=True) if n]
        if refused:
            await checks.add_note(
                svc.gh,
                installation_id=installation_id,
                repo=decision.repo,
                run_id=run_id,
                body=body,
                note="; ".join(refused),
            )
        requested = tuple(p.number for p, n in zip(asking, notes, strict=True) if not n)
        await self._remember(decision, decision_id)
        await self._log(
            decision,
            digest=record.digest,
            delivery_id=delivery_id,
            requested=requested,
            decision_id=decision_id,
        )
        return Published(decision_id, record.digest, run_id, requested)

    async def _ask(self, asking: Sequence[Decision], installation_id: int) -> list[str | None]:
        """Request each pull request's reviewers; a refusal is a note, not an error."""
        return list(
            await asyncio.gather(
                *(
                    checks.request_reviews(
                        self._svc.gh,
                        installation_id=installation_id,
                        repo=p.repo,
                        number=p.number,
                        decision=p,
                    )
                    for p in asking
                )
            )
        )

    async def _remember(self, decision: Decision, decision_id: str) -> None:
        svc = self._svc
        for pull in decision.pulls:
            if not pull.number or decision.kind is DecisionKind.MERGE_GROUP:
                continue
            latest = {"head_sha": pull.head_sha, "outcome": pull.outcome.value, "id": decision_id}
            await svc.store.put("latest", f"{pull.repo}#{pull.number}", json.dumps(latest).encode())
            teams = {o.team for r in pull.requirements for o in map(Owner, r.owners) if o.team}
            for team in sorted(teams):
                await team_index.add(svc.store, team=team, pull=pull, owner=decision_id)

    async def _log(
        self,
        decision: Decision,
        *,
        digest: str,
        delivery_id: str,
        requested: Sequence[int],
        decision_id: str = "",
    ) -> None:
        svc = self._svc
        now = svc.clock()
        svc.metrics.decisions.labels(
            conclusion=decision.vocabulary.check_run, tier=decision.tier or "none"
        ).inc()
        entries = audit_entries.decision_entries(
            decision,
            digest=digest,
            delivery_id=delivery_id,
            requested=requested,
            decision_id=decision_id,
        )
        for kind, fields in entries:
            await svc.audit.append(kind, fields, time=now)
        await svc.audit.maybe_checkpoint(now)
        log.info(
            "decision published",
            extra={
                "repo": decision.repo,
                "pr": decision.number,
                "head_sha": decision.head_sha,
                "delivery": delivery_id,
                "status": decision.outcome.value,
            },
        )
