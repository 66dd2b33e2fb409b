"""A 3000-file, 100k-added-line pull request through the engine.

Classification, CODEOWNERS and approvals alone (quiet detectors), then the
whole engine with the built-in content detectors; at three sizes to show the
cost is linear in added lines. Figures, not pass/fail.
"""

from __future__ import annotations

import random
import time
from typing import Any

from gate.codeowners import CodeOwners
from gate.defaults import default_policy
from gate.detectors import builtin
from gate.engine import evaluate
from gate.model import ChangedFile, Contents, FileStatus, PullSnapshot, Teams, UserType
from tests.factories import BASE, HEAD, QUIET, review

DIRS = [
    "app",
    "app/auth",
    "app/billing",
    "docs",
    "tests",
    "lib",
    "migrations",
    "web/src",
    "services/payments",
]
EXTS = [".py", ".ts", ".md", ".go", ".sql"]


def codeowners(rules: int = 200) -> str:
    lines = ["* @acme/devs"]
    lines += [f"/{d}/ @acme/team-{i % 20}" for i, d in enumerate(DIRS)]
    lines += [f"/{DIRS[i % len(DIRS)]}/sub{i}/ @user{i}" for i in range(rules - len(lines))]
    return "\n".join(lines) + "\n"


def snapshot(files: int, lines: int, seed: int = 7) -> PullSnapshot:
    rng = random.Random(seed)
    per = max(lines // files, 1)
    changed = []
    for i in range(files):
        path = f"{rng.choice(DIRS)}/sub{i % 300}/f{i}{rng.choice(EXTS)}"
        body = "".join(f"+    value_{j} = compute({j}, name='x{j}')\n" for j in range(per))
        changed.append(
            ChangedFile(
                path=path,
                status=FileStatus.ADDED,
                patch=f"@@ -0,0 +1,{per} @@\n{body}".rstrip("\n"),
                additions=per,
            )
        )
    reviews = tuple(review(f"user{i}", review_id=i + 1) for i in range(40))
    return PullSnapshot(
        repo="acme/app",
        number=1,
        author="devin-ai-integration[bot]",
        author_type=UserType.BOT,
        head_sha=HEAD,
        base_ref="main",
        base_sha=BASE,
        files=tuple(changed),
        reviews=reviews,
    )


def _time(fn: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run() -> dict[str, Any]:
    policy = default_policy()
    owners = CodeOwners.parse(codeowners())
    teams = Teams.of({f"acme/team-{i}": [f"user{i}"] for i in range(20)})
    detectors = builtin()
    results: dict[str, Any] = {}
    for lines in (25_000, 50_000, 100_000):
        pull = snapshot(3000, lines)
        for label, dets in (("core", QUIET), ("full", detectors)):
            seconds = _time(
                lambda pull=pull, dets=dets: evaluate(
                    policy=policy,
                    codeowners=owners,
                    pull=pull,
                    teams=teams,
                    contents=Contents(),
                    detectors=dets,
                )
            )
            results[f"{label}_{lines}"] = seconds
    results["core_linearity_100k_over_25k"] = results["core_100000"] / results["core_25000"]
    results["full_linearity_100k_over_25k"] = results["full_100000"] / results["full_25000"]
    return results


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:34} {value:.3f}")
