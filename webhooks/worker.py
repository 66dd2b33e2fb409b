"""Workers: claim a job, keep its lease alive, run it, retry or dead-letter it.

At-least-once: a job is completed only after its decision is published; a
crash leaves the lease to expire and another worker to redo it. While a job
runs, a heartbeat renews the lease (a slow supply-chain scan can outlive it),
so a short lease still lets a dead worker's job be taken over quickly.
What a job does is :mod:`webhooks.jobs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from gate.result import Decision
from webhooks.github import Backoff
from webhooks.jobs import Jobs, intents_of
from webhooks.service import Service
from webhooks.store import Job

log = logging.getLogger("merge_gate.worker")


class Worker:
    def __init__(
        self, service: Service, *, name: str, jobs: Jobs | None = None, spare: bool = False
    ) -> None:
        """``spare``: claim only keys of repositories no worker holds a lease in.

        The other workers may all be busy with one repository's flood; a spare
        one stays free for the next repository's pull request, so the flood
        delays it by no more than a claim (see ``Store.claim``).
        """
        self.service = service
        self.name = name
        self.jobs = jobs or Jobs(service)
        self.spare = spare

    async def run(self, stop: asyncio.Event, *, idle: float = 0.2) -> None:
        while not stop.is_set():
            try:
                worked = await self.run_once()
            except Exception:
                # Completing or failing the job needed the store (or the audit log),
                # which is down: the lease runs out and the job is redone. The loop
                # must outlive an outage, or the worker idles until restarted.
                log.exception("job bookkeeping failed; its lease will expire")
                worked = False
            if not worked:
                wakeup = self.service.wakeup
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout=idle)
                wakeup.clear()

    async def run_once(self) -> bool:
        svc = self.service
        try:
            job = await svc.store.claim(
                worker=self.name, lease_seconds=svc.settings.lease_seconds, spare=self.spare
            )
        except Exception:
            log.exception("claim failed")
            return False
        if job is None:
            return False
        started = time.perf_counter()
        if job.attempts >= svc.settings.max_attempts:
            await self._give_up(job, "the job kept failing or its workers died")
            return True
        if await self._over_budget(job):
            return True
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            await self.jobs.run(job)
        except asyncio.CancelledError:
            await svc.store.release(job)
            raise
        except Backoff as error:
            log.warning("backing off: %s", error, extra={"key": job.key})
            if error.waiting:
                # A rate limit or a busy commit: the job waits in the queue, not in a
                # worker, and no attempt is counted against it.
                await svc.store.defer(job, until=svc.wall() + error.retry_in)
            else:
                await self._fail(job, str(error), retry_in=error.retry_in)
        except Exception as error:
            log.exception("job failed", extra={"key": job.key})
            await self._fail(
                job, f"{type(error).__name__}: {error}", retry_in=min(2.0**job.attempts, 60.0)
            )
        else:
            await svc.store.complete(job)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            svc.metrics.evaluation_seconds.observe(time.perf_counter() - started)
        return True

    async def process(self, job: Job) -> tuple[Decision, ...]:
        """Run one job without the queue's bookkeeping (tests, benchmarks)."""
        return await self.jobs.run(job)

    async def _over_budget(self, job: Job) -> bool:
        """Defer the job if its installation's rate limit is nearly spent.

        It waits in the queue until the reset (see :mod:`webhooks.budget`), holding
        no worker and counting no attempt; deliveries that arrive meanwhile join it.
        """
        svc = self.service
        now = svc.wall()
        budgets = svc.gh.budgets
        if not budgets.spent(now=now):  # the usual case: no decoding
            return False
        try:
            installation = next(
                (i.installation_id for i in reversed(intents_of(job)) if i.installation_id),
                None,
            )
        except Exception:  # the job itself reports an unreadable delivery
            return False
        if installation is None:
            return False
        until = budgets.wait_until(installation, now=now)
        if until is None:
            return False
        log.warning(
            "installation %s has nearly spent its rate limit: job deferred %.0f s to the reset",
            installation,
            until - now,
            extra={"key": job.key},
        )
        await svc.store.defer(job, until=until)
        return True

    async def _heartbeat(self, job: Job) -> None:
        """Renew the lease at a third of its length until the job ends."""
        lease = self.service.settings.lease_seconds
        while True:
            await asyncio.sleep(lease / 3)
            try:
                kept = await self.service.store.extend(job, lease_seconds=lease)
            except Exception:
                log.exception("lease renewal failed", extra={"key": job.key})
                continue
            if not kept:
                log.warning("lease lost: another worker took the job", extra={"key": job.key})
                return

    async def _fail(self, job: Job, error: str, *, retry_in: float) -> None:
        svc = self.service
        dead = await svc.store.fail(
            job, error=error, retry_in=retry_in, max_attempts=svc.settings.max_attempts
        )
        if dead is not None:
            await self._dead_letter(job, error)

    async def _give_up(self, job: Job, error: str) -> None:
        await self.service.store.fail(job, error=error, retry_in=0, max_attempts=1)
        await self._dead_letter(job, error)

    async def _dead_letter(self, job: Job, error: str) -> None:
        self.service.metrics.dead_letters.inc()
        await self.jobs.give_up(job, error)
