"""Chaos, long: the CI chaos drill ten times larger (``--quick``: the CI size).

Two ``gate serve --no-worker`` receivers and two ``gate worker`` processes on a
private Redis (AOF), 500 agent pull requests and 2,000 deliveries (duplicates and
shuffled arrivals included), while a supervisor SIGKILLs a random process every
~3 s and restarts it, Redis is restarted once and the fake GitHub answers a fifth
of the calls with a 502, a 503, a secondary rate limit or a dropped connection.
The drill is :mod:`tests.chaos.drill`; the figures are its totals:

- ``wrong``, ``lost``, ``duplicates``, ``unsafe``, ``dead_letters``: each should be 0
  (final check runs with another conclusion than the engine's, PRs without one or
  deliveries never acknowledged, heads with two check runs, passing runs on heads
  the engine blocks, jobs given up);
- ``kills``, ``redis_restarts``, ``faults``: the chaos that happened;
- ``drain_seconds``: last delivery sent -> every final check run right, queue empty.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.common import started_fake
from tests.chaos.drill import drill

#: Ten times the CI drill's calls need more than GitHub's 5,000 an hour.
RATE_LIMIT = 100_000


def run(*, quick: bool = False) -> dict[str, Any]:
    scale = 1 if quick else 10
    with (
        started_fake(rate_limit=RATE_LIMIT) as fake,
        tempfile.TemporaryDirectory(prefix="bench-chaos-") as directory,
    ):
        totals = drill(
            fake,
            Path(directory),
            mode="redis",
            prs=50 * scale,
            sends=200 * scale,
            seed=7,
            spread=12.0 * (1 if quick else 6),
            drain_timeout=60.0 * (1 if quick else 5),
            log=print,
        )
    print(totals.line())
    result = asdict(totals)
    for name in ("wrong", "lost", "duplicates", "unsafe"):
        result[f"{name}_examples"] = result.pop(name)[:10]
        result[name] = len(getattr(totals, name))
    missing = [x for x in totals.lost if x.startswith("#")]  # PRs without a final check run
    result["final_correct"] = totals.prs - len(totals.wrong) - len(missing)
    result["faults_injected"] = sum(totals.faults.values())
    result["line"] = totals.line()
    return result


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--long" not in sys.argv), indent=2, default=str))
