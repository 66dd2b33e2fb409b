"""What a new policy would have decided on pull requests already merged.

policy-bot's *simulate*, for a whole history: a pull request that changes the
policy shows, beside its own decision, how the new policy and the current one
judge the repository's last merged pull requests, so a reviewer sees what the
change does before it lands. Only the files count here (tiers and denials):
approvals given then were given under the old rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gate import engine
from gate.codeowners import CodeOwners
from gate.detectors.base import Detector
from gate.model import Contents, PullSnapshot, Teams
from gate.policy import LoadedPolicy
from gate.result import Decision, Outcome, SimulationRow


def _verdict(decision: Decision) -> str:
    if decision.outcome is Outcome.DENIED:
        return "denied"
    if decision.outcome is Outcome.ERROR:
        return "error"
    gated = [r for r in decision.requirements if r.kind == "approval" or not r.satisfied]
    return "gated" if gated else "CI only"


def simulate(
    *,
    current: LoadedPolicy,
    new: LoadedPolicy,
    codeowners: CodeOwners,
    pulls: Sequence[tuple[PullSnapshot, str]],
    detectors: Mapping[str, Detector],
) -> tuple[SimulationRow, ...]:
    """One row per (pull request, title), judged as an agent's change under both policies."""
    rows = []
    for pull, title in pulls:
        decided = [
            engine.evaluate(
                policy=policy,
                codeowners=codeowners,
                pull=pull,
                teams=Teams(),
                contents=Contents(),
                detectors=detectors,
            )
            for policy in (current, new)
        ]
        rows.append(
            SimulationRow(
                number=pull.number,
                title=title,
                current_tier=decided[0].tier,
                new_tier=decided[1].tier,
                current=_verdict(decided[0]),
                new=_verdict(decided[1]),
            )
        )
    return tuple(rows)
