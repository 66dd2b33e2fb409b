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
from webhooks import checks, indexes, records
from webhooks.github import GitHubError
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
    # Advisory mode asks nobody: a rollout must not page reviewers on day one.
    if decision.outcome is Outcome.DENIED or decision.kind is DecisionKind.MERGE_GROUP:
        return []
    if decision.advisory:
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
        # Reviewers are asked first, so the summary names only the requests GitHub
        # accepted (one round trip more, and only when someone is asked).
        asking = _to_ask(decision)
        notes = await self._ask(asking, installation_id)
        accepted = {
            p.number: (p.request_users, p.request_teams)
            for p, note in zip(asking, notes, strict=True)
            if not note
        }
        body, more = checks.check_run_output(
            decision,
            details_url=details_url,
            text=record.text(details_url=details_url, limit=render.MAX_TEXT),
            annotations=render.annotate(decision, raw_details=record.digest),
            requested=accepted,
        )
        refused = [f"#{p.number}: {n}" for p, n in zip(asking, notes, strict=True) if n]
        if refused:
            body["output"]["summary"] += "\n\n> " + render.escape("; ".join(refused))
        run_id = await checks.publish(
            svc.gh,
            svc.store,
            installation_id=installation_id,
            repo=decision.repo,
            head_sha=decision.head_sha,
            body=body,
            more_annotations=more,
            look_up=redo,
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
        await self._follow_up_overrides(
            decision,
            digest=record.digest,
            details_url=details_url,
            installation_id=installation_id,
        )
        return Published(decision_id, record.digest, run_id, requested)

    async def _follow_up_overrides(
        self, decision: Decision, *, digest: str, details_url: str, installation_id: int
    ) -> None:
        """Once per overridden head: a comment on the pull request, the review issue
        (when the policy asks and the App may write issues) and an audit entry.

        The comment uses ``pull_requests: write``, which the App has; an issue needs
        ``issues: write``, which only installations that want review issues grant
        (https://docs.github.com/rest/issues/issues#create-an-issue).
        """
        svc = self._svc
        for pull in decision.pulls:
            override = pull.override
            if override is None or not pull.number or decision.kind is DecisionKind.MERGE_GROUP:
                continue
            done = f"{pull.repo}#{pull.number}@{pull.head_sha}"
            if await svc.store.get("override_done", done) is not None:
                continue
            await svc.store.put("override_done", done, b"1", ttl=_DECISION_TTL)
            without = override.without.replace("_", " ")
            text = (
                f"**Break-glass override** by @{override.by} on `{pull.head_sha[:12]}`: "
                f"{render.escape(override.reason)}\n\nWithout the override this head was "
                f"**{without}**. The signed record is at {details_url} (digest `{digest}`). "
                "This merge needs a post-hoc review."
            )
            issue_url, note = None, ""
            if override.issue:
                try:
                    answer = await svc.gh.call(
                        "POST",
                        f"/repos/{pull.repo}/issues",
                        installation_id=installation_id,
                        json={
                            "title": f"Post-hoc review: break-glass override of #{pull.number}",
                            "body": f"#{pull.number}\n\n{text}",
                        },
                        route="POST /issues",
                    )
                    issue_url = str((answer.data or {}).get("html_url") or "") or None
                except GitHubError as error:
                    note = (
                        f"\n\nThe review issue could not be opened (GitHub answered "
                        f"{error.status}): grant the App `issues: write` for review issues."
                    )
            if issue_url:
                text += f"\n\nReview issue: {issue_url}"
            comment_url = None
            try:
                answer = await svc.gh.call(
                    "POST",
                    f"/repos/{pull.repo}/issues/{pull.number}/comments",
                    installation_id=installation_id,
                    json={"body": text + note},
                    route="POST /issues/comments",
                )
                comment_url = str((answer.data or {}).get("html_url") or "") or None
            except GitHubError:
                log.exception("could not comment on the overridden pull request")
            kind, fields = audit_entries.override_applied_entry(
                pull, digest=digest, issue_url=issue_url, comment_url=comment_url
            )
            await svc.audit.append(kind, fields, time=svc.clock())

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
                await indexes.add_team_pull(svc.store, team=team, pull=pull, owner=decision_id)

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
        if decision.would_block:
            svc.metrics.would_block.inc()
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
