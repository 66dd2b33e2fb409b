"""Smoke tests of the benchmarks: they run and report the figures the table reads.

Never a timing assertion: benchmarks measure, they do not pass or fail. Each
service benchmark runs at its ``quick`` scale (real subprocesses: marked slow);
the command line and the table are checked on canned results (fast).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import BENCHMARKS, Row, main, register, run_cli, table
from benchmarks.bench_ack import parse_wrk
from benchmarks.bench_flood import plan

#: benchmark -> keys its result must have (what the table and docs read).
EXPECTED = {
    "ack": {"connections", "body_bytes", "load_tool", "sqlite", "redis"},
    "calls": {"first_cold", "first", "review", "push", "violations"},
    "latency": {"cold", "latency_50ms", "latency_0ms", "goal_round_trips", "p50_ms"},
    "memory": {
        "idle_rss_mb",
        "after_rss_mb",
        "peak_rss_mb",
        "decisions",
        "waves",
        "goal_mb",
        "marginal_kb_per_decision",
    },
    "hook": {"ours", "in_process", "bash", "ours_cpu", "python_floor", "ratio_p50", "goal_p50_ms"},
    "flood": {
        "drained",
        "drain_seconds",
        "evaluations",
        "github_calls",
        "rate_limit_used",
        "final_correct",
        "final_checked",
        "stale_check_runs",
        "stale_updates",
    },
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_quick_run_reports_the_expected_figures(name: str) -> None:
    module = importlib.import_module(BENCHMARKS[name].module)
    result = module.run(quick=True)
    assert EXPECTED[name] <= set(result)
    json.dumps(result)  # everything goes into the JSON file
    rows = BENCHMARKS[name].summary(result)
    assert rows
    assert all(row.benchmark == name for row in rows)
    if name == "ack":
        assert "ratio" in result["sqlite"]
        assert {"bare", "webhook"} <= set(result["sqlite"]["at_200_rps"])
    if name == "flood":
        assert result["final_correct"] == result["final_checked"]
        assert result["violations"] == 0
    if name in ("calls", "latency", "memory"):
        assert result["violations"] == 0


def test_the_bench_subcommand_takes_the_same_flags() -> None:
    parser = argparse.ArgumentParser(prog="gate")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--quick", "--only", "calls,flood", "--json", "x.json"])
    assert args.func is run_cli
    assert (args.quick, args.only, args.json) == (True, "calls,flood", "x.json")


def test_unknown_benchmark_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--only", "calls,nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_a_crashing_benchmark_is_reported_and_the_json_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks import __main__ as bench_main

    def boom(bench: Any, quick: bool) -> dict[str, Any]:
        raise RuntimeError("no service")

    monkeypatch.setattr(bench_main, "_call", boom)
    out = tmp_path / "results.json"
    assert main(["--only", "calls", "--json", str(out)]) == 1
    document = json.loads(out.read_text())
    assert "no service" in document["results"]["calls"]["error"]
    assert "crashed" in capsys.readouterr().out


def test_table_is_one_markdown_table() -> None:
    text = table(
        [
            Row("ack", "sqlite: webhook ÷ bare", 0.61, "≥ 0.5", True, "1000/s vs 1640/s"),
            Row("engine", "figures | more", None, "—", None, "a|b"),
        ]
    )
    lines = text.splitlines()
    assert len(lines) == 4
    # A "|" inside a cell is escaped, so every row keeps its six columns.
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 7 for line in lines)
    assert "| 0.61 |" in lines[2]


def test_summaries_of_foreign_results_fall_back_to_their_ratios() -> None:
    from benchmarks.__main__ import Bench, _summarize

    bench = Bench("x", "x", lambda r: [Row("x", r["missing"], None, "", None, "")])
    rows = _summarize("x", bench, {"a": {"ratio": 2.5}, "seconds": 1.0})
    assert [(r.measure, r.ratio) for r in rows] == [("a.ratio", 2.5)]


def test_wrk_output_is_parsed() -> None:
    output = """Running 2s test @ http://127.0.0.1:1/bare
  1 threads and 32 connections
  Latency Distribution
     50%    5.12ms
     75%    6.00ms
     90%    9.10ms
     99%   38.45ms
  11081 requests in 2.04s, 1.82MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   5421.38
"""
    figures = parse_wrk(output)
    assert figures["requests_per_second"] == 5421.38
    assert (figures["p50_ms"], figures["p99_ms"]) == (5.12, 38.45)
    assert (figures["requests"], figures["non_2xx"]) == (11081, 3)


def test_flood_plan_keeps_each_prs_events_in_order() -> None:
    steps = plan(prs=20, pushes=5, seed=3)
    for number in range(1, 21):
        mine = [s for s in steps if s.number == number]
        assert mine[0].action == "opened"
        pushes = [s.version for s in mine if s.action == "synchronize"]
        assert pushes == [1, 2, 3, 4, 5]
        # A review always concerns the head the PR had when it was submitted.
        head = None
        for step in mine:
            if step.event == "pull_request":
                head = step.head
            else:
                assert step.head == head
    assert len({s.number for s in steps[:20]}) > 5  # interleaved, not PR after PR
