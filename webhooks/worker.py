"""Workers: claim a key, read GitHub's current facts, decide, sign, publish, log.

At-least-once: a job is completed only after its decision is published; a
crash leaves the lease to expire and another worker to redo it. Evaluations
always read the pull request's current head, so a redo is never stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from gate import engine, render
from gate.defaults import load_policy
from gate.detectors.base import ScanInput
from gate.detectors.dependencies import new_packages
from gate.detectors.manifests import Package
from gate.diff import PatchError, added_lines
from gate.model import Confirmation, Contents, PullSnapshot, ScanResult, ScanStatus
from gate.policy import InvalidPolicy
from gate.result import Decision, Outcome
from webhooks import checks, records
from webhooks.github import Backoff, GitHubError, NotFound
from webhooks.reader import read_contents, read_pull
from webhooks.service import Service
from webhooks.store import Delivery, Job
from webhooks.supplychain import scan_packages

log = logging.getLogger("merge_gate.worker")


@dataclasses.dataclass(frozen=True, slots=True)
class Outcomes:
    decisions: tuple[Decision, ...]


def _payload(delivery: Delivery) -> dict[str, Any]:
    data = json.loads(delivery.body)
    return data if isinstance(data, dict) else {}


def _installation(deliveries: Sequence[Delivery]) -> int | None:
    for delivery in reversed(deliveries):
        node = _payload(delivery).get("installation")
        if isinstance(node, Mapping) and isinstance(node.get("id"), int):
            return int(node["id"])
    return None


class Worker:
    def __init__(self, service: Service, *, name: str) -> None:
        self.service = service
        self.name = name
        #: Scan results by (head sha, packages); a head's packages never change.
        self._scans: OrderedDict[tuple[str, tuple[str, ...]], ScanResult] = OrderedDict()
        #: A redone job may have created its check run before it died: look it up.
        self._redo = False

    # --- the loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, idle: float = 0.2) -> None:
        while not stop.is_set():
            worked = await self.run_once()
            if not worked:
                wakeup = self.service.wakeup
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout=idle)
                wakeup.clear()

    async def run_once(self) -> bool:
        svc = self.service
        try:
            job = await svc.store.claim(worker=self.name, lease_seconds=svc.settings.lease_seconds)
        except Exception:
            log.exception("claim failed")
            return False
        if job is None:
            return False
        started = time.perf_counter()
        if job.attempts >= svc.settings.max_attempts:
            await self._give_up(job, "the job kept failing or its workers died")
            return True
        try:
            await self.process(job)
        except asyncio.CancelledError:
            await svc.store.release(job)
            raise
        except Backoff as error:
            log.warning("backing off", extra={"key": job.key, "error": str(error)})
            await self._fail(job, str(error), retry_in=error.retry_in)
        except Exception as error:
            log.exception("job failed", extra={"key": job.key})
            await self._fail(
                job, f"{type(error).__name__}: {error}", retry_in=min(2.0**job.attempts, 60.0)
            )
        else:
            await svc.store.complete(job)
        finally:
            svc.metrics.evaluation_seconds.observe(time.perf_counter() - started)
        return True

    async def _fail(self, job: Job, error: str, *, retry_in: float) -> None:
        svc = self.service
        dead = await svc.store.fail(
            job, error=error, retry_in=retry_in, max_attempts=svc.settings.max_attempts
        )
        if dead is not None:
            await self._dead_letter(job, error)

    async def _give_up(self, job: Job, error: str) -> None:
        svc = self.service
        await svc.store.fail(job, error=error, retry_in=0, max_attempts=1)
        await self._dead_letter(job, error)

    async def _dead_letter(self, job: Job, error: str) -> None:
        """Fail closed: a failure check run saying why, and an audit entry."""
        svc = self.service
        svc.metrics.dead_letters.inc()
        await svc.audit.append(
            "dead_letter",
            {"key": job.key, "deliveries": list(job.delivery_ids), "error": error[:500]},
            time=svc.clock(),
        )
        installation = _installation(job.deliveries)
        for delivery in job.deliveries[-1:]:
            payload = _payload(delivery)
            head = (payload.get("pull_request") or {}).get("head", {}).get("sha")
            repo = (payload.get("repository") or {}).get("full_name")
            if not (head and repo and installation):
                continue
            body = {
                "name": checks.CHECK_NAME,
                "status": "completed",
                "conclusion": "failure",
                "details_url": f"{svc.settings.public_url}/healthz",
                "output": {
                    "title": "Error: evaluation failed repeatedly, failing closed",
                    "summary": (
                        f"merge-gate gave up after {job.attempts + 1} attempts: {error[:1000]}. "
                        "Re-run the check once GitHub or merge-gate is healthy."
                    ),
                },
            }
            try:
                await checks.publish(
                    svc.gh,
                    svc.store,
                    installation_id=installation,
                    repo=repo,
                    head_sha=head,
                    body=body,
                )
            except Exception:
                log.exception("could not post the dead-letter check run", extra={"key": job.key})

    # --- one job -------------------------------------------------------------------

    async def process(self, job: Job) -> Outcomes:
        self._redo = job.attempts > 0
        kind, _, rest = job.key.partition(":")
        installation = _installation(job.deliveries)
        delivery_id = job.deliveries[-1].id if job.deliveries else ""
        if kind == "install":
            self._invalidate(job)
            return Outcomes(())
        if installation is None:
            log.warning("delivery without installation ignored", extra={"key": job.key})
            return Outcomes(())
        if kind == "pr":
            repo, _, pr = rest.rpartition("#")
            await self._record_confirmations(job)
            closed = [
                d for d in job.deliveries if d.event == "pull_request" and d.action == "closed"
            ]
            decision = await self.evaluate_pr(
                repo=repo,
                number=int(pr),
                installation_id=installation,
                delivery_id=delivery_id,
                closed=bool(closed),
            )
            return Outcomes((decision,) if decision else ())
        if kind == "sha":
            repo, _, sha = rest.rpartition("@")
            await self._record_confirmations(job)
            numbers = await self._pulls_for_sha(installation, repo, sha)
            found = []
            for number in numbers:
                decision = await self.evaluate_pr(
                    repo=repo, number=number, installation_id=installation, delivery_id=delivery_id
                )
                if decision:
                    found.append(decision)
            return Outcomes(tuple(found))
        if kind == "group":
            repo, _, sha = rest.rpartition("@")
            payload = _payload(job.deliveries[-1])
            return await self.evaluate_group(
                repo=repo,
                head_sha=sha,
                payload=payload,
                installation_id=installation,
                delivery_id=delivery_id,
            )
        log.warning("unknown job key", extra={"key": job.key})
        return Outcomes(())

    def _invalidate(self, job: Job) -> None:
        svc = self.service
        for delivery in job.deliveries:
            log.info(
                "installation event: caches dropped",
                extra={"event": delivery.event, "action": delivery.action, "delivery": delivery.id},
            )
            svc.teams.forget()
            if delivery.event in ("installation", "installation_repositories"):
                svc.configs.forget()
                svc.gh.forget(_installation([delivery]))

    async def _record_confirmations(self, job: Job) -> None:
        for delivery in job.deliveries:
            if delivery.event != "check_run" or delivery.action != "requested_action":
                continue
            payload = _payload(delivery)
            if (payload.get("requested_action") or {}).get("identifier") != checks.CONFIRM_ROLLOUT:
                continue
            run = payload.get("check_run") or {}
            user = (payload.get("sender") or {}).get("login")
            repo = (payload.get("repository") or {}).get("full_name")
            head = run.get("head_sha")
            if not (user and repo and head):
                continue
            key = f"{repo}@{head}"
            known = json.loads((await self.service.store.get("confirm", key)) or b"[]")
            entry = {
                "gate": "staged_rollout",
                "user": user,
                "head_sha": head,
                "at": self.service.clock().isoformat(),
            }
            if all(e["user"] != user for e in known):
                known.append(entry)
                await self.service.store.put(
                    "confirm", key, json.dumps(known).encode(), ttl=90 * 24 * 3600
                )

    async def _confirmations(self, repo: str, head: str) -> tuple[Confirmation, ...]:
        known = json.loads((await self.service.store.get("confirm", f"{repo}@{head}")) or b"[]")
        return tuple(Confirmation(**entry) for entry in known)

    async def _pulls_for_sha(self, installation: int, repo: str, sha: str) -> list[int]:
        gh = self.service.gh
        answer = await gh.call(
            "GET",
            f"/repos/{repo}/commits/{sha}/pulls",
            installation_id=installation,
            route="GET /commits/{sha}/pulls",
        )
        numbers = [
            int(p["number"])
            for p in answer.data or []
            if p.get("state") == "open" and p.get("head", {}).get("sha") == sha
        ]
        if numbers:
            return numbers
        # Fork PRs are not associated with commits of the base repository.
        pulls = await gh.paginate(
            f"/repos/{repo}/pulls",
            installation_id=installation,
            params={"state": "open"},
            max_pages=5,
            route="/pulls",
        )
        return [int(p["number"]) for p in pulls if p.get("head", {}).get("sha") == sha]

    # --- deciding --------------------------------------------------------------------

    async def decide(
        self, *, repo: str, number: int, installation_id: int
    ) -> tuple[Decision, PullSnapshot] | None:
        """Read everything and decide; None when the PR is closed."""
        svc = self.service
        read = await read_pull(svc.gh, installation_id=installation_id, repo=repo, number=number)
        if read.state != "open":
            return None
        snapshot = read.snapshot
        config = await svc.configs.read(
            installation_id=installation_id, repo=repo, sha=snapshot.base_sha
        )
        snapshot = dataclasses.replace(
            snapshot, confirmations=await self._confirmations(repo, snapshot.head_sha)
        )
        try:
            policy = load_policy(config.policy_text, blob=config.policy_blob)
        except InvalidPolicy as error:
            notes = [e.format(f"{snapshot.base_ref}:.github/merge-gate.yml") for e in error.errors]
            return engine.error_decision(
                pull=snapshot, message="the base branch's policy file is invalid", notes=notes
            ), snapshot
        needs = engine.needs(
            policy=policy, codeowners=config.codeowners, pull=snapshot, detectors=svc.detectors
        )
        teams_task = svc.teams.read(installation_id=installation_id, teams=needs.teams)
        contents_task = read_contents(
            svc.gh,
            installation_id=installation_id,
            repo=repo,
            wanted=needs.contents,
            base_sha=snapshot.base_sha,
            head_sha=snapshot.head_sha,
        )
        teams, (texts, large) = await asyncio.gather(teams_task, contents_task)
        contents = Contents(texts=texts, too_large=large)
        scan = await self._supply_chain(snapshot, contents)
        if scan is not None:
            snapshot = dataclasses.replace(snapshot, scans=(scan,))
        decision = engine.evaluate(
            policy=policy,
            codeowners=config.codeowners,
            pull=snapshot,
            teams=teams,
            contents=contents,
            detectors=svc.detectors,
            codeowners_blob=config.codeowners_blob,
        )
        return decision, snapshot

    async def _supply_chain(self, snapshot: PullSnapshot, contents: Contents) -> ScanResult | None:
        packages: list[Package] = []
        for file in snapshot.files:
            try:
                added = added_lines(file.patch) if file.patch else ()
            except PatchError:
                added = ()
            packages.extend(new_packages(ScanInput(file=file, added=added, contents=contents)))
        if not packages:
            return None
        key = (
            snapshot.head_sha,
            tuple(sorted(f"{p.ecosystem}:{p.name}:{p.spec}" for p in packages)),
        )
        if key in self._scans:
            return self._scans[key]
        async with httpx.AsyncClient() as client:
            result = await scan_packages(
                packages=packages,
                head_sha=snapshot.head_sha,
                client=client,
                urls=self.service.scan_urls,
                now=self.service.clock(),
            )
        # "Unavailable" is not an answer: the next evaluation asks again.
        if result.status is not ScanStatus.UNAVAILABLE:
            self._scans[key] = result
            if len(self._scans) > 1024:
                self._scans.popitem(last=False)
        return result

    async def evaluate_pr(
        self,
        *,
        repo: str,
        number: int,
        installation_id: int,
        delivery_id: str,
        closed: bool = False,
        publish: bool = True,
    ) -> Decision | None:
        try:
            decided = await self.decide(repo=repo, number=number, installation_id=installation_id)
        except NotFound:
            log.info("pull request gone", extra={"repo": repo, "pr": number})
            return None
        if decided is None:
            if closed:
                await self._record_close(
                    repo=repo,
                    number=number,
                    installation_id=installation_id,
                    delivery_id=delivery_id,
                )
            return None
        decision, snapshot = decided
        if publish:
            await self.publish(
                decision,
                snapshot=snapshot,
                installation_id=installation_id,
                delivery_id=delivery_id,
            )
        return decision

    async def publish(
        self, decision: Decision, *, snapshot: PullSnapshot, installation_id: int, delivery_id: str
    ) -> None:
        svc = self.service
        now = svc.clock()
        record = records.sign(
            decision,
            keyring=svc.keyring,
            evaluated_at=now,
            delivery_id=delivery_id,
            app_id=svc.settings.app_id,
            installation_id=installation_id,
        )
        decision_id = record.digest.split(":", 1)[1][:32]
        details_url = f"{svc.settings.public_url}/decisions/{decision_id}"
        stored = {
            "decision": decision.to_dict(),
            "envelope": record.envelope,
            "digest": record.digest,
            "at": now.isoformat(),
        }
        await svc.store.put(
            "decision", decision_id, json.dumps(stored).encode(), ttl=180 * 24 * 3600
        )
        body, more = checks.check_run_output(
            decision,
            details_url=details_url,
            text=record.fenced(),
            annotations=render.annotate(decision, raw_details=record.digest),
        )
        # The review request and the check-run write go out together (one round
        # trip); a refused request is noted on the check run afterwards.
        publishing = checks.publish(
            svc.gh,
            svc.store,
            installation_id=installation_id,
            repo=decision.repo,
            head_sha=decision.head_sha,
            body=body,
            more_annotations=more,
            look_up=self._redo,
        )
        note = None
        if not snapshot.draft and (decision.request_users or decision.request_teams):
            note, run_id = await asyncio.gather(
                checks.request_reviews(
                    svc.gh,
                    installation_id=installation_id,
                    repo=decision.repo,
                    number=decision.number,
                    decision=decision,
                ),
                publishing,
            )
        else:
            run_id = await publishing
        if note:
            await checks.add_note(
                svc.gh,
                installation_id=installation_id,
                repo=decision.repo,
                run_id=run_id,
                body=body,
                note=note,
            )
        latest = {
            "head_sha": decision.head_sha,
            "outcome": decision.outcome.value,
            "id": decision_id,
        }
        await svc.store.put(
            "latest", f"{decision.repo}#{decision.number}", json.dumps(latest).encode()
        )
        svc.metrics.decisions.labels(
            conclusion=render.conclusion(decision), tier=decision.tier or "none"
        ).inc()
        await svc.audit.append(
            "evaluation", self._audit_fields(decision, record.digest, delivery_id), time=now
        )
        if (
            (decision.request_users or decision.request_teams)
            and not note
            and not snapshot.draft
            and decision.outcome is not Outcome.DENIED
        ):
            await svc.audit.append(
                "review_requested",
                {
                    "repo": decision.repo,
                    "pr": decision.number,
                    "head_sha": decision.head_sha,
                    "users": list(decision.request_users),
                    "teams": list(decision.request_teams),
                },
                time=now,
            )
        confirmed = [r for r in decision.requirements if r.kind == "staged_rollout" and r.satisfied]
        if confirmed:
            await svc.audit.append(
                "rollout_confirmed",
                {
                    "repo": decision.repo,
                    "pr": decision.number,
                    "head_sha": decision.head_sha,
                    "by": [a.user for r in confirmed for a in r.satisfied_by],
                },
                time=now,
            )
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

    @staticmethod
    def _audit_fields(decision: Decision, digest: str, delivery_id: str) -> dict[str, object]:
        labels = {
            Outcome.PASS: "allowed",
            Outcome.NEEDS_APPROVAL: "blocked",
            Outcome.DENIED: "denied",
            Outcome.ERROR: "error",
        }
        return {
            "repo": decision.repo,
            "pr": decision.number,
            "head_sha": decision.head_sha,
            "author": decision.author,
            "agent": decision.agent,
            "conclusion": labels[decision.outcome],
            "tier": decision.tier,
            "files": [{"path": f.path, "tier": f.tier} for f in decision.files][:3000],
            "approvers": sorted({a.user for r in decision.requirements for a in r.satisfied_by}),
            "record_digest": digest,
            "delivery_id": delivery_id,
        }

    async def _record_close(
        self, *, repo: str, number: int, installation_id: int, delivery_id: str
    ) -> None:
        svc = self.service
        answer = await svc.gh.call(
            "GET",
            f"/repos/{repo}/pulls/{number}",
            installation_id=installation_id,
            route="GET /pulls/{n}",
        )
        pull = answer.data
        latest = json.loads((await svc.store.get("latest", f"{repo}#{number}")) or b"{}")
        await svc.audit.append(
            "merged" if pull.get("merged") else "closed",
            {
                "repo": repo,
                "pr": number,
                "head_sha": pull["head"]["sha"],
                "author": (pull.get("user") or {}).get("login"),
                "merged": bool(pull.get("merged")),
                "merged_by": (pull.get("merged_by") or {}).get("login"),
                "last_decision": latest.get("id"),
                "last_outcome": latest.get("outcome"),
                "delivery_id": delivery_id,
            },
            time=svc.clock(),
        )

    # --- merge queue -------------------------------------------------------------------

    async def evaluate_group(
        self,
        *,
        repo: str,
        head_sha: str,
        payload: Mapping[str, Any],
        installation_id: int,
        delivery_id: str,
    ) -> Outcomes:
        """A merge group passes only when every PR in it passes on its current head."""
        svc = self.service
        group = payload.get("merge_group") or {}
        base_sha = str(group.get("base_sha", ""))
        numbers = await self._group_pulls(installation_id, repo, base_sha, head_sha, group)
        decisions: list[Decision] = []
        reasons: list[str] = []
        for number in numbers:
            decided = await self.decide(repo=repo, number=number, installation_id=installation_id)
            if decided is None:
                reasons.append(f"#{number} is closed")
                continue
            decision = decided[0]
            decisions.append(decision)
            if decision.outcome is not Outcome.PASS:
                reasons.append(f"#{number}: {decision.summary}")
        if not numbers:
            reasons.append("no pull request could be found in the merge group")
        ok = not reasons
        body = {
            "name": checks.CHECK_NAME,
            "status": "completed",
            "conclusion": "success" if ok else "failure",
            "details_url": f"{svc.settings.public_url}/healthz",
            "output": {
                "title": "Merge group passes" if ok else "Merge group blocked",
                "summary": (
                    "Every pull request in the group passes on its head: "
                    + ", ".join(f"#{n}" for n in numbers)
                )
                if ok
                else "\n".join(f"- {r}" for r in reasons)[:60000],
            },
        }
        await checks.publish(
            svc.gh,
            svc.store,
            installation_id=installation_id,
            repo=repo,
            head_sha=head_sha,
            body=body,
        )
        await svc.audit.append(
            "evaluation",
            {
                "repo": repo,
                "merge_group": head_sha,
                "prs": numbers,
                "conclusion": "allowed" if ok else "blocked",
                "reasons": reasons[:50],
                "delivery_id": delivery_id,
            },
            time=svc.clock(),
        )
        return Outcomes(tuple(decisions))

    async def _group_pulls(
        self, installation: int, repo: str, base: str, head: str, group: Mapping[str, Any]
    ) -> list[int]:
        """PR numbers in a merge group: the PRs associated with the group's commits."""
        gh = self.service.gh
        numbers: list[int] = []
        try:
            compare = await gh.call(
                "GET",
                f"/repos/{repo}/compare/{base}...{head}",
                installation_id=installation,
                route="GET /compare",
            )
            shas = [c["sha"] for c in (compare.data or {}).get("commits", [])]
        except GitHubError:
            shas = [head]
        for sha in shas:
            answer = await gh.call(
                "GET",
                f"/repos/{repo}/commits/{sha}/pulls",
                installation_id=installation,
                route="GET /commits/{sha}/pulls",
            )
            for pull in answer.data or []:
                if pull.get("state") == "open" and int(pull["number"]) not in numbers:
                    numbers.append(int(pull["number"]))
        ref = str(group.get("head_ref", ""))
        marker = ref.rpartition("/pr-")[2].split("-", 1)[0]
        if marker.isdigit() and int(marker) not in numbers:
            numbers.append(int(marker))
        return numbers
