"""Replay a repository's recent commits through the engine, as if an agent had opened them.

``python -m benchmarks.realworld REPO_PATH [--commits N] [--jsonl FILE]``

Each non-merge commit becomes one pull request: base = its first parent, head =
the commit, author an agent login (a Bot account), so every change is governed.
Policy and CODEOWNERS come from the parent, as the service reads them from the
base branch; without a policy file the built-in default applies. Git is read
through the same helpers ``gate check`` uses (``gate.localrepo``), then ``engine.needs`` and
``engine.evaluate`` decide, exactly as for a real pull request.

What it prints is what a maintainer needs to judge the defaults on real code:
decisions by outcome, crashes, engine time per decision (median, p95), the tier
distribution, denials by reason and findings by detector rule. ``--jsonl`` writes
one line per commit (files, tiers, reasons, findings; never file contents) so the
denials and a sample of the rest can be read against their diffs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from gate import engine
from gate.codeowners import LOCATIONS, CodeOwners
from gate.defaults import load_policy
from gate.detectors import builtin
from gate.localrepo import GitError, changed_files, git, show
from gate.model import Contents, PullSnapshot, Teams, UserType
from gate.policy import POLICY_PATH, InvalidPolicy
from gate.result import Decision, Reason

#: The PR author for every replayed commit: a Bot account, so the change is governed.
AGENT = "copilot-swe-agent[bot]"


@dataclass(slots=True)
class Tally:
    """Counts over a replay; ``report`` turns them into the printed summary."""

    decisions: int = 0
    crashes: int = 0
    #: Commits git could not read (a partial clone lacks some blobs): not the engine's fault.
    unreadable: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    file_tiers: Counter[str] = field(default_factory=Counter)
    denials: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    engine_seconds: list[float] = field(default_factory=list)
    total_seconds: list[float] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: every figure is a real sample."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))]


def commits(repo: Path, *, ref: str, count: int) -> list[tuple[str, str, str]]:
    """(sha, first parent, subject) of the ``count`` newest non-merge commits of ``ref``."""
    out = git(repo, "log", "--no-merges", f"-n{count}", "--format=%H%x00%P%x00%s", ref)
    found = []
    for line in out.decode("utf-8", "replace").splitlines():
        sha, parents, subject = line.split("\0", 2)
        if parents:  # a root commit has no base to compare with
            found.append((sha, parents.split()[0], subject))
    return found


def decide(repo: Path, *, sha: str, parent: str) -> tuple[Decision, float]:
    """The decision on ``parent..sha`` as an agent PR, and the engine's own seconds."""
    try:
        policy = load_policy(show(repo, parent, POLICY_PATH))
    except InvalidPolicy:
        policy = load_policy(None)
    codeowners = CodeOwners.empty()
    for location in LOCATIONS:
        text = show(repo, parent, location)
        if text is not None:
            codeowners = CodeOwners.parse(text, path=location)
            break
    files, complete = changed_files(repo, parent, sha)
    pull = PullSnapshot(
        repo=repo.resolve().name,
        number=0,
        author=AGENT,
        author_type=UserType.BOT,
        head_sha=sha,
        base_ref="main",
        base_sha=parent,
        files=files,
        files_complete=complete,
    )
    detectors = builtin()
    started = time.perf_counter()
    needed = engine.needs(policy=policy, codeowners=codeowners, pull=pull, detectors=detectors)
    spent = time.perf_counter() - started
    texts = {
        (side, path): show(repo, parent if side == "base" else sha, path)
        for side, path in needed.contents
    }
    started = time.perf_counter()
    decision = engine.evaluate(
        policy=policy,
        codeowners=codeowners,
        pull=pull,
        teams=Teams(),
        contents=Contents(texts=texts),
        detectors=detectors,
    )
    return decision, spent + time.perf_counter() - started


def record(decision: Decision, *, subject: str, seconds: float) -> dict[str, Any]:
    """One JSON line: what was decided and why, per file; no file contents."""
    return {
        "sha": decision.head_sha,
        "subject": subject,
        "outcome": decision.outcome.value,
        "tier": decision.tier,
        "summary": decision.summary,
        "engine_ms": round(seconds * 1e3, 3),
        "files": [
            {
                "path": f.path,
                "tier": f.tier,
                "denied": f.denied,
                "reasons": [f"{r.rule}: {r.detail}" for r in f.reasons],
                "findings": [f"{x.detector}:{x.rule}@{x.line}: {x.message}" for x in f.findings],
            }
            for f in decision.files
        ],
    }


def count(tally: Tally, decision: Decision) -> None:
    tally.decisions += 1
    tally.outcomes[decision.outcome.value] += 1
    tally.tiers[decision.tier or "(none)"] += 1
    for file in decision.files:
        tally.file_tiers[file.tier] += 1
        for finding in file.findings:
            tally.findings[f"{finding.detector}:{finding.rule}"] += 1
        if file.denied:
            for reason in {_denial(r) for r in file.reasons} - {None}:
                tally.denials[str(reason)] += 1


def _denial(reason: Reason) -> str | None:
    """A denying reason as a short group name: the detector rule or the deny pattern."""
    if reason.rule.startswith("tiers.") or reason.rule in ("default_tier", "unseen_content_tier"):
        return None
    if reason.rule != "scope.deny":
        return reason.rule
    _, sep, pattern = reason.detail.partition(" matches ")
    if sep:
        return "scope.deny " + pattern.split(":", 1)[0]
    return "scope.deny " + reason.detail.split(": ", 1)[0]


def replay(
    repo: Path, *, ref: str = "HEAD", limit: int = 250, jsonl: TextIO | None = None
) -> Tally:
    tally = Tally()
    for sha, parent, subject in commits(repo, ref=ref, count=limit):
        started = time.perf_counter()
        try:
            decision, seconds = decide(repo, sha=sha, parent=parent)
        except GitError:
            tally.unreadable += 1
            continue
        except Exception:  # a crash is a figure to report, not a reason to stop
            tally.crashes += 1
            tally.crashed.append(f"{sha[:12]} {traceback.format_exc(limit=3).splitlines()[-1]}")
            continue
        tally.total_seconds.append(time.perf_counter() - started)
        tally.engine_seconds.append(seconds)
        count(tally, decision)
        if jsonl is not None:
            jsonl.write(json.dumps(record(decision, subject=subject, seconds=seconds)) + "\n")
    return tally


def report(tally: Tally, *, name: str) -> str:
    def ms(samples: Sequence[float], fraction: float) -> str:
        return f"{percentile(samples, fraction) * 1e3:.1f} ms"

    def listing(counter: Counter[str]) -> str:
        ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{k} {v}" for k, v in ordered) or "none"

    lines = [
        f"repository: {name}",
        f"decisions: {tally.decisions}  crashes: {tally.crashes}  "
        f"unreadable commits: {tally.unreadable}",
        f"outcomes: {listing(tally.outcomes)}",
        f"engine per decision: median {ms(tally.engine_seconds, 0.5)}, "
        f"p95 {ms(tally.engine_seconds, 0.95)}",
        f"with git reads: median {ms(tally.total_seconds, 0.5)}, "
        f"p95 {ms(tally.total_seconds, 0.95)}",
        f"decision tiers: {listing(tally.tiers)}",
        f"file tiers: {listing(tally.file_tiers)}",
        f"denials by reason (files): {listing(tally.denials)}",
        f"findings by rule: {listing(tally.findings)}",
    ]
    lines += [f"crash: {line}" for line in tally.crashed]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.realworld",
        description="Replay a local clone's recent commits as agent pull requests.",
    )
    parser.add_argument("repo", metavar="REPO_PATH", type=Path)
    parser.add_argument("--commits", type=int, default=250, help="how many (default 250)")
    parser.add_argument("--ref", default="HEAD", help="where to start (default HEAD)")
    parser.add_argument("--jsonl", type=Path, help="write one JSON line per decision here")
    args = parser.parse_args(argv)
    try:
        if args.jsonl is None:
            tally = replay(args.repo, ref=args.ref, limit=args.commits)
        else:
            with args.jsonl.open("w", encoding="utf-8") as out:
                tally = replay(args.repo, ref=args.ref, limit=args.commits, jsonl=out)
    except GitError as error:
        print(f"realworld: error: {error}", file=sys.stderr)
        return 2
    print(report(tally, name=args.repo.resolve().name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
