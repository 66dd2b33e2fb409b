"""``python -m benchmarks`` (also ``gate bench``): every benchmark, one table of ratios.

Each benchmark module has ``run()`` returning a dict; this runs them one after the
other in this process (the services under test are subprocesses), prints one table
whose ratios compare figures measured side by side in the same run, with absolute
figures as context, and writes every result to JSON. Benchmarks are never
pass/fail: the exit status is 0 unless a benchmark crashed (1) or the command line
was wrong (2). ``--quick`` scales every benchmark down (under ~2 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_JSON = "bench-results.json"


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    measure: str
    ratio: float | None
    goal: str
    #: True/False against the goal; None when there is no goal.
    meets: bool | None
    context: str


Summary = Callable[[dict[str, Any]], list[Row]]


@dataclass(frozen=True)
class Bench:
    module: str
    help: str
    summary: Summary
    #: Keyword arguments that scale a ``run()`` without a ``quick`` parameter down.
    quick_kwargs: dict[str, Any] = field(default_factory=dict)


# --- one summary per benchmark -----------------------------------------------------


def _ack(r: dict[str, Any]) -> list[Row]:
    rows = []
    for store in ("sqlite", "redis"):
        s = r.get(store, {})
        if "skipped" in s or "ratio" not in s:
            rows.append(
                Row(
                    "ack",
                    f"{store}: webhook ÷ bare req/s",
                    None,
                    "≥ 0.5",
                    None,
                    s.get("skipped", "not run"),
                )
            )
            continue
        w, b = s["at_200_rps"]["webhook"], s["at_200_rps"]["bare"]
        rows.append(
            Row(
                "ack",
                f"{store}: webhook ÷ bare req/s",
                s["ratio"],
                "≥ 0.5",
                s["ratio"] >= 0.5,
                f"{s['webhook_rps']}/s vs {s['bare_rps']}/s ({r['load_tool']}, "
                f"{r['connections']} conns, {r['body_bytes'] // 1024} kB bodies); "
                f"at 200 req/s p50/p99 {w['p50_ms']}/{w['p99_ms']} ms "
                f"(bare {b['p50_ms']}/{b['p99_ms']} ms)",
            )
        )
    return rows


def _calls(r: dict[str, Any]) -> list[Row]:
    rows = []
    cold = r["first_cold"]
    for step, label in (("first", "first evaluation"), ("review", "review"), ("push", "push")):
        s = r[step]
        context = (
            f"{s['calls_mean']} calls: {s.get('rest_calls_mean', s['calls_mean'])} REST "
            f"({s['rate_limited_calls_mean']} rate-limited) + {s.get('graphql_calls_mean', 0)} "
            f"GraphQL, vs minimum {s['minimum_mean']}, {s['samples']} samples"
        )
        if step == "first":
            context += f"; very first PR (cold caches): {cold['calls']} calls"
        rows.append(
            Row(
                "calls",
                f"GitHub calls per decision: {label} ÷ minimum",
                s["ratio"],
                "1.0",
                s["ratio"] <= 1.0,
                context,
            )
        )
    return rows


def _latency(r: dict[str, Any]) -> list[Row]:
    rows = []
    slow, fast = r["latency_50ms"], r["latency_0ms"]
    for kind, label in (("docs", "docs PR"), ("auth", "auth PR, requests reviewers")):
        s = slow[kind]
        rows.append(
            Row(
                "latency",
                f"webhook → check run p50, round trips of 50 ms ({label})",
                s["p50_round_trips"],
                f"≤ {r['goal_round_trips']:.1f} (2 RT + 30 ms)",
                s["p50_round_trips"] <= r["goal_round_trips"],
                f"p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms; ack {s['ack_p50_ms']} + pickup "
                f"{s['pickup_p50_ms']} + GitHub {s['github_p50_ms']} ms "
                f"({s['sequential_round_trips_median']} sequential RTs, {s['calls_median']} "
                f"calls); latency 0: p50 {fast[kind]['p50_ms']} ms",
            )
        )
    return rows


def _engine(r: dict[str, Any]) -> list[Row]:
    ratio = round(r["full_linearity_100k_over_25k"], 2)
    return [
        Row(
            "engine",
            "3000 files: time at 100k ÷ 25k added lines (full engine)",
            ratio,
            "≤ 4 (linear)",
            ratio <= 4.0,
            f"100k lines: core {r['core_100000']:.2f} s, full {r['full_100000']:.2f} s; "
            f"core 100k ÷ 25k {r['core_linearity_100k_over_25k']:.2f}",
        )
    ]


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _flat(f"{prefix}{k}.", v)]
    return [(prefix.rstrip("."), value)]


def _generic(name: str) -> Summary:
    """For a benchmark whose result shape this module does not know: its ratios."""

    def summary(r: dict[str, Any]) -> list[Row]:
        pairs = _flat("", r)
        numbers = [(k, v) for k, v in pairs if isinstance(v, int | float)]
        ratios = [(k, v) for k, v in numbers if any(w in k for w in ("ratio", "speedup"))]
        others = "; ".join(f"{k} {v:.4g}" for k, v in numbers if (k, v) not in ratios)[:300]
        if not ratios:
            return [Row(name, "(figures)", None, "—", None, others or "no numeric figures")]
        return [Row(name, k, round(float(v), 3), "—", None, others) for k, v in ratios[:4]]

    return summary


def _secrets(r: dict[str, Any]) -> list[Row]:
    recall, std = r["recall"], r["stdlib"]
    fp, speed = std["false_positives"], std["throughput"]
    recall_ratio = recall["ours"] / recall["detect_secrets"] if recall["detect_secrets"] else None
    return [
        Row(
            "secrets",
            "scan throughput: ours ÷ detect-secrets (lines/s, stdlib)",
            round(speed["ratio"], 1),
            "—",
            None,
            f"{speed['ours_lines_per_s']:,.0f} vs {speed['detect_secrets_lines_per_s']:,.0f} "
            f"lines/s over {std['lines']:,} lines; worst 1 MB adversarial line "
            f"{r['adversarial_max_ms']:.1f} ms",
        ),
        Row(
            "secrets",
            "recall on a seeded corpus: ours ÷ detect-secrets",
            None if recall_ratio is None else round(recall_ratio, 2),
            "—",
            None,
            f"{recall['ours']:.1%} vs {recall['detect_secrets']:.1%} of "
            f"{recall['planted']} planted; false positives on the stdlib: ours "
            f"{fp['ours']['lines']} lines, detect-secrets {fp['detect_secrets']['lines']}",
        ),
    ]


def _memory(r: dict[str, Any]) -> list[Row]:
    after, idle = r["after_rss_mb"], r["idle_rss_mb"]
    return [
        Row(
            "memory",
            f"RSS after {r['decisions']} decisions ÷ idle RSS",
            round(after / idle, 2),
            f"< {r['goal_mb']:.0f} MB after 1,000",
            after < r["goal_mb"],
            f"idle {idle} MB, after the first {r['waves'][0]['decisions']} decisions "
            f"{r['waves'][0]['rss_mb']} MB, after {after} MB, peak {r['peak_rss_mb']} MB; "
            f"{r['marginal_kb_per_decision']} kB per decision after the first wave; "
            f"{r['waves'][-1]['seconds']} s for all",
        )
    ]


def _flood(r: dict[str, Any]) -> list[Row]:
    ratio = r["evaluations_per_push"]
    fits = "fits" if r["fits_base_rate_limit"] else "exceeds"
    rows = [
        Row(
            "flood",
            f"{r['prs']} PRs × {r['pushes_per_pr']} pushes: evaluations ÷ pushes",
            ratio,
            "≪ 1 (coalescing)",
            ratio < 0.5,
            f"{r['evaluations']} evaluations for {r['deliveries']} deliveries; drained "
            f"{'in' if r['drained'] else 'NOT, after'} {r['drain_seconds']} s"
            f"{' (rate limit spent)' if r.get('rate_limit_exhausted') else ''}; "
            f"{r['github_calls']} GitHub calls ({r['rate_limit_used']} rate-limited, "
            f"{fits} 5,000/h)",
        ),
        Row(
            "flood",
            "final check runs correct ÷ PRs",
            round(r["final_correct"] / max(r["final_checked"], 1), 3),
            "1.0",
            r["final_correct"] == r["final_checked"],
            f"{r['final_correct']}/{r['final_checked']}; stale heads: "
            f"{r['stale_check_runs']} check runs created, {r['stale_updates']} updated "
            f"after a push superseded the head; {r['dead_letters']} dead letters",
        ),
    ]
    if "evaluations_per_pr" in r:
        rows.append(
            Row(
                "flood",
                "evaluations ÷ PRs",
                r["evaluations_per_pr"],
                "≤ 1.2",
                r["evaluations_per_pr"] <= 1.2,
                f"REST calls ÷ PRs {r['rest_calls_per_pr']} (goal ≤ 3); "
                f"{r['lost_deliveries']} deliveries lost",
            )
        )
    quiet = r.get("quiet")
    if isinstance(quiet, dict) and quiet.get("flood_over_idle") is not None:
        rows.append(
            Row(
                "flood",
                "quiet repository: p95 decision latency during ÷ before the flood",
                quiet["flood_over_idle"],
                "≤ 2",
                quiet["flood_over_idle"] <= 2,
                f"p95 {quiet['flood_p95_ms']} ms during, {quiet['idle_p95_ms']} ms idle; "
                f"a push every {quiet['period_s']} s",
            )
        )
    return rows


def _store(r: dict[str, Any]) -> list[Row]:
    rows = []
    for kind, s in r.items():
        if "ack_ratio" not in s:
            continue
        ack, burst = s["ack_ratio"], s["burst"]
        http = s.get("ack_ratio_http")
        over_http = f"; over uvicorn {http['ratio']}" if isinstance(http, dict) else ""
        rows.append(
            Row(
                "store",
                f"{kind}: in-process ASGI accept ÷ bare req/s",
                ack["ratio"],
                "—",
                None,
                f"{ack['accepting_per_second']}/s vs {ack['bare_per_second']}/s; accept "
                f"{s['accept_sequential']['per_second']}/s alone, "
                f"{s['accept_concurrent']['per_second']}/s at 64; burst of 10 → "
                f"{burst['evaluations_mean']} evaluations{over_http}",
            )
        )
    return rows


def _signing(r: dict[str, Any]) -> list[Row]:
    rows = []
    for key in ("sign_append_sqlite", "sign_append_redis"):
        if key in r:
            p50 = r[key]["p50_ms"]
            rows.append(
                Row(
                    "signing",
                    f"{key.replace('_', ' ')}: p50 ÷ 1 ms",
                    round(p50 / 1.0, 3),
                    "≤ 1.0",
                    p50 <= 1.0,
                    f"p50 {p50} ms, p99 {r[key]['p99_ms']} ms; sign only "
                    f"p50 {r['sign_only']['p50_ms']} ms",
                )
            )
    verify = r.get("audit_verify", {})
    if verify:
        rows.append(
            Row(
                "signing",
                "audit verify (figures)",
                None,
                "—",
                None,
                f"{r['audit_log_build']['entries']} entries in {verify['seconds']} s "
                f"({verify['entries_per_second']}/s), exit {verify['exit']}",
            )
        )
    return rows


def _hook(r: dict[str, Any]) -> list[Row]:
    rows = []
    for kind in ("write", "read", "shell"):
        ours, bash = r["ours"][kind], r["bash"][kind]
        cpu = r["ours_cpu"][kind]
        rows.append(
            Row(
                "hook",
                f"gate hook {kind}: p50 ÷ 80 ms",
                round(ours["p50_ms"] / r["goal_p50_ms"], 2),
                "≤ 1.0",
                ours["p50_ms"] <= r["goal_p50_ms"],
                f"p50/p95 {ours['p50_ms']}/{ours['p95_ms']} ms (CPU {cpu['p50_ms']} ms) vs bash "
                f"grep hook {bash['p50_ms']}/{bash['p95_ms']} ms; in-process "
                f"{r['in_process'][kind]['p50_ms']} ms; python -c pass "
                f"{r['python_floor']['p50_ms']} ms",
            )
        )
    return rows


def _chaos(r: dict[str, Any]) -> list[Row]:
    bad = r["wrong"] + r["lost"] + r["duplicates"] + r["unsafe"] + r["dead_letters"]
    return [
        Row(
            "chaos",
            f"{r['prs']} PRs under kills and faults: final check runs correct ÷ PRs",
            round(r["final_correct"] / max(r["prs"], 1), 3),
            "1.0",
            r["final_correct"] == r["prs"] and bad == 0,
            f"{r['sends']} deliveries ({r['distinct']} distinct), {r['kills']} kills, "
            f"{r['redis_restarts']} Redis restart, {r['faults_injected']} faults in "
            f"{r['github_calls']} calls; {r['check_runs']} check runs; wrong {r['wrong']}, "
            f"lost {r['lost']}, duplicates {r['duplicates']}, unsafe {r['unsafe']}, dead "
            f"letters {r['dead_letters']}; drained {r['drain_seconds']:.1f} s after the last "
            f"send; audit verify exit {r['audit'][0]}",
        )
    ]


BENCHMARKS: dict[str, Bench] = {
    "ack": Bench("benchmarks.bench_ack", "webhook ack path vs a bare endpoint", _ack),
    "calls": Bench("benchmarks.bench_calls", "GitHub calls per decision", _calls),
    "latency": Bench("benchmarks.bench_latency", "webhook -> check-run latency", _latency),
    "engine": Bench("benchmarks.bench_engine", "3000-file / 100k-line engine run", _engine),
    "secrets": Bench(
        "benchmarks.bench_secrets",
        "secret scanning vs detect-secrets",
        _secrets,
        # What its own --quick does.
        quick_kwargs={"stdlib_every": 8, "peer_limit": 3.0},
    ),
    "memory": Bench("benchmarks.bench_memory", "RSS idle and after 1,000 decisions", _memory),
    "flood": Bench("benchmarks.bench_flood", "500 agent PRs x 5 pushes", _flood),
    "store": Bench("benchmarks.bench_store", "store accept and coalescing", _store),
    "chaos": Bench("benchmarks.bench_chaos", "chaos drill x10: 500 PRs, kills, faults", _chaos),
    "signing": Bench(
        "benchmarks.bench_signing",
        "signing, audit append and verify",
        _signing,
        quick_kwargs={"decisions": 200, "log_entries": 20_000},
    ),
    "hook": Bench("benchmarks.bench_hook", "gate hook per call vs a bash grep hook", _hook),
}


# --- running -----------------------------------------------------------------------


def _summarize(name: str, bench: Bench, result: dict[str, Any]) -> list[Row]:
    """The benchmark's rows; its ratios as found when its result changed shape."""
    try:
        return bench.summary(result)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as error:
        print(f"[{name}] summary failed ({error!r}); generic rows", file=sys.stderr)
        return _generic(name)(result)


def _call(bench: Bench, quick: bool) -> dict[str, Any]:
    module = importlib.import_module(bench.module)
    run = module.run
    parameters = inspect.signature(run).parameters
    kwargs: dict[str, Any] = {}
    if "quick" in parameters:
        kwargs["quick"] = quick
    elif quick:
        kwargs = {k: v for k, v in bench.quick_kwargs.items() if k in parameters}
    # Their own progress output would break the one table: it goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        result: dict[str, Any] = run(**kwargs)
    return result


def _git_commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return done.stdout.strip() + (" (+ uncommitted changes)" if _dirty() else "")
    return "unknown"


def _dirty() -> bool:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5
        )
        return bool(done.stdout.strip())
    return False


def _fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def table(rows: Sequence[Row]) -> str:
    """The rows as one Markdown table (readable as is in a terminal)."""
    meets = {True: "yes", False: "**no**", None: "—"}
    lines = [
        "| benchmark | measure | ratio | goal | meets | context (absolute figures) |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for row in rows:
        cells = [row.benchmark, row.measure, _fmt_ratio(row.ratio), row.goal]
        cells += [meets[row.meets], row.context]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def run_benchmarks(names: Sequence[str], *, quick: bool, json_path: Path) -> int:
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "commit": _git_commit(),
        "wrk": shutil.which("wrk") is not None,
        "loadavg_before": os.getloadavg(),
        "seconds": {},
    }
    results: dict[str, Any] = {}
    rows: list[Row] = []
    crashed = False
    total = time.monotonic()
    for name in names:
        bench = BENCHMARKS[name]
        print(f"[{name}] {bench.help} …", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            results[name] = _call(bench, quick)
            rows += _summarize(name, bench, results[name])
        except Exception as error:
            crashed = True
            results[name] = {
                "error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(),
            }
            rows.append(
                Row(name, bench.help, None, "—", None, f"crashed: {results[name]['error']}")
            )
            print(results[name]["traceback"], file=sys.stderr)
        meta["seconds"][name] = round(time.monotonic() - started, 1)
        print(f"[{name}] {meta['seconds'][name]} s", file=sys.stderr, flush=True)
    meta["seconds"]["total"] = round(time.monotonic() - total, 1)
    meta["loadavg_after"] = os.getloadavg()
    document = {"meta": meta, "table": [asdict(r) for r in rows], "results": results}
    json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(table(rows))
    print(
        f"\n{'quick' if quick else 'full'} run, {meta['seconds']['total']} s, load average "
        f"{meta['loadavg_before'][0]:.2f} before / {meta['loadavg_after'][0]:.2f} after "
        f"on {meta['machine']}; every figure in {json_path}"
    )
    return 1 if crashed else 0


# --- command line ------------------------------------------------------------------


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="scaled down: about 2 minutes")
    parser.add_argument(
        "--only",
        metavar="NAME,...",
        help=f"run only these, comma-separated: {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        default=DEFAULT_JSON,
        help=f"where to write every figure (default {DEFAULT_JSON})",
    )


def register(subparsers: Any) -> None:
    """The ``gate bench`` subcommand."""
    parser = subparsers.add_parser(
        "bench",
        help="run every benchmark and print ratios",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(parser)
    parser.set_defaults(func=run_cli)


def run_cli(args: argparse.Namespace) -> int:
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            print(
                f"bench: unknown benchmark(s) {', '.join(unknown)}; "
                f"choose from {', '.join(BENCHMARKS)}",
                file=sys.stderr,
            )
            return 2
    return run_benchmarks(names, quick=args.quick, json_path=Path(args.json))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _arguments(parser)
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
