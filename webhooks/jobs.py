"""One job, from its typed intents to the decisions it published.

read → evaluate → publish (policy-bot's parse → evaluate → post-actions). A
job's key says what is decided: a pull request's head (with every pull request
sharing it), a bare head sha, a merge group, or an installation whose caches
must be dropped. Evaluations that publish to the same commit are serialised on
a lock named after it, so no interleaving can publish a weaker result computed
from older facts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from gate import audit_entries, tree
from gate.result import Decision
from webhooks import commitlock, indexes
from webhooks.evaluate import Evaluator
from webhooks.events import (
    GroupKey,
    GroupQueued,
    InstallationChanged,
    InstallKey,
    Intent,
    OverrideRequested,
    PullChanged,
    PullKey,
    RolloutConfirmed,
    ShaKey,
    decode,
    parse_key,
)
from webhooks.facts import ScanCache, record_confirmation, record_override, record_pusher
from webhooks.github import Backoff
from webhooks.publish import Publisher
from webhooks.reader import get_pull
from webhooks.service import Service
from webhooks.store import Job

log = logging.getLogger("merge_gate.jobs")

#: At most this many heads get a failure check run when a job is given up.
_FAILED_HEADS = 5


def intents_of(job: Job) -> list[Intent]:
    return [decode(d.body, event=d.event, action=d.action) for d in job.deliveries]


def _installation(intents: Sequence[Intent]) -> int | None:
    return next((i.installation_id for i in reversed(intents) if i.installation_id), None)


def _heads(intents: Sequence[Intent]) -> list[tuple[str, str, int]]:
    """(repo, head sha, pull request number or 0) each intent concerned, newest first."""
    found: dict[tuple[str, str], int] = {}
    for intent in reversed(intents):
        if isinstance(intent, PullChanged):
            found.setdefault((intent.repo, intent.head_sha), intent.number)
        elif isinstance(intent, InstallationChanged | OverrideRequested):
            continue
        else:
            found.setdefault((intent.repo, intent.head_sha), 0)
    return [(repo, sha, number) for (repo, sha), number in found.items()]


class Jobs:
    def __init__(self, service: Service) -> None:
        self._svc = service
        self._evaluator = Evaluator(service, scans=ScanCache())
        self._publisher = Publisher(service)

    async def run(self, job: Job) -> tuple[Decision, ...]:
        key = parse_key(job.key)
        intents = intents_of(job)
        if isinstance(key, InstallKey):
            self._invalidate(intents)
            return await self._redo_teams(intents, owner=job.token)
        installation = _installation(intents)
        if installation is None:
            log.warning("delivery without installation ignored", extra={"key": job.key})
            return ()
        delivery_id = job.deliveries[-1].id if job.deliveries else ""
        overridden = ""
        for intent in intents:
            if isinstance(intent, RolloutConfirmed):
                await record_confirmation(self._svc, intent)
            if isinstance(intent, PullChanged) and not intent.closed:
                await indexes.add_head_pull(
                    self._svc.store,
                    repo=intent.repo,
                    number=intent.number,
                    head=intent.head_sha,
                    owner=job.token,
                )
            if isinstance(intent, PullChanged) and intent.action == "synchronize":
                await record_pusher(self._svc, intent)
            elif isinstance(intent, OverrideRequested):
                overridden = await self._record_override(installation, intent, delivery_id)
        redo = job.attempts > 0
        if isinstance(key, GroupKey):
            group = next(i for i in reversed(intents) if isinstance(i, GroupQueued))
            decision = await self._evaluator.group(installation_id=installation, intent=group)
            await self._publisher.publish(
                decision, installation_id=installation, delivery_id=delivery_id, redo=redo
            )
            return (decision,)
        number = key.number if isinstance(key, PullKey) else None
        heads = _heads(intents)
        sha = heads[0][1] if heads else key.sha if isinstance(key, ShaKey) else overridden
        for intent in intents:
            if isinstance(intent, PullChanged) and intent.closed:
                await self._record_close(installation, intent, delivery_id)
        if not sha:
            return ()
        decided = await self._decide_head(
            installation,
            repo=key.repo,
            sha=sha,
            number=number,
            owner=job.token,
            delivery_id=delivery_id,
            redo=redo,
        )
        return (decided,) if decided else ()

    async def _decide_head(
        self,
        installation: int,
        *,
        repo: str,
        sha: str,
        number: int | None,
        owner: str,
        delivery_id: str,
        redo: bool,
    ) -> Decision | None:
        # The named pull request's lists are read beside the look-up of the head's
        # pull requests (see Evaluator.head); they serve only at the head it finds.
        head = await self._evaluator.head(
            installation_id=installation, repo=repo, sha=sha, number=number
        )
        try:
            async with commitlock.hold(
                self._svc.store,
                f"commit:{repo}@{head.sha}",
                owner=owner,
                lease=self._svc.settings.lease_seconds,
                clock=self._svc.wall,
            ) as held:
                if held.waited:  # others published meanwhile: read the pull requests again
                    head = await self._evaluator.head(
                        installation_id=installation, repo=repo, sha=head.sha, number=None
                    )
                decision = await self._evaluator.commit(
                    installation_id=installation, repo=repo, head=head
                )
                if decision is not None:
                    if held.lost():
                        raise Backoff(
                            1.0,
                            f"lost the lock on {head.sha[:12]}: another evaluation may have"
                            " published; deciding again",
                            waiting=True,
                        )
                    await self._publisher.publish(
                        decision, installation_id=installation, delivery_id=delivery_id, redo=redo
                    )
        except commitlock.Busy:
            raise Backoff(
                1.0, f"commit {head.sha[:12]} is being published elsewhere", waiting=True
            ) from None
        return decision

    async def _record_close(self, installation: int, intent: PullChanged, delivery_id: str) -> None:
        svc = self._svc
        pull = await get_pull(
            svc.gh, installation_id=installation, repo=intent.repo, number=intent.number
        )
        latest = json.loads(
            (await svc.store.get("latest", f"{intent.repo}#{intent.number}")) or b"{}"
        )
        kind, fields = audit_entries.close_entry(
            repo=intent.repo,
            number=intent.number,
            head_sha=str(pull["head"]["sha"]),
            author=(pull.get("user") or {}).get("login"),
            merged=bool(pull.get("merged")),
            merged_by=(pull.get("merged_by") or {}).get("login"),
            merge_commit_sha=pull.get("merge_commit_sha") if pull.get("merged") else None,
            last_decision=latest.get("id"),
            last_outcome=latest.get("outcome"),
            delivery_id=delivery_id,
        )
        await svc.audit.append(kind, fields, time=svc.clock())

    async def _record_override(
        self, installation: int, intent: OverrideRequested, delivery_id: str
    ) -> str:
        """Keep a break-glass request for the pull request's current head and log it.

        Returns that head ("" when the pull request is not open): its decision is
        made again, and the request counts only if the base's policy allows it.
        """
        svc = self._svc
        pull = await get_pull(
            svc.gh, installation_id=installation, repo=intent.repo, number=intent.number
        )
        head = str(pull["head"]["sha"]) if pull.get("state") == "open" else ""
        kind, fields = audit_entries.override_request_entry(
            repo=intent.repo,
            number=intent.number,
            head_sha=head or str(pull["head"]["sha"]),
            by=intent.user,
            reason=intent.reason,
            comment_id=intent.comment_id,
            delivery_id=delivery_id,
            open_=bool(head),
        )
        await svc.audit.append(kind, fields, time=svc.clock())
        if head:
            await record_override(svc, intent, head_sha=head)
        return head

    async def _redo_teams(self, intents: Sequence[Intent], *, owner: str) -> tuple[Decision, ...]:
        """Decide again every pull request whose decision used a team that changed."""
        done: list[Decision] = []
        for intent in intents:
            if not (isinstance(intent, InstallationChanged) and intent.team):
                continue
            if intent.installation_id is None:
                continue
            for entry in await indexes.team_pulls(self._svc.store, team=intent.team):
                decided = await self._decide_head(
                    intent.installation_id,
                    repo=entry.repo,
                    sha=entry.head_sha,
                    number=entry.number,
                    owner=owner,
                    delivery_id="",
                    redo=False,
                )
                if decided is not None:
                    done.append(decided)
        return tuple(done)

    def _invalidate(self, intents: Sequence[Intent]) -> None:
        svc = self._svc
        svc.teams.forget()
        svc.access.forget()
        for intent in intents:
            if isinstance(intent, InstallationChanged) and intent.event != "membership":
                svc.configs.forget()
                svc.gh.forget(intent.installation_id)

    async def give_up(self, job: Job, error: str) -> None:
        """Fail closed: a signed ``failure`` decision on every head the job concerned."""
        svc = self._svc
        kind, fields = audit_entries.dead_letter_entry(
            key=job.key, delivery_ids=job.delivery_ids, error=error
        )
        await svc.audit.append(kind, fields, time=svc.clock())
        try:
            intents = intents_of(job)
        except Exception:
            log.exception("dead letter: deliveries cannot be read", extra={"key": job.key})
            return
        installation = _installation(intents)
        if installation is None:
            return
        message = (
            f"evaluation failed repeatedly ({job.attempts + 1} attempts), failing closed: "
            f"{error[:1000]}. Re-run the check once GitHub or merge-gate is healthy."
        )
        for repo, sha, number in _heads(intents)[:_FAILED_HEADS]:
            decision = tree.failure(repo=repo, head_sha=sha, number=number, message=message)
            try:
                await self._publisher.publish(
                    decision,
                    installation_id=installation,
                    delivery_id=job.deliveries[-1].id,
                    redo=True,
                )
            except Exception:
                log.exception("could not post the dead-letter check run", extra={"key": job.key})
