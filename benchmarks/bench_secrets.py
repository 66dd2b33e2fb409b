"""The secrets detector against detect-secrets, its test-only peer.

Five figures, each for both tools where it applies:

(a) recall on a seeded corpus: lines of generated, realistic code (Python,
    YAML, JSON, .env, shell, PEM) with ``per_kind`` planted secrets of each
    kind; a planted secret counts as found when the tool reports its line.
(b) false positives on clean real code: every ``*.py`` of the Python standard
    library on this machine (``sysconfig.get_paths()["stdlib"]``, read at run
    time, never committed); every reported line counts.
(c) throughput in lines per second over (b): ours end to end (read, split,
    scan added lines) and scan only; detect-secrets through its public API
    (``SecretsCollection.scan_file`` under ``default_settings``).
(d) 1 MB adversarial lines: milliseconds for ours (best of 5, wall and CPU,
    after one warm-up run, plus the first cold run), and detect-secrets in a
    child process with a time limit.
(e) look-alikes (``secret_lookalikes``): realistic non-secrets that must not
    deny, and long random credentials in test and docs files that must (ours).

detect-secrets: https://github.com/Yelp/detect-secrets (Apache-2.0), used only
here and never imported by ``gate``. Run with
``python -m benchmarks.bench_secrets [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import multiprocessing
import random
import string
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.secret_lookalikes import LOOKALIKES, real_in_fixtures
from gate.detectors.base import ScanInput
from gate.detectors.secrets import SecretsDetector
from gate.diff import AddedLine
from gate.model import ChangedFile, Contents, FileStatus

ALNUM = string.ascii_letters + string.digits
BASE64 = ALNUM + "+/"
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
DETECTOR = SecretsDetector()
MB = 1_000_000


# --------------------------------------------------------------------------
# (a) the seeded corpus


@dataclass
class SourceFile:
    path: str
    lines: list[str] = field(default_factory=list)
    #: Line number (1-based) of each planted secret -> its kind.
    planted: dict[int, str] = field(default_factory=dict)


class Gen:
    """Deterministic generator of filler code and of secrets to plant."""

    WORDS: tuple[str, ...] = (
        "user",
        "order",
        "item",
        "cart",
        "price",
        "total",
        "account",
        "session",
    )
    WORDS += ("request", "response", "cache", "queue", "event", "handler", "config")
    WORDS += ("client", "server", "report", "invoice", "payment", "status", "result")
    WORDS += ("value", "index", "count", "limit", "offset", "page", "retry", "timeout")

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def s(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def word(self) -> str:
        return self.rng.choice(self.WORDS)

    def name(self) -> str:
        return "_".join(self.word() for _ in range(self.rng.randint(1, 3)))

    def python(self) -> str:
        r = self.rng
        n, m = self.name(), self.name()
        options = [
            f"def {n}({m}, *, {self.word()}=None):",
            f"    return {n}({m}, {r.randint(0, 999)})",
            f"    {n} = {m}.get('{self.word()}', {r.randint(0, 99)})",
            f"    if {n} is None or {m} > {r.randint(1, 50)}:",
            f"        raise ValueError(f'bad {self.word()}: {{{n}!r}}')",
            f"import {self.word()}",
            f"from {self.word()}.{self.word()} import {n}",
            f"# {' '.join(self.word() for _ in range(r.randint(3, 9)))}",
            f"    for {self.word()} in range({r.randint(1, 100)}):",
            f"    log.info('{self.word()} %s for %s', {n}, {m})",
            f"{n.upper()} = {r.randint(0, 10_000)}",
            f"class {self.word().title()}{self.word().title()}(Base):",
            f"    {n}: dict[str, int] = field(default_factory=dict)",
            f"    self.{n} = {m}",
            "",
            # Realistic non-secrets that look random: digests, ids, versions.
            f"COMMIT = '{self.s(40, HEX)}'" if r.random() < 0.05 else "    pass",
            f"request_id = '{self.uuid()}'" if r.random() < 0.05 else "    continue",
        ]
        return r.choice(options)

    def yaml(self) -> str:
        r = self.rng
        return r.choice(
            [
                f"{self.name()}: {r.randint(0, 500)}",
                f"  {self.name()}: {self.word()}-{self.word()}",
                f"  - name: {self.word()}",
                f"    image: registry.example/{self.word()}:{r.randint(1, 9)}.{r.randint(0, 20)}",
                f"    checksum: sha256:{self.s(64, HEX)}" if r.random() < 0.1 else "    ports: []",
            ]
        )

    def json(self) -> str:
        r = self.rng
        return r.choice(
            [
                f'  "{self.name()}": {r.randint(0, 500)},',
                f'  "{self.name()}": "{self.word()}",',
                f'  "{self.word()}": {{"enabled": true}},',
                f'  "integrity": "sha512-{self.s(86, BASE64)}==",'
                if r.random() < 0.1
                else '  "private": true,',
            ]
        )

    def env(self) -> str:
        return (
            f"{self.name().upper()}={self.rng.choice([self.word(), str(self.rng.randint(1, 99))])}"
        )

    def uuid(self) -> str:
        h = self.s(32, HEX)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def jwt(self) -> str:
        def enc(obj: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        claims = {"sub": self.s(12), "iat": 1_700_000_000 + self.rng.randint(0, 10**6)}
        return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(claims)}.{self.s(43, URLSAFE)}"

    def pem(self, kind: str) -> list[str]:
        block = " BLOCK" if kind == "PGP " else ""
        begin = f"-----BEGIN {kind}PRIVATE KEY{block}-----"
        end = f"-----END {kind}PRIVATE KEY{block}-----"
        if block:
            body = ["Version: GnuPG v2", "", *[self.s(64, BASE64) for _ in range(6)]]
        else:
            body = [self.s(64, BASE64) for _ in range(8)]
        return [begin, *body, end]


# kind -> (file kind, builder of the line(s) to plant; the first line is the one counted)
Plant = Callable[[Gen], list[str]]
PLANTS: dict[str, tuple[str, Plant]] = {
    "aws-access-key-id": ("py", lambda g: [f'AWS_ACCESS_KEY_ID = "AKIA{g.s(16, B32)}"']),
    "aws-secret-access-key": ("py", lambda g: [f'aws_secret_access_key = "{g.s(40, BASE64)}"']),
    "github-pat": ("py", lambda g: [f'GITHUB_TOKEN = "ghp_{g.s(36)}"']),
    "github-oauth": ("yaml", lambda g: [f"  oauth_token: gho_{g.s(36)}"]),
    "github-app": ("py", lambda g: [f'    headers["Authorization"] = "token ghs_{g.s(36)}"']),
    "github-fine-grained": ("env", lambda g: [f"GH_PAT=github_pat_{g.s(22)}_{g.s(59)}"]),
    "gitlab": (
        "py",
        lambda g: [f'gl = gitlab.Gitlab(URL, private_token="glpat-{g.s(20, URLSAFE)}")'],
    ),
    "slack-bot": (
        "py",
        lambda g: [
            f'client = WebClient(token="xoxb-{g.s(11, string.digits)}-'
            f'{g.s(13, string.digits)}-{g.s(24)}")'
        ],
    ),
    "slack-webhook": (
        "json",
        lambda g: [
            f'  "webhook": "https://hooks.slack.com/services/'
            f'T{g.s(10, B32)}/B{g.s(10, B32)}/{g.s(24)}",'
        ],
    ),
    "stripe": ("py", lambda g: [f'stripe.api_key = "sk_live_{g.s(24)}"']),
    "stripe-restricted": ("env", lambda g: [f"STRIPE_KEY=rk_live_{g.s(99)}"]),
    "google-api-key": ("json", lambda g: [f'  "apiKey": "AIza{g.s(35, URLSAFE)}",']),
    "azure-storage": (
        "py",
        lambda g: [
            f'CONN = "DefaultEndpointsProtocol=https;AccountName={g.word()};'
            f'AccountKey={g.s(86, BASE64)}==;EndpointSuffix=core.windows.net"'
        ],
    ),
    "npm": ("env", lambda g: [f"NPM_TOKEN=npm_{g.s(36)}"]),
    "pypi": ("env", lambda g: [f"TWINE_PASSWORD=pypi-AgEIcHlwaS5vcmc{g.s(160, URLSAFE)}"]),
    "openai": ("py", lambda g: [f'client = OpenAI(api_key="sk-proj-{g.s(156, URLSAFE)}")']),
    "anthropic": (
        "py",
        lambda g: [f'client = Anthropic(api_key="sk-ant-api03-{g.s(93, URLSAFE)}AA")'],
    ),
    "jwt": ("py", lambda g: [f'SESSION = "{g.jwt()}"']),
    "basic-auth-url": (
        "yaml",
        lambda g: [f"  url: postgresql://app:{g.s(16)}@db.{g.word()}.internal:5432/app"],
    ),
    "password-assignment": ("py", lambda g: [f'DB_PASSWORD = "{g.s(14, ALNUM + "!#%&*-_=+")}"']),
    "secret-in-json": ("json", lambda g: [f'  "client_secret": "{g.s(32)}",']),
    "secret-in-env": ("env", lambda g: [f"SECRET_KEY={g.s(40)}"]),
    "private-key-rsa": ("pem", lambda g: g.pem("RSA ")),
    "private-key-ec": ("pem", lambda g: g.pem("EC ")),
    "private-key-openssh": ("pem", lambda g: g.pem("OPENSSH ")),
    "private-key-pkcs8": ("pem", lambda g: g.pem("")),
    "private-key-dsa": ("pem", lambda g: g.pem("DSA ")),
    "private-key-pgp": ("pem", lambda g: g.pem("PGP ")),
}

FILE_KINDS = {
    "py": "app/{}.py",
    "yaml": "deploy/{}.yaml",
    "json": "config/{}.json",
    "env": "env/{}.env",
    "pem": "keys/{}.pem",
}


def seeded_corpus(*, lines: int, per_kind: int, seed: int) -> list[SourceFile]:
    """About ``lines`` lines of filler in files of each kind, with secrets planted."""
    g = Gen(seed)
    fill = {"py": g.python, "yaml": g.yaml, "json": g.json, "env": g.env, "pem": g.python}
    share = {"py": 0.6, "yaml": 0.15, "json": 0.15, "env": 0.05, "pem": 0.05}
    # Files of about 200 lines holding a handful of secrets each, as real ones
    # do (a file with dozens would also meet the detector's cap on findings).
    plants = Counter(file_kind for file_kind, _ in PLANTS.values())
    files: dict[str, list[SourceFile]] = {
        kind: [
            SourceFile(FILE_KINDS[kind].format(f"f{kind}{i}"))
            for i in range(
                max(4, int(lines * share[kind]) // 200, -(-plants[kind] * per_kind // 5))
            )
        ]
        for kind in FILE_KINDS
    }
    for kind, part in share.items():
        for _ in range(int(lines * part)):
            g.rng.choice(files[kind]).lines.append(fill[kind]())
    for secret_kind, (file_kind, plant) in PLANTS.items():
        for _ in range(per_kind):
            target = g.rng.choice(files[file_kind])
            at = g.rng.randint(0, len(target.lines))
            # Never inside another planted block (a key's lines stay together).
            while any(n <= at < n + _block_len(k) - 1 for n, k in target.planted.items()):
                at = g.rng.randint(0, len(target.lines))
            block = plant(g)
            # Shift the planted line numbers below the insertion point.
            target.planted = {
                (n + len(block) if n > at else n): k for n, k in target.planted.items()
            }
            target.lines[at:at] = block
            target.planted[at + 1] = secret_kind
    return [f for group in files.values() for f in group]


# --------------------------------------------------------------------------
# running both tools


def ours_findings(path: str, lines: list[str]) -> list[tuple[str, int | None]]:
    """(rule, line) of each denying finding, for ``lines`` added as lines 1..n of ``path``.

    Informational findings (fixtures in tests and docs) are listed on the check
    run but deny nothing, so they count neither as found nor as false positives.
    """
    file = ChangedFile(path, FileStatus.ADDED, patch="@@", additions=len(lines))
    added = tuple(AddedLine(n, text) for n, text in enumerate(lines, 1))
    findings = DETECTOR.scan(ScanInput(file=file, added=added, contents=Contents()))
    return [(f.rule, f.line) for f in findings if f.deny]


def ours(path: str, lines: list[str]) -> set[int]:
    """Lines with a finding; 0 stands for a whole-file (fail-closed) finding."""
    return {line or 0 for _, line in ours_findings(path, lines)}


def peer(paths: list[Path]) -> dict[str, set[int]]:
    """Lines detect-secrets reports, per file path, with its default plugins."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    found: dict[str, set[int]] = {}
    with default_settings():
        for path in paths:
            collection = SecretsCollection()
            collection.scan_file(str(path))
            found[str(path)] = {secret.line_number for _, secret in collection}
    return found


def recall(corpus: list[SourceFile]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for f in corpus:
            path = Path(tmp) / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(f.lines) + "\n", encoding="utf-8")
            paths.append(path)
        theirs = peer(paths)
        per_kind: dict[str, dict[str, int]] = {}
        false_pos = {"ours": 0, "detect_secrets": 0}
        for f, path in zip(corpus, paths, strict=True):
            mine = ours(f.path, f.lines)
            peer_lines = theirs[str(path)]
            for line, kind in f.planted.items():
                row = per_kind.setdefault(kind, {"planted": 0, "ours": 0, "detect_secrets": 0})
                row["planted"] += 1
                row["ours"] += line in mine
                row["detect_secrets"] += line in peer_lines
            # Lines of a planted block other than its first are not counted either way.
            planted_blocks = {
                n + k for n, kind in f.planted.items() for k in range(_block_len(kind))
            }
            false_pos["ours"] += len(mine - planted_blocks)
            false_pos["detect_secrets"] += len(peer_lines - planted_blocks)
    planted = sum(row["planted"] for row in per_kind.values())
    return {
        "lines": sum(len(f.lines) for f in corpus),
        "planted": planted,
        "ours": sum(row["ours"] for row in per_kind.values()) / planted,
        "detect_secrets": sum(row["detect_secrets"] for row in per_kind.values()) / planted,
        "per_kind": per_kind,
        "false_positive_lines": false_pos,
    }


def lookalikes() -> dict[str, Any]:
    """(e) Look-alikes that must not deny and real credentials in fixtures that must."""
    denied = [sample.path for sample in LOOKALIKES if ours(sample.path, sample.text.splitlines())]
    real = real_in_fixtures()
    missed = [sample.path for sample in real if not ours(sample.path, sample.text.splitlines())]
    return {
        "lookalikes": len(LOOKALIKES),
        "lookalikes_denied": denied,
        "real_in_fixtures": len(real),
        "real_in_fixtures_missed": missed,
    }


def _block_len(kind: str) -> int:
    return len(PLANTS[kind][1](Gen(0)))


# --------------------------------------------------------------------------
# (b) and (c): the standard library


def stdlib_files(*, every: int = 1) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    return files[::every]


def read_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError):
        return None


def stdlib(*, every: int) -> dict[str, Any]:
    files = [p for p in stdlib_files(every=every) if read_lines(p) is not None]
    texts = {p: read_lines(p) or [] for p in files}
    total = sum(len(lines) for lines in texts.values())

    # Ours, scan only: inputs built beforehand.
    inputs = [
        (
            ChangedFile(str(p), FileStatus.ADDED, patch="@@", additions=len(lines)),
            tuple(AddedLine(n, t) for n, t in enumerate(lines, 1)),
        )
        for p, lines in texts.items()
    ]
    ours_findings: list[tuple[str, int | None]] = []

    def scan_all() -> None:
        for file, added in inputs:
            findings = DETECTOR.scan(ScanInput(file, added, Contents()))
            ours_findings.extend((f.path, f.line) for f in findings)

    scan_only = _best(
        scan_all,
        runs=3,
        reset=ours_findings.clear,
    )
    # Ours, end to end: read, split, build the added lines, scan.
    end_to_end = _best(lambda: [ours(str(p), read_lines(p) or []) for p in files], runs=3)

    started = time.perf_counter()
    theirs = peer(files)
    peer_seconds = time.perf_counter() - started
    peer_findings = [(path, line) for path, lines in theirs.items() for line in lines]
    return {
        "corpus": f"{sysconfig.get_paths()['stdlib']} *.py"
        + (f" (every {every}th file)" if every > 1 else ""),
        "files": len(files),
        "lines": total,
        "false_positives": {
            "ours": {"lines": len(ours_findings), "files": len({p for p, _ in ours_findings})},
            "detect_secrets": {
                "lines": len(peer_findings),
                "files": len({p for p, _ in peer_findings}),
            },
        },
        "ours_examples": sorted(ours_findings)[:10],
        "throughput": {
            "ours_lines_per_s": total / end_to_end,
            "ours_scan_only_lines_per_s": total / scan_only,
            "detect_secrets_lines_per_s": total / peer_seconds,
            "ratio": (total / end_to_end) / (total / peer_seconds),
        },
    }


def _best(
    action: Callable[[], object], *, runs: int, reset: Callable[[], None] | None = None
) -> float:
    best = float("inf")
    for _ in range(runs):
        if reset is not None:
            reset()
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


# --------------------------------------------------------------------------
# (d) adversarial lines


def adversarial_lines() -> dict[str, str]:
    return {
        "a * 1M": "a" * MB,
        "'=' + spaces": "=" + " " * MB,
        "password= + spaces": "password=" + " " * MB + "x",
        "unclosed quote": 'password = "' + "a1" * (MB // 2),
        "AKIA repeated": "AKIA" * (MB // 4),
        "ghp_ + 1M alnum": "ghp_" + "a" * MB,
        "BEGIN + \\n escapes": "-----BEGIN PRIVATE KEY-----" + "\\n" * (MB // 2),
        "url user:pass run": "http://" + "a:" * (MB // 2),
        "eyJ run": "eyJ" + "a" * MB + ".",
        "token= repeated": "token=" * (MB // 6),
        "dense placeholders": 'password="changeme1" ' * (MB // 21),
        "dense JWT look-alikes": ("eyJ" + "a" * 12 + ".eyJ" + "b" * 12 + " ") * (MB // 32),
        "all keywords": _all_keywords(),
    }


def _all_keywords() -> str:
    from gate.detectors.secret_rules import RULES

    unit = " ".join(k for rule in RULES for k in rule.keywords) + " = ' \" "
    return (unit * (MB // len(unit) + 1))[:MB]


def _peer_one(line: str, out: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "line.py"
        path.write_text(line + "\n", encoding="utf-8")
        started = time.perf_counter()
        peer([path])
        out.put(time.perf_counter() - started)


def peer_timed(line: str, *, limit: float) -> float | None:
    """Seconds detect-secrets takes on ``line``, or None past ``limit`` (then stopped)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_peer_one, args=(line, queue))
    child.start()
    child.join(limit)
    if child.is_alive():
        child.terminate()  # the one process started above, by its handle
        child.join()
        return None
    return float(queue.get()) if not queue.empty() else None


def adversarial(*, peer_limit: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, line in adversarial_lines().items():
        lines = [line]
        started = time.process_time()
        cold_wall = time.perf_counter()
        findings = ours_findings("a.py", lines)
        cold_ms = (time.perf_counter() - cold_wall) * 1e3
        cold_cpu = (time.process_time() - started) * 1e3
        again = functools.partial(ours, "a.py", lines)
        wall = _best(again, runs=5) * 1e3
        cpu = min(_cpu(again) for _ in range(5)) * 1e3
        seconds = peer_timed(line, limit=peer_limit) if peer_limit > 0 else None
        results[name] = {
            "ours_ms": wall,
            "ours_cpu_ms": cpu,
            "ours_first_run_ms": cold_ms,
            "ours_first_run_cpu_ms": cold_cpu,
            "ours_findings": sorted({rule for rule, _ in findings}),
            "detect_secrets_ms": None if seconds is None else seconds * 1e3,
        }
    return results


def _cpu(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return time.process_time() - started


# --------------------------------------------------------------------------


def run(
    *,
    corpus_lines: int = 20_000,
    per_kind: int = 20,
    seed: int = 7,
    stdlib_every: int = 1,
    peer_limit: float = 10.0,
) -> dict[str, Any]:
    """All four figures; ``stdlib_every`` > 1 samples the standard library."""
    corpus = seeded_corpus(lines=corpus_lines, per_kind=per_kind, seed=seed)
    results = {
        "recall": recall(corpus),
        "stdlib": stdlib(every=stdlib_every),
        "adversarial": adversarial(peer_limit=peer_limit),
        "lookalikes": lookalikes(),
    }
    results["adversarial_max_ms"] = max(r["ours_ms"] for r in results["adversarial"].values())
    _print(results, peer_limit=peer_limit)
    return results


def _print(results: dict[str, Any], *, peer_limit: float) -> None:
    rec, std = results["recall"], results["stdlib"]
    fp, tp = std["false_positives"], std["throughput"]
    out = sys.stdout.write
    out(f"\n(a) recall, seeded corpus: {rec['lines']} lines, {rec['planted']} planted secrets\n")
    out(f"    {'kind':<24}{'planted':>8}{'ours':>8}{'detect-secrets':>16}\n")
    for kind, row in rec["per_kind"].items():
        out(f"    {kind:<24}{row['planted']:>8}{row['ours']:>8}{row['detect_secrets']:>16}\n")
    out(f"    {'recall':<24}{'':>8}{rec['ours']:>8.1%}{rec['detect_secrets']:>16.1%}\n")
    fpl = rec["false_positive_lines"]
    out(f"    {'other lines flagged':<24}{'':>8}{fpl['ours']:>8}{fpl['detect_secrets']:>16}\n")
    out(f"\n(b) false positives, {std['corpus']}: {std['files']} files, {std['lines']} lines\n")
    out(f"    ours: {fp['ours']['lines']} lines in {fp['ours']['files']} files\n")
    ds = fp["detect_secrets"]
    out(f"    detect-secrets: {ds['lines']} lines in {ds['files']} files\n")
    out("\n(c) throughput over (b), lines/s\n")
    out(f"    ours end to end: {tp['ours_lines_per_s']:>12,.0f}\n")
    out(f"    ours scan only:  {tp['ours_scan_only_lines_per_s']:>12,.0f}\n")
    out(f"    detect-secrets:  {tp['detect_secrets_lines_per_s']:>12,.0f}\n")
    out(f"    ratio (end to end): {tp['ratio']:,.0f}x\n")
    out("\n(d) 1 MB adversarial lines, ms (ours: best of 5 wall / CPU; first run wall)\n")
    out(f"    {'input':<24}{'ours':>8}{'cpu':>8}{'first':>8}{'detect-secrets':>16}  ours finds\n")
    for name, row in results["adversarial"].items():
        theirs = row["detect_secrets_ms"]
        shown = (
            f">{peer_limit * 1e3:,.0f}"
            if theirs is None and peer_limit > 0
            else ("-" if theirs is None else f"{theirs:,.0f}")
        )
        finds = ",".join(str(x) for x in row["ours_findings"]) or "-"
        out(
            f"    {name:<24}{row['ours_ms']:>8.1f}{row['ours_cpu_ms']:>8.1f}"
            f"{row['ours_first_run_ms']:>8.1f}{shown:>16}  {finds}\n"
        )
    out(f"    worst (ours, best of 5): {results['adversarial_max_ms']:.1f} ms\n")
    look = results["lookalikes"]
    out(f"\n(e) look-alikes denied: {len(look['lookalikes_denied'])} of {look['lookalikes']}")
    out(f" {look['lookalikes_denied'] or ''}\n")
    out(f"    real credentials in test/docs files missed: {len(look['real_in_fixtures_missed'])}")
    out(f" of {look['real_in_fixtures']} {look['real_in_fixtures_missed'] or ''}\n")


def main(argv: Iterator[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="every 8th stdlib file, peer limit 3 s"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(None if argv is None else list(argv))
    results = run(stdlib_every=8, peer_limit=3.0) if args.quick else run()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
