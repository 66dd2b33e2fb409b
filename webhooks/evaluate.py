"""Evaluate a head sha or a merge group: GitHub's facts in, a decision tree out.

Read only. A head sha's decision covers every open pull request whose head it
is (:func:`gate.tree.for_commit`); a merge group's, every pull request in the
group, each on its own head (:func:`gate.tree.for_merge_group`).

Finding a commit's pull requests (one GraphQL query, REST when it fails) is
:mod:`webhooks.heads`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import re2

from gate import tree
from gate.decide import decide
from gate.model import PullSnapshot, UserType
from gate.result import Decision
from webhooks.events import GroupQueued
from webhooks.facts import GitHubFacts, ScanCache
from webhooks.github import GitHubError, NotFound
from webhooks.graphql_reader import Partial
from webhooks.heads import Head, HeadReader, number_of
from webhooks.reader import HeadMoved, Lists, file_from_json, get_pull
from webhooks.service import Service
from webhooks.simulation import Simulator

#: How a queued commit names its pull request: squash "Title (#12)", merge
#: "Merge pull request #12 from ...".
_REFERENCE = re2.compile(r"\(#([0-9]{1,9})\)|^Merge pull request #([0-9]{1,9}) ")
_MAX_REFERENCES = 100
#: "The response ... includes a comparison of up to 300 files"
#: (https://docs.github.com/rest/commits/commits#compare-two-commits).
COMPARE_FILE_LIMIT = 300
#: Who a merge group's combined diff is judged as: an agent, so nothing is waved through.
MERGE_QUEUE = "merge-queue[bot]"
_number = number_of
__all__ = ["Evaluator", "Head"]


class Evaluator:
    def __init__(self, service: Service, *, scans: ScanCache, graphql: bool = True) -> None:
        """``graphql``: read a head's pull requests with one GraphQL query (REST when
        it fails); False reads by REST only."""
        self._svc = service
        self._scans = scans
        self._heads = HeadReader(service, graphql=graphql)
        self._simulator = Simulator(service)

    async def head(self, *, installation_id: int, repo: str, sha: str, number: int | None) -> Head:
        """The current head of pull request ``number`` (or ``sha``) and its pull requests."""
        return await self._heads.head(
            installation_id=installation_id, repo=repo, sha=sha, number=number
        )

    async def pull(
        self,
        *,
        installation_id: int,
        repo: str,
        pull: Mapping[str, Any],
        lists: Lists | None = None,
    ) -> Decision:
        facts = GitHubFacts(
            self._svc,
            installation_id=installation_id,
            repo=repo,
            pull=pull,
            scans=self._scans,
            lists=lists,
        )
        decision = await decide(facts=facts, detectors=self._svc.detectors)
        return await self._simulator.attach(decision, installation_id=installation_id)

    async def commit(
        self,
        *,
        installation_id: int,
        repo: str,
        head: Head,
        known: Mapping[int, Lists] | None = None,
    ) -> Decision | None:
        """The decision of ``head`` over its open pull requests; None when there are none.

        ``known``: lists already read, by pull request number (else ``head.lists``).
        A pull request whose head moved while it was read is no longer one of this
        commit's: it is left out (its new head gets a decision of its own).
        """

        async def part(pull: Mapping[str, Any]) -> Decision | None:
            number = _number(pull)
            read = (known or {}).get(number) or head.lists.get(number)
            lists = (
                await self._heads.complete(installation_id, repo, number, read)
                if isinstance(read, Partial)
                else read
            )
            try:
                return await self.pull(
                    installation_id=installation_id, repo=repo, pull=pull, lists=lists
                )
            except HeadMoved:
                return None

        found = await asyncio.gather(*(part(p) for p in head.pulls))
        children = [d for d in found if d is not None]
        if not children:
            return None
        return tree.for_commit(repo=repo, head_sha=head.sha, children=children)

    async def group(self, *, installation_id: int, intent: GroupQueued) -> Decision:
        """A merge group passes only when every pull request in it passes on its head."""
        repo = intent.repo
        compare = await self._compare(installation_id, intent)
        named, mentioned = await self._group_numbers(installation_id, intent, compare)
        gh = self._svc.gh
        missing: list[str] = []
        children: list[Decision] = []
        for number in sorted(named | mentioned):
            try:
                pull = await get_pull(gh, installation_id=installation_id, repo=repo, number=number)
            except NotFound:
                pull = {"state": "missing"}
            if pull.get("state") != "open":
                # A message may mention an issue or an old pull request; only a
                # pull request the queue itself names must be there.
                if number in named:
                    missing.append(f"#{number} is {pull.get('state', 'not open')}")
                continue
            children.append(await self.pull(installation_id=installation_id, repo=repo, pull=pull))
        combined = await self._combined(installation_id, intent, compare)
        missing += tree.combined_problems(combined, children)
        return tree.for_merge_group(
            repo=repo,
            head_sha=intent.head_sha,
            base_sha=intent.base_sha,
            children=children,
            missing=missing,
        )

    async def _compare(self, installation_id: int, intent: GroupQueued) -> Mapping[str, Any]:
        """The group's commits and combined diff (base...head); empty when unknown."""
        try:
            answer = await self._svc.gh.call(
                "GET",
                f"/repos/{intent.repo}/compare/{intent.base_sha}...{intent.head_sha}",
                installation_id=installation_id,
                route="GET /compare",
            )
        except GitHubError:
            return {}
        data: Mapping[str, Any] = answer.data or {}
        return data

    async def _combined(
        self, installation_id: int, intent: GroupQueued, compare: Mapping[str, Any]
    ) -> Decision:
        """The base's policy applied to the group's whole diff, as an agent's change."""
        files = [file_from_json(f) for f in compare.get("files") or []]
        snapshot = PullSnapshot(
            repo=intent.repo,
            number=0,
            author=MERGE_QUEUE,
            author_type=UserType.BOT,
            head_sha=intent.head_sha,
            base_ref=intent.head_ref,
            base_sha=intent.base_sha,
            files=tuple(files),
            # GitHub lists at most 300 files of a comparison; none means unknown.
            files_complete=bool(compare) and len(files) < COMPARE_FILE_LIMIT,
        )
        facts = GitHubFacts(
            self._svc,
            installation_id=installation_id,
            repo=intent.repo,
            pull={},
            scans=None,
            snapshot=snapshot,
        )
        return await decide(facts=facts, detectors=self._svc.detectors)

    async def _group_numbers(
        self, installation_id: int, intent: GroupQueued, compare: Mapping[str, Any]
    ) -> tuple[set[int], set[int]]:
        """The pull requests of a merge group, whatever the queue's merge method.

        The queue branch names the last one (``gh-readonly-queue/main/pr-12-<sha>``);
        the group's commits name the others, by association (merge) or by their
        message (squash ``(#12)``, merge ``Merge pull request #12``).
        Returns (named by the queue or by association, mentioned in messages).
        """
        gh = self._svc.gh
        repo = intent.repo
        numbers: set[int] = set()
        mentioned: set[int] = set()
        marker = intent.head_ref.rpartition("/pr-")[2].split("-", 1)[0]
        if marker.isdigit():
            numbers.add(int(marker))
        commits: Sequence[Mapping[str, Any]] = compare.get("commits") or []
        for commit in commits:
            message = str((commit.get("commit") or {}).get("message", ""))
            for line in message.splitlines()[:50]:
                for match in _REFERENCE.finditer(line):
                    mentioned.add(int(match.group(1) or match.group(2)))
        shas = [str(c["sha"]) for c in commits] or [intent.head_sha]
        for sha in shas[:_MAX_REFERENCES]:
            answer = await gh.call(
                "GET",
                f"/repos/{repo}/commits/{sha}/pulls",
                installation_id=installation_id,
                route="GET /commits/{sha}/pulls",
            )
            numbers |= {_number(p) for p in answer.data or [] if p.get("state") == "open"}
        return numbers, set(sorted(mentioned - numbers)[:_MAX_REFERENCES])
