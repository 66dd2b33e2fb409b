"""The one decide pipeline: facts in, a ``Decision`` out.

``gate check`` (a local git repository) and the service (GitHub) both call
:func:`decide`; they differ only in how they read facts, behind :class:`Facts`
(policy-bot's ``pull.Context`` is the model). The pipeline is read only: it
never writes, signs or publishes.

parse the base's policy → ask the engine what it needs → read exactly that →
scan new packages → evaluate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gate import delegation, engine, identity, override, tree
from gate.codeowners import CodeOwners
from gate.defaults import load_policy
from gate.detectors.base import Detector, ScanInput
from gate.detectors.dependencies import new_packages
from gate.detectors.manifests import Package
from gate.diff import PatchError, added_lines
from gate.model import Contents, PullSnapshot, ScanResult, Teams
from gate.policy import POLICY_PATH, InvalidPolicy, LoadedPolicy
from gate.result import Decision


@dataclass(frozen=True, slots=True)
class Config:
    """The rules at the base: policy text (None: the built-in) and CODEOWNERS."""

    policy_text: str | None
    policy_blob: str
    codeowners: CodeOwners
    codeowners_blob: str
    #: The policy already parsed by the reader (off the event loop, cached by blob).
    parsed: LoadedPolicy | InvalidPolicy | None = None
    #: The organisation's policy (``OWNER/.github``), when there is one: it applies to a
    #: repository without a policy, and as a floor to one that says ``extend: org``.
    org: LoadedPolicy | InvalidPolicy | None = None


def parse_policy(
    text: str | None, *, blob: str, path: str = POLICY_PATH
) -> LoadedPolicy | InvalidPolicy:
    """The policy, or the error that says why it is invalid (never raised)."""
    try:
        return load_policy(text, blob=blob, path=path)
    except InvalidPolicy as error:
        return error


class Facts(Protocol):
    """What the pipeline reads about one pull request; each method is read only."""

    async def pull(self) -> PullSnapshot:
        """The pull request at its current head: files, reviews, commits, confirmations."""
        ...

    async def config(self, *, base_sha: str) -> Config:
        """Policy and CODEOWNERS at ``base_sha``, never at the head."""
        ...

    async def inputs(self, *, needs: engine.Needs, pull: PullSnapshot) -> tuple[Teams, Contents]:
        """The team memberships and file texts the engine asked for."""
        ...

    async def scan(self, *, packages: Sequence[Package], head_sha: str) -> ScanResult | None:
        """The supply-chain scan of ``packages``; None when this reader cannot scan."""
        ...


def packages_added(pull: PullSnapshot, contents: Contents) -> list[Package]:
    """Packages the pull request adds or re-sources, for the supply-chain scan."""
    packages: list[Package] = []
    for file in pull.files:
        try:
            added = added_lines(file.patch) if file.patch else ()
        except PatchError:
            added = ()
        packages.extend(new_packages(ScanInput(file=file, added=added, contents=contents)))
    return packages


async def decide(*, facts: Facts, detectors: Mapping[str, Detector]) -> Decision:
    """The decision for the pull request ``facts`` describes, at its current head."""
    pull = await facts.pull()
    config = await facts.config(base_sha=pull.base_sha)
    policy = config.parsed or parse_policy(config.policy_text, blob=config.policy_blob)
    if isinstance(policy, InvalidPolicy):
        label = f"{pull.base_ref}:{POLICY_PATH}"
        return engine.error_decision(
            pull=pull,
            message="the base branch's policy file is invalid",
            notes=[e.format(label) for e in policy.errors],
        )
    floor = None
    if config.policy_text is None and config.org is not None:
        policy = config.org  # the organisation's policy stands in for a missing one
    elif policy.policy.extend == "org":
        floor = config.org
    for rules in (policy, floor):
        if isinstance(rules, InvalidPolicy):
            return engine.error_decision(
                pull=pull,
                message="the organisation's policy is invalid",
                notes=[e.format("organisation policy") for e in rules.errors],
            )
    assert not isinstance(policy, InvalidPolicy)
    if policy.policy.extend == "org" and floor is None and config.policy_text is not None:
        return engine.error_decision(
            pull=pull,
            message="the policy says 'extend: org' but the organisation has no policy "
            "(OWNER/.github: .github/merge-gate.yml) that merge-gate can read",
        )
    decision = await _evaluate(
        facts=facts, pull=pull, policy=policy, config=config, detectors=detectors
    )
    if isinstance(floor, LoadedPolicy):
        under_org = await _evaluate(
            facts=facts, pull=pull, policy=floor, config=config, detectors=detectors
        )
        return tree.floor(decision, under_org)
    return decision


async def _evaluate(
    *,
    facts: Facts,
    pull: PullSnapshot,
    policy: LoadedPolicy,
    config: Config,
    detectors: Mapping[str, Detector],
) -> Decision:
    """One policy's decision. Delegation and break-glass are each policy's own: under an
    organisation floor, an override counts only where both policies allow it."""
    delegated = delegation.find(policy=policy.policy, pull=pull)
    if delegated:  # whoever asked the agent does not approve its work
        pull = dataclasses.replace(pull, delegates=delegation.logins(delegated))
    needs = engine.needs(
        policy=policy, codeowners=config.codeowners, pull=pull, detectors=detectors
    )
    if pull.overrides:  # who may break the glass: members of the policy's teams
        teams_wanted = needs.teams | override.teams_of(policy.policy)
        needs = dataclasses.replace(needs, teams=teams_wanted)
    teams, contents = await facts.inputs(needs=needs, pull=pull)
    packages = packages_added(pull, contents)
    if packages:
        scan = await facts.scan(packages=packages, head_sha=pull.head_sha)
        if scan is not None:
            pull = dataclasses.replace(pull, scans=(scan,))
    decision = engine.evaluate(
        policy=policy,
        codeowners=config.codeowners,
        pull=pull,
        teams=teams,
        contents=contents,
        detectors=detectors,
        codeowners_blob=config.codeowners_blob,
    )
    if delegated:
        said = [f"@{d.login} ({d.source})" for d in delegated if d.login]
        note = (
            f"The agent worked for {', '.join(said)}: their approval does not count."
            if said
            else "Agent session recorded; no delegating human is named."
        )
        decision = dataclasses.replace(
            decision, delegation=delegated, notes=(*decision.notes, note)
        )
    if pull.overrides:
        decision = override.apply(
            decision,
            policy=policy.policy,
            pull=pull,
            teams=teams,
            excluded=identity.never_counts(pull=pull),
        )
    return decision
