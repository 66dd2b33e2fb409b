"""Shared helpers for the service benchmarks.

- statistics (nearest-rank percentiles) and Prometheus text parsing;
- :class:`Scenario`: one repository on the fake GitHub with CODEOWNERS, teams and
  agent pull requests of three kinds, plus the engine's verdict on a PR's final state;
- :class:`GateProcess`: a real ``gate serve`` subprocess (the production entry point:
  uvloop, httptools, four workers) pointed at a fake GitHub in this process;
- :class:`CallClock`: when each request reached the fake and when it was answered.

Every socket is on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import redis

from gate import engine, render
from gate.codeowners import CodeOwners
from gate.defaults import default_policy
from gate.detectors import builtin
from gate.model import (
    ChangedFile,
    Contents,
    FileStatus,
    PullSnapshot,
    Review,
    ReviewState,
    Teams,
    UserType,
)
from gate.result import Decision
from tests.fakegithub import deliveries
from tests.fakegithub.models import PRFile
from tests.fakegithub.server import FakeGitHub, RawRequest, RawResponse
from tests.harness import SECRET, settings_env
from webhooks.reader import co_authors_of

LOOPBACK = "127.0.0.1"
REDIS_URL = f"redis://{LOOPBACK}:6379"
WEBHOOK_PATH = "/api/github/webhooks"
AGENT = "devin-ai-integration[bot]"
#: The kinds of agent PR the scenarios open: docs only (passes on CI alone), app
#: logic (one review by a member) and auth code (code-owner approval by @org/security).
KINDS = ("docs", "app", "auth")

OWNERS = """\
*                 @{org}/devs
/app/auth/        @{org}/security
/migrations/      @{org}/dba
/.github/         @{org}/security
"""
TEAMS = {"devs": ["dev1"], "security": ["sec1"], "dba": ["dba1"]}
#: Who approves each kind: a member for app logic, a code owner for auth.
REVIEWER = {"docs": "dev1", "app": "dev1", "auth": "sec1"}


# --- statistics ----------------------------------------------------------------------


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a real sample)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))]


def ms_summary(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50/p90/p99/max in milliseconds."""
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1e3, 2),
        "p90_ms": round(percentile(seconds, 0.90) * 1e3, 2),
        "p99_ms": round(percentile(seconds, 0.99) * 1e3, 2),
        "max_ms": round(max(seconds) * 1e3, 2) if seconds else float("nan"),
    }


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition -> metric name -> value summed over labels."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def metric_with(text: str, name: str, **labels: str) -> float:
    """Sum of ``name`` over the series carrying every given label value."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


# --- infrastructure ---------------------------------------------------------------------


def redis_available(url: str = REDIS_URL) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def redis_delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete every key under ``prefix`` (a benchmark's throwaway namespace)."""
    client = redis.Redis.from_url(url, socket_timeout=10)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted


def free_port() -> int:
    """A port free right now on loopback (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.02
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def rss_kb(pid: int, field_name: str = "VmRSS") -> int:
    """Resident set size (or ``VmHWM``, its peak) of ``pid`` in kB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(f"{field_name} not in /proc/{pid}/status")


# --- the fake GitHub ------------------------------------------------------------------


def sha(n: int) -> str:
    return f"{n:040x}"


def patch(lines: int) -> str:
    return f"@@ -0,0 +1,{lines} @@\n" + "\n".join(f"+line {i}" for i in range(lines))


@dataclass(frozen=True, slots=True)
class Stamp:
    """One request the fake answered: when it arrived and when its answer was ready."""

    start: float
    end: float
    method: str
    path: str
    status: int
    body: Any


class CallClock:
    """Times every request of a :class:`FakeGitHub` (``time.monotonic``).

    The fake's server threads call ``fake.handle``; wrapping that one method on the
    instance timestamps a request without touching the fake. ``listeners`` run on
    the server thread right after a request was answered.
    """

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.stamps: list[Stamp] = []
        self.listeners: list[Callable[[Stamp], None]] = []
        self._lock = threading.Lock()
        self._inner = fake.handle
        self._wrapped_already = "handle" in vars(fake)

    def _handle(self, req: RawRequest) -> RawResponse:
        start = time.monotonic()
        resp = self._inner(req)
        end = time.monotonic()
        path = req.target.split("?")[0]
        body: Any = None
        if req.method in ("POST", "PATCH") and "/check-runs" in path:
            # Which head a check-run write is for (stale-decision and latency probes).
            with contextlib.suppress(ValueError):
                body = json.loads(req.body or b"null")
        stamp = Stamp(start, end, req.method, path, resp.status, body)
        with self._lock:
            self.stamps.append(stamp)
        for listener in list(self.listeners):
            listener(stamp)
        return resp

    def __enter__(self) -> CallClock:
        self.fake.handle = self._handle  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._wrapped_already:
            self.fake.handle = self._inner  # type: ignore[method-assign]
        else:
            del self.fake.handle  # back to the class's own method

    def since(self, t0: float) -> list[Stamp]:
        with self._lock:
            return [s for s in self.stamps if s.start >= t0]


@dataclass
class Scenario:
    """One organisation and repository on the fake: CODEOWNERS at the base, teams."""

    fake: FakeGitHub
    org: str = "acme"
    name: str = "app"
    base: str = field(default_factory=lambda: uuid.uuid4().hex + "00000000")
    repo: str = ""
    installation: int = 0
    owners_text: str = ""

    def __post_init__(self) -> None:
        self.repo = f"{self.org}/{self.name}"
        self.owners_text = OWNERS.format(org=self.org)
        self.fake.add_repo(self.repo)
        self.installation = self.fake.installation_id_for(self.repo)
        self.fake.set_file(self.repo, self.base, ".github/CODEOWNERS", self.owners_text)
        for team, members in TEAMS.items():
            self.fake.set_team(self.org, team, members)

    # -- pull requests -----------------------------------------------------------------

    @staticmethod
    def files(kind: str, number: int, version: int) -> list[PRFile]:
        """The PR's files at its ``version``-th head (the patch grows with each push)."""
        lines = version + 1
        docs = PRFile(f"docs/pr{number}/guide.md", patch=patch(lines), additions=lines)
        if kind == "docs":
            return [docs]
        path = f"app/logic/pr{number}.py" if kind == "app" else f"app/auth/pr{number}.py"
        return [PRFile(path, patch=patch(lines), additions=lines), docs]

    def open_pull(self, number: int, kind: str, head: str) -> None:
        self.fake.add_pull(
            self.repo,
            number,
            author=AGENT,
            author_type="Bot",
            head_sha=head,
            base_sha=self.base,
            files=self.files(kind, number, 0),
        )

    def push(self, number: int, kind: str, head: str, version: int) -> None:
        self.fake.push(self.repo, number, head, files=self.files(kind, number, version))

    def review(self, number: int, kind: str, head: str, state: str = "APPROVED") -> None:
        self.fake.add_review(self.repo, number, user=REVIEWER[kind], state=state, commit_id=head)

    def delivery(
        self, event: str, action: str, *, number: int, head: str, review: str = "APPROVED"
    ) -> tuple[bytes, dict[str, str]]:
        """Body and headers GitHub would send (a fresh delivery id each time).

        A review delivery carries the review's ``state`` (a comment-only review
        changes no decision, and the receiver drops it).
        """
        payload = deliveries.build(
            event,
            action,
            repo=self.repo,
            installation_id=self.installation,
            number=number,
            head_sha=head,
            author=AGENT,
            author_type="Bot",
        )
        if event == "pull_request_review":
            deliveries.set_review(payload, state=review, commit_id=head)
        body = deliveries.encode(payload)
        return body, deliveries.headers(event, str(uuid.uuid4()), body, SECRET)

    # -- the verdict -------------------------------------------------------------------

    def expected_conclusion(self, number: int) -> tuple[str, str]:
        """(head sha, check-run conclusion) the engine gives the PR's current state."""
        decision = self.expected_decision(number)
        return decision.head_sha, render.conclusion(decision)

    def expected_decision(self, number: int) -> Decision:
        """The engine's decision on the PR's current state on the fake.

        Built from the fake's records directly (not through the service's reader), so
        a worker that decided on stale facts, or never decided, shows up as a mismatch.
        """
        snapshot, teams = self._final_state(number)
        policy = default_policy()  # the scenario puts no policy file on the base
        codeowners = CodeOwners.parse(self.owners_text, path=".github/CODEOWNERS")
        detectors = builtin()
        wanted = engine.needs(
            policy=policy, codeowners=codeowners, pull=snapshot, detectors=detectors
        ).contents
        texts: dict[tuple[str, str], str | None] = {}
        for side, path in wanted:
            ref = snapshot.base_sha if side == "base" else snapshot.head_sha
            data = self.fake.read_file(self.repo, ref, path)
            texts[(side, path)] = data.decode("utf-8", "replace") if data is not None else None
        return engine.evaluate(
            policy=policy,
            codeowners=codeowners,
            pull=snapshot,
            teams=teams,
            contents=Contents(texts=texts),
            detectors=detectors,
        )

    def _final_state(self, number: int) -> tuple[PullSnapshot, Teams]:
        fake = self.fake
        with fake.lock:
            pull = copy.deepcopy(fake.pull(self.repo, number))
            reviews = [
                copy.deepcopy(r)
                for r in fake.reviews
                if r.repo.lower() == self.repo.lower() and r.number == number
            ]
            teams = Teams.of(
                {
                    f"{team.org}/{team.slug}": list(team.members)
                    for team in fake.teams.values()
                    if team.org.lower() == self.org.lower()
                },
                writers=[
                    r.user
                    for r in reviews
                    if fake.permission_of(self.repo, r.user) in ("admin", "maintain", "write")
                ],
            )
        files = tuple(
            ChangedFile(
                path=f.filename,
                status=FileStatus.MODIFIED if f.status == "changed" else FileStatus(f.status),
                previous_path=f.previous_filename,
                patch=f.patch,
                additions=f.additions,
                deletions=f.deletions,
            )
            for f in pull.files
        )
        snapshot = PullSnapshot(
            repo=self.repo,
            number=number,
            author=pull.author,
            author_type=UserType(pull.author_type),
            head_sha=pull.head_sha,
            base_ref=pull.base_ref,
            base_sha=pull.base_sha,
            files=files,
            reviews=tuple(
                Review(
                    id=r.id,
                    user=r.user,
                    user_type=UserType(r.user_type),
                    state=ReviewState(r.state),
                    commit_id=r.commit_id or "",
                    submitted_at=r.submitted_at or "",
                    author_association=r.author_association,
                )
                for r in reviews
            ),
            labels=frozenset(pull.labels),
            commit_authors=frozenset(c.author_login for c in pull.commits if c.author_login),
            co_authors=tuple(a for c in pull.commits for a in co_authors_of(c.message)),
            pushers=frozenset(
                c.committer_login
                for c in pull.commits
                if c.committer_login and c.committer_login != "web-flow"
            ),
            requested_users=frozenset(pull.requested_users),
            requested_teams=frozenset(pull.requested_teams),
            draft=pull.draft,
        )
        return snapshot, teams


# --- a real `gate serve` ---------------------------------------------------------------


class GateProcess:
    """``python -m webhooks serve`` on a loopback port, configured like production.

    The environment is the test harness's ``settings_env`` (the fake's App id and
    key, the webhook secret, a data directory), plus ``extra``. Logs go to a file:
    writing them is part of the service's cost, reading them is not part of ours.
    """

    def __init__(
        self,
        fake: FakeGitHub,
        *,
        data_dir: Path | None = None,
        workers: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bench-gate-")
            data_dir = Path(self._tmp.name)
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
        env.update(settings_env(fake, data_dir / "data"))
        env.update(extra_env or {})
        args = [
            sys.executable,
            "-m",
            "webhooks",
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
        ]
        if workers is not None:
            args += ["--workers", str(workers)]
        self.log_path = data_dir / "gate.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=self._log)
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.started = time.monotonic()
        try:
            wait_until(self._ready, timeout=start_timeout, what="gate serve to answer /readyz")
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - self.started

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gate serve exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            return self.client.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def post(self, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return self.client.post(WEBHOOK_PATH, content=body, headers=dict(headers))

    def metrics_text(self) -> str:
        return self.client.get("/metrics").text

    def metrics(self) -> dict[str, float]:
        return parse_metrics(self.metrics_text())

    def rss_kb(self, field_name: str = "VmRSS") -> int:
        return rss_kb(self.proc.pid, field_name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.client.close()
        self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> GateProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def queue_depth(url: str, client: httpx.Client) -> float:
    return parse_metrics(client.get(f"{url}/metrics").text).get("merge_gate_queue_depth", 0.0)


@contextlib.contextmanager
def started_fake(
    *, validate_responses: bool = False, rate_limit: int | None = None
) -> Iterator[FakeGitHub]:
    """A started fake GitHub for a benchmark.

    Requests are always checked against GitHub's API description (a violation is
    reported); checking the fake's own answers (``validate_responses``) costs 1-7 ms
    a call of this process's CPU and guards only the fake, so benchmarks skip it.
    ``rate_limit`` replaces the hourly budget (GitHub's 5,000 by default).
    """
    with FakeGitHub() as fake:
        fake.validate_responses = validate_responses
        if rate_limit is not None:
            fake.rate_limit = fake.rate_limit_remaining = rate_limit
        yield fake
