"""Reading the history a policy change is simulated on: the last merged pull requests.

A pull request that changes ``.github/merge-gate.yml`` (and whose new policy is
valid) gets :func:`gate.simulate.simulate` over the repository's last merged pull
requests. Cost: one list call and one file list per merged pull request, once
per (base policy, new policy): later evaluations of the same change reuse it.
https://docs.github.com/rest/pulls/pulls#list-pull-requests
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from gate.decide import parse_policy
from gate.model import PullSnapshot, UserType
from gate.policy import POLICY_PATH, LoadedPolicy
from gate.result import Decision, SimulationRow
from gate.simulate import simulate
from webhooks.github import GitHubError, ListCut
from webhooks.reader import read_contents, snapshot_of
from webhooks.service import Service

HISTORY = 20
#: Who the merged changes are judged as: an agent, so every tier shows.
AS_AGENT = "merge-gate-simulation[bot]"


class Simulator:
    def __init__(self, service: Service, *, size: int = 128) -> None:
        self._svc = service
        self._cache: OrderedDict[tuple[str, str, str], tuple[SimulationRow, ...]] = OrderedDict()
        self._size = size

    async def attach(self, decision: Decision, *, installation_id: int) -> Decision:
        """``decision`` with its simulation when it changes the policy to a valid one."""
        if not any(f.path == POLICY_PATH and f.status != "removed" for f in decision.files):
            return decision
        repo = decision.repo
        contents = await read_contents(
            self._svc.gh,
            installation_id=installation_id,
            repo=repo,
            wanted={("head", POLICY_PATH)},
            base_sha=decision.base_sha,
            head_sha=decision.head_sha,
        )
        head_blob = f"head:{decision.head_sha}"
        new = parse_policy(contents.get("head", POLICY_PATH), blob=head_blob)
        config = await self._svc.configs.read(
            installation_id=installation_id, repo=repo, sha=decision.base_sha
        )
        current = config.parsed or parse_policy(config.policy_text, blob=config.policy_blob)
        if not (isinstance(new, LoadedPolicy) and isinstance(current, LoadedPolicy)):
            return decision
        key = (repo, current.digest, new.digest)
        if key not in self._cache:
            pulls = await self._history(installation_id, repo)
            self._cache[key] = await asyncio.to_thread(
                simulate,
                current=current,
                new=new,
                codeowners=config.codeowners,
                pulls=pulls,
                detectors=self._svc.detectors,
            )
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return dataclasses.replace(decision, simulation=self._cache[key])

    async def _history(self, installation_id: int, repo: str) -> list[tuple[PullSnapshot, str]]:
        gh = self._svc.gh
        answer = await gh.call(
            "GET",
            f"/repos/{repo}/pulls",
            installation_id=installation_id,
            params={"state": "closed", "sort": "updated", "direction": "desc", "per_page": 50},
            route="/pulls",
        )
        merged = [p for p in answer.data or [] if p.get("merged_at")][:HISTORY]
        found = await asyncio.gather(*(self._one(installation_id, repo, p) for p in merged))
        return [item for item in found if item is not None]

    async def _one(
        self, installation_id: int, repo: str, pull: Mapping[str, Any]
    ) -> tuple[PullSnapshot, str] | None:
        try:
            files = await self._svc.gh.paginate(
                f"/repos/{repo}/pulls/{int(pull['number'])}/files",
                installation_id=installation_id,
                route="/pulls/{n}/files",
            )
        except (ListCut, GitHubError):
            return None
        agent = {**pull, "user": {"login": AS_AGENT, "type": UserType.BOT.value}}
        snapshot = snapshot_of(agent, repo=repo, files=files, reviews=[], commits=[])
        return snapshot, str(pull.get("title") or "")
