"""Memory of a real ``gate serve``: idle, and after 1,000 decisions.

The service runs as a subprocess with the test harness's environment pointed at a
fake GitHub in this process. RSS (``VmRSS`` in ``/proc/PID/status``) is read once it
answers ``/readyz`` and has idled a second, then after each wave of decisions:
250 agent PRs (``--quick``: 25) are opened, pushed, approved and pushed again, one
event per PR per wave, each wave delivered only once the previous one is decided,
so that none coalesces and every event is one decision (1,000 in all; quick: 100).
``VmHWM`` is the peak. The goal is under 150 MB after 1,000 decisions.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from benchmarks.common import (
    KINDS,
    GateProcess,
    Scenario,
    parse_metrics,
    sha,
    started_fake,
    wait_until,
)

GOAL_MB = 150.0
WAVES = ("opened", "push", "approve", "push")


def _mb(kb: int) -> float:
    return round(kb / 1024, 1)


def run(*, quick: bool = False) -> dict[str, Any]:
    prs = 25 if quick else 250
    results: dict[str, Any] = {"prs": prs, "goal_mb": GOAL_MB, "waves": []}
    # 1,000 decisions take 5,000+ requests: more than an installation's hourly
    # budget, which is not what this measures.
    with started_fake(rate_limit=1_000_000) as fake:
        scenario = Scenario(fake)
        with GateProcess(fake) as gate:
            time.sleep(1.0)  # let start-up allocations settle
            results["idle_rss_mb"] = _mb(gate.rss_kb())
            heads = {n: sha(n * 1000) for n in range(1, prs + 1)}
            decisions = 0
            started = time.monotonic()
            for version, wave in enumerate(WAVES):
                work = []
                for number, head in heads.items():
                    kind = KINDS[number % len(KINDS)]
                    if wave == "opened":
                        scenario.open_pull(number, kind, head)
                        event, action = "pull_request", "opened"
                    elif wave == "push":
                        heads[number] = head = sha(number * 1000 + version)
                        scenario.push(number, kind, head, version)
                        event, action = "pull_request", "synchronize"
                    else:
                        scenario.review(number, kind, head)
                        event, action = "pull_request_review", "submitted"
                    work.append(scenario.delivery(event, action, number=number, head=head))
                for body, headers in work:
                    gate.post(body, headers).raise_for_status()
                decisions += prs
                try:
                    wait_until(
                        functools.partial(_done, gate, decisions),
                        timeout=300,
                        what=f"{decisions} decisions",
                        every=0.1,
                    )
                except TimeoutError as error:
                    figures = gate.metrics()
                    raise TimeoutError(
                        f"{error}: {figures.get('merge_gate_decisions_total')} decisions, "
                        f"depth {figures.get('merge_gate_queue_depth')}, "
                        f"rate limit left {fake.rate_limit_remaining}; {gate.log_tail(3)}"
                    ) from None
                results["waves"].append(
                    {
                        "wave": wave,
                        "decisions": decisions,
                        "rss_mb": _mb(gate.rss_kb()),
                        "seconds": round(time.monotonic() - started, 1),
                    }
                )
            results["decisions"] = int(gate.metrics().get("merge_gate_decisions_total", 0))
            results["after_rss_mb"] = _mb(gate.rss_kb())
            results["peak_rss_mb"] = _mb(gate.rss_kb("VmHWM"))
            results["violations"] = len(fake.violations)
    results["growth_mb"] = round(results["after_rss_mb"] - results["idle_rss_mb"], 1)
    # The first wave pays for one-off allocations (imports, caches, pools); the waves
    # after it show what each further decision keeps.
    first = results["waves"][0]
    later = results["decisions"] - first["decisions"]
    results["marginal_kb_per_decision"] = round(
        (results["after_rss_mb"] - first["rss_mb"]) * 1024 / max(later, 1), 1
    )
    return results


def _done(gate: GateProcess, decisions: int) -> bool:
    figures = parse_metrics(gate.metrics_text())
    return (
        figures.get("merge_gate_decisions_total", 0) >= decisions
        and figures.get("merge_gate_queue_depth", 1) == 0
    )


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
