"""The chaos drill: real receivers and workers, SIGKILLs, a Redis restart, GitHub faults.

One run (:func:`drill`):

- a cluster of real processes: two ``gate serve --no-worker`` receivers and two
  ``gate worker`` processes on a Redis of the drill's own (AOF, fsync always), or
  one ``gate serve`` on SQLite;
- agent pull requests (:class:`benchmarks.common.Scenario`: docs, app logic, auth
  code) opened, pushed and reviewed on the fake GitHub; each step's delivery is
  sent to a random receiver, the first one of a pull request first and the later
  ones shuffled, some sent twice with the same delivery id; a refused delivery
  (503, connection refused or cut) is sent again after a short pause, as
  ``gate redeliver`` would, until a deadline;
- meanwhile a supervisor SIGKILLs a random process every few seconds and starts
  it again, restarts Redis once, and the fake GitHub answers a share of calls
  with a 502, a 503, its secondary rate limit or a dropped connection;
- then the queue drains and every head is held to the engine's verdict
  (``Scenario.expected_conclusion``), recorded for every head while it was the
  pull request's head.

Every loop is bounded by count and time; every process is stopped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.common import KINDS, Scenario, sha
from tests.fakegithub.server import FakeGitHub
from tests.harness import settings_env
from webhooks.keys import write_private_key
from webhooks.store import open_store

LOOPBACK = "127.0.0.1"
WEBHOOK_PATH = "/api/github/webhooks"
CHECK_NAME = "merge-gate"


# --- processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class Slot:
    """One restartable process: its command line, environment and log file stay put."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, url: str = ""
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = log.open("ab")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=self._log
        )

    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, grace: float = 25.0) -> None:
        """SIGTERM (workers finish in-flight jobs, the audit log writes a checkpoint)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.kill()
        self._log.close()


class RedisServer:
    """A Redis of the drill's own with AOF (fsync always), so it survives a SIGKILL."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--dir",
            str(directory),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection((LOOPBACK, self.port), timeout=0.2) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@dataclass
class Cluster:
    slots: list[Slot]
    receivers: list[Slot]
    redis: RedisServer | None
    data_dir: Path
    prefix: str
    env: dict[str, str]

    def stop(self) -> None:
        for slot in self.slots:
            slot.stop()
        for slot in self.slots:
            slot.close()
        if self.redis is not None:
            self.redis.kill()


def gate_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "webhooks", *args]


@contextlib.contextmanager
def cluster(fake: FakeGitHub, directory: Path, *, mode: str) -> Iterator[Cluster]:
    """``redis``: 2 receivers + 2 workers on a private Redis; ``sqlite``: one ``gate serve``."""
    data_dir = directory / "data"
    (data_dir / "keys").mkdir(parents=True, exist_ok=True)
    # One signing key for every process, where `gate audit verify` looks for it.
    key_file = data_dir / "keys" / "signing.pem"
    write_private_key(key_file, Ed25519PrivateKey.generate())
    prefix = f"chaos-{uuid.uuid4().hex[:8]}"
    redis = RedisServer(directory) if mode == "redis" else None
    extra = {
        "GATE_SIGNING_KEY_FILE": str(key_file),
        # A killed worker's job is taken over after at most this; the heartbeat
        # renews it every third of it while the job runs.
        "GATE_LEASE_SECONDS": "6",
        "GATE_DEBOUNCE_SECONDS": "0",
        "GATE_WORKERS": "3",
    }
    if redis is not None:
        extra |= {"GATE_REDIS_URL": redis.url, "GATE_REDIS_PREFIX": prefix}
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env = {**inherited, **settings_env(fake, data_dir, **extra)}
    slots: list[Slot] = []
    receivers: list[Slot] = []

    def receiver(name: str, *flags: str) -> None:
        port = free_port()
        argv = gate_argv("serve", "--host", LOOPBACK, "--port", str(port), *flags)
        slot = Slot(name, argv, env, directory / f"{name}.log", f"http://{LOOPBACK}:{port}")
        slots.append(slot)
        receivers.append(slot)

    if redis is not None:
        redis.start()
        receiver("receiver-1", "--no-worker")
        receiver("receiver-2", "--no-worker")
        for i in (1, 2):
            slots.append(
                # Workers on one host each need their own metrics port.
                Slot(
                    f"worker-{i}",
                    gate_argv("worker", "--metrics-port", str(free_port())),
                    env,
                    directory / f"worker-{i}.log",
                )
            )
    else:
        receiver("serve")
    made = Cluster(slots, receivers, redis, data_dir, prefix, env)
    try:
        for slot in slots:
            slot.start()
        for slot in receivers:
            _wait_ready(slot, timeout=60)
        yield made
    finally:
        made.stop()


def _wait_ready(slot: Slot, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if slot.exited():
            raise RuntimeError(f"{slot.name} exited at start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{slot.url}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{slot.name} not ready after {timeout:.0f}s")


# --- the supervisor: kills, restarts, the Redis restart --------------------------------


class Supervisor(threading.Thread):
    """SIGKILLs a random process every ``every`` seconds (±50%) and starts it again.

    Also restarts any process that exited by itself (a worker started while Redis
    was down, say), and kills Redis once, ``redis_after`` seconds in, for
    ``redis_down`` seconds.
    """

    def __init__(
        self,
        made: Cluster,
        *,
        rng: random.Random,
        every: float,
        redis_after: float | None,
        redis_down: float = 1.5,
    ) -> None:
        super().__init__(name="chaos-supervisor", daemon=True)
        self.made = made
        self.rng = rng
        self.every = every
        self.redis_after = redis_after
        self.redis_down = redis_down
        self.killing = threading.Event()
        self.killing.set()
        self.done = threading.Event()
        self.kills: Counter[str] = Counter()
        self.restarts: Counter[str] = Counter()
        self.redis_restarts = 0
        self.errors: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        next_kill = started + self._interval()
        while not self.done.wait(0.1):
            try:
                self._tick(started, next_kill)
            except Exception as error:  # reported by the drill, never swallowed
                self.errors.append(f"{type(error).__name__}: {error}")
            if time.monotonic() >= next_kill:
                next_kill = time.monotonic() + self._interval()

    def _interval(self) -> float:
        return self.every * self.rng.uniform(0.5, 1.5)

    def _tick(self, started: float, next_kill: float) -> None:
        now = time.monotonic()
        for slot in self.made.slots:
            if slot.exited():
                self.restarts[slot.name] += 1
                slot.start()
        redis = self.made.redis
        if (
            redis is not None
            and self.redis_after is not None
            and not self.redis_restarts
            and now - started >= self.redis_after
        ):
            redis.kill()
            time.sleep(self.redis_down)
            redis.start()
            self.redis_restarts += 1
        if self.killing.is_set() and now >= next_kill:
            slot = self.rng.choice(self.made.slots)
            slot.kill()
            self.kills[slot.name] += 1
            time.sleep(0.2)
            slot.start()

    def stop_killing(self) -> None:
        self.killing.clear()

    def finish(self) -> None:
        self.done.set()
        self.join(30)


# --- the plan: pull requests, their steps and deliveries ------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    number: int
    delivery_id: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Batch:
    """State changes on the fake (applied in order), then deliveries sent in any order."""

    number: int
    apply: Callable[[], None]
    sends: list[Send] = field(default_factory=list)


@dataclass
class World:
    scenario: Scenario
    batches: list[Batch]
    #: (number, head) -> the engine's conclusion while that head was the PR's head.
    expected: dict[tuple[int, str], str] = field(default_factory=dict)
    final_head: dict[int, str] = field(default_factory=dict)
    distinct: int = 0
    sends: int = 0


def plan(fake: FakeGitHub, *, prs: int, sends: int, seed: int) -> World:
    """``prs`` pull requests, ``sends`` deliveries in all (the rest of the distinct
    ones are duplicates); the batches interleaved at random, each PR's first first."""
    rng = random.Random(seed)
    scenario = Scenario(fake)
    world = World(scenario, [])
    firsts: list[Batch] = []
    laters: list[Batch] = []

    def send(number: int, event: str, action: str, head: str, review: str | None = None) -> Send:
        body, headers = scenario.delivery(
            event, action, number=number, head=head, review=review or "APPROVED"
        )
        return Send(number, headers["X-GitHub-Delivery"], body, headers)

    for number in range(1, prs + 1):
        kind = KINDS[number % len(KINDS)]
        pushes = rng.choice((1, 2))
        heads = [sha(number * 1000 + v) for v in range(pushes + 1)]
        steps: list[tuple[str, str, int, str | None]] = []  # event, action, version, review
        if kind != "docs" and pushes == 2 and rng.random() < 0.5:
            steps.append(("pull_request_review", "submitted", 1, "APPROVED"))  # made stale
        steps += [("pull_request", "synchronize", v, None) for v in range(1, pushes + 1)]
        # Each push, then the review of the head it made.
        steps.sort(key=lambda s: (s[2], s[0] != "pull_request"))
        if kind == "docs":
            if rng.random() < 0.5:
                steps.append(("pull_request_review", "submitted", pushes, "COMMENTED"))
        elif rng.random() < 0.6:
            steps.append(("pull_request_review", "submitted", pushes, "APPROVED"))

        def open_pull(number: int = number, kind: str = kind, head: str = heads[0]) -> None:
            scenario.open_pull(number, kind, head)
            world.final_head[number] = head

        def later(
            number: int = number,
            kind: str = kind,
            steps: list[tuple[str, str, int, str | None]] = steps,
        ) -> None:
            for _event, _action, version, review in steps:
                head = sha(number * 1000 + version)
                if review is not None:
                    scenario.review(number, kind, head, review)
                    continue
                old, expected = scenario.expected_conclusion(number)
                world.expected[(number, old)] = expected
                scenario.push(number, kind, head, version)
                world.final_head[number] = head

        first = Batch(number, open_pull, [send(number, "pull_request", "opened", heads[0])])
        rest = Batch(
            number,
            later,
            [send(number, event, action, heads[v], r) for event, action, v, r in steps],
        )
        firsts.append(first)
        laters.append(rest)
    originals = [s for b in firsts + laters for s in b.sends]
    world.distinct = len(originals)
    by_number = {b.number: b for b in laters}
    for dup in rng.choices(originals, k=max(0, sends - len(originals))):
        by_number[dup.number].sends.append(dup)  # the same delivery id, sent again
    for batch in laters:
        rng.shuffle(batch.sends)
    world.sends = sum(len(b.sends) for b in firsts + laters)
    # Interleave: a PR's later batch only once its first one is out.
    pending = list(firsts)
    rng.shuffle(pending)
    waiting = {b.number: b for b in laters}
    order: list[Batch] = []
    while pending:
        batch = pending.pop(rng.randrange(min(len(pending), 4)))
        order.append(batch)
        if batch.number in waiting:
            pending.insert(rng.randrange(len(pending) + 1), waiting.pop(batch.number))
    world.batches = order
    return world


# --- sending ----------------------------------------------------------------------------


class Sender:
    """Threads posting deliveries to a random receiver until each is acknowledged."""

    def __init__(
        self, urls: list[str], *, threads: int, rng: random.Random, deadline: float
    ) -> None:
        self.urls = urls
        self.rng = rng
        self.deadline = deadline
        self.work: queue.Queue[Send | None] = queue.Queue()
        self.lock = threading.Lock()
        #: delivery id -> what each acknowledged send got: "accepted" (202), "duplicate"
        #: (200), or "ignored" (202 for a delivery that changes no decision, never stored).
        self.acked: dict[str, list[str]] = {}
        self.retries: Counter[str] = Counter()
        self.failed: list[str] = []
        self.threads = [
            threading.Thread(target=self._run, name=f"chaos-sender-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while (item := self.work.get()) is not None:
                self._send(client, item)

    def _send(self, client: httpx.Client, item: Send) -> None:
        while time.monotonic() < self.deadline:
            with self.lock:
                url = self.rng.choice(self.urls)
            try:
                answer = client.post(url + WEBHOOK_PATH, content=item.body, headers=item.headers)
            except httpx.TransportError as error:
                self._retry(type(error).__name__)
                continue
            status = answer.status_code
            if status in (200, 202):
                outcome = "duplicate" if status == 200 else "accepted"
                if status == 202 and answer.json()["message"].startswith("ignored:"):
                    outcome = "ignored"
                with self.lock:
                    self.acked.setdefault(item.delivery_id, []).append(outcome)
                return
            if status == 503:
                self._retry("503")
                continue
            with self.lock:
                self.failed.append(f"{item.delivery_id}: HTTP {status}")
            return
        with self.lock:
            self.failed.append(f"{item.delivery_id}: not acknowledged before the deadline")

    def _retry(self, why: str) -> None:
        with self.lock:
            self.retries[why] += 1
        time.sleep(0.2)

    def close(self) -> None:
        for _ in self.threads:
            self.work.put(None)
        for thread in self.threads:
            thread.join(max(1.0, self.deadline - time.monotonic() + 10))


# --- the run ----------------------------------------------------------------------------


@dataclass
class Totals:
    mode: str
    prs: int
    distinct: int
    sends: int
    acknowledged: int
    refused_and_resent: dict[str, int]
    kills: int
    restarts: int
    redis_restarts: int
    faults: dict[str, int]
    github_calls: int
    check_runs: int
    dead_letters: int
    queue_depth: int
    drain_seconds: float
    seconds: float
    #: PRs whose final head's check run has another conclusion than the engine's.
    wrong: list[str]
    #: PRs without a check run on their final head, or deliveries never acknowledged.
    lost: list[str]
    #: Heads with more than one merge-gate check run; delivery ids accepted twice.
    duplicates: list[str]
    #: Check runs saying success on a head the engine blocks.
    unsafe: list[str]
    #: ``gate audit verify``: exit status and first line.
    audit: tuple[int, str]
    errors: list[str]
    violations: int

    def line(self) -> str:
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        return (
            f"chaos [{self.mode}]: {self.sends} deliveries ({self.distinct} distinct, "
            f"{self.sends - self.distinct} duplicates) over {self.prs} PRs; "
            f"{self.kills} kills, {self.restarts} restarts after exits, "
            f"{self.redis_restarts} redis restarts; {sum(self.faults.values())} faults "
            f"injected in {self.github_calls} GitHub calls ({faults}); "
            f"{sum(self.refused_and_resent.values())} refused sends resent "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.refused_and_resent.items()))}); "
            f"{self.check_runs} check runs; wrong {len(self.wrong)}, lost {len(self.lost)}, "
            f"duplicates {len(self.duplicates)}, unsafe {len(self.unsafe)}, "
            f"dead letters {self.dead_letters}; audit verify exit {self.audit[0]}; "
            f"drained {self.drain_seconds:.1f} s after the last send, {self.seconds:.1f} s in all"
        )


async def _queue_state(made: Cluster) -> tuple[int, int]:
    """(depth, dead letters) read from the store itself."""
    redis_url = made.redis.url if made.redis is not None else None
    store = await open_store(data_dir=made.data_dir, redis_url=redis_url, prefix=made.prefix)
    try:
        return await store.depth(), len(await store.dead_letters())
    finally:
        await store.close()


def _queue_state_or_none(made: Cluster) -> tuple[int, int] | None:
    try:
        return asyncio.run(_queue_state(made))
    except Exception:
        return None


def _settled(fake: FakeGitHub, world: World) -> bool:
    """Every PR's final head has a check run with the engine's conclusion."""
    repo = world.scenario.repo
    for number, head in world.final_head.items():
        runs = [r for r in fake.check_runs(repo, head) if r.name == CHECK_NAME]
        if not runs or runs[-1].conclusion != world.expected.get((number, head)):
            return False
    return True


def drill(
    fake: FakeGitHub,
    directory: Path,
    *,
    mode: str = "redis",
    prs: int = 50,
    sends: int = 200,
    seed: int = 1,
    spread: float = 20.0,
    kill_every: float = 3.0,
    fault_rate: float = 0.2,
    drain_timeout: float = 60.0,
    log: Callable[[str], None] = lambda _line: None,
) -> Totals:
    """One chaos run; returns what happened (the caller asserts or reports)."""
    began = time.monotonic()
    rng = random.Random(seed)
    world = plan(fake, prs=prs, sends=sends, seed=seed)
    calls_before = len(fake.calls)
    with cluster(fake, directory, mode=mode) as made:
        fake.chaos(rate=fault_rate, seed=seed, hold=0.2)
        supervisor = Supervisor(
            made,
            rng=random.Random(seed + 1),
            every=kill_every,
            redis_after=spread * 0.4 if made.redis is not None else None,
        )
        supervisor.start()
        # The kills go on into the drain until then, however fast the sending was.
        chaos_until = time.monotonic() + spread + kill_every * 2
        deadline = time.monotonic() + spread + drain_timeout
        sender = Sender(
            [slot.url for slot in made.receivers], threads=4, rng=rng, deadline=deadline
        )
        pause = spread / max(len(world.batches), 1)
        for batch in world.batches:
            batch.apply()
            for item in batch.sends:
                sender.work.put(item)
            time.sleep(pause)
        for number, head in world.final_head.items():
            world.expected[(number, head)] = world.scenario.expected_conclusion(number)[1]
        sender.close()
        sent = time.monotonic()
        log(f"sent in {sent - began:.1f} s; {dict(supervisor.kills)} kills so far")
        state = None
        while time.monotonic() < sent + drain_timeout:
            if time.monotonic() >= chaos_until:
                supervisor.stop_killing()
            if not supervisor.killing.is_set() and _settled(fake, world):
                state = _queue_state_or_none(made)
                if state is not None and state[0] == 0:
                    break
            time.sleep(0.25)
        drained = time.monotonic()
        # Let anything late (a duplicate effect, a retried job) surface, then stop.
        time.sleep(1.0)
        faults = fake.chaos_off()
        state = _queue_state_or_none(made) or (-1, -1)
        supervisor.finish()
        made.stop()
        audit = _audit_verify(made)
    return _totals(
        fake,
        world,
        mode=mode,
        sender=sender,
        supervisor=supervisor,
        faults=faults,
        github_calls=len(fake.calls) - calls_before,
        state=state,
        audit=audit,
        drain_seconds=drained - sent,
        seconds=time.monotonic() - began,
    )


def _audit_verify(made: Cluster) -> tuple[int, str]:
    argv = gate_argv("audit", "verify", "--data-dir", str(made.data_dir))
    if made.redis is not None:
        made.redis.start()  # stopped with the cluster; AOF brings the log back
        argv += ["--redis-url", made.redis.url, "--redis-prefix", f"{made.prefix}:audit"]
    try:
        done = subprocess.run(argv, env=made.env, capture_output=True, text=True, timeout=60)
    finally:
        if made.redis is not None:
            made.redis.kill()
    first = (done.stdout or done.stderr).strip().splitlines()
    return done.returncode, first[0] if first else ""


def _totals(
    fake: FakeGitHub,
    world: World,
    *,
    mode: str,
    sender: Sender,
    supervisor: Supervisor,
    faults: dict[str, int],
    github_calls: int,
    state: tuple[int, int],
    audit: tuple[int, str],
    drain_seconds: float,
    seconds: float,
) -> Totals:
    repo = world.scenario.repo
    number_of = {head: n for (n, head) in world.expected}
    with fake.lock:
        runs = [
            (r.head_sha, r.conclusion)
            for r in fake.runs.values()
            if r.name == CHECK_NAME and r.repo.lower() == repo.lower()
        ]
    by_head: dict[str, list[str | None]] = {}
    for head_sha, conclusion in runs:
        by_head.setdefault(head_sha, []).append(conclusion)
    wrong, lost, duplicates, unsafe = [], [], [], []
    for number, head in sorted(world.final_head.items()):
        got = by_head.get(head, [])
        expected = world.expected[(number, head)]
        if not got:
            lost.append(f"#{number}@{head[-6:]}: no check run on the final head")
        elif got[-1] != expected:
            wrong.append(f"#{number}@{head[-6:]}: expected {expected}, got {got[-1]}")
    for head, conclusions in by_head.items():
        if len(conclusions) > 1:
            duplicates.append(f"{head[-6:]}: {len(conclusions)} check runs")
        number = number_of.get(head)
        expected = world.expected.get((number, head)) if number is not None else None
        if "success" in conclusions and expected != "success":
            unsafe.append(f"#{number}@{head[-6:]}: success where the engine says {expected}")
    # A delivery id accepted twice (202, not 200 "duplicate") got two effects.
    duplicates += [
        f"delivery {d} accepted {outcomes.count('accepted')} times"
        for d, outcomes in sorted(sender.acked.items())
        if outcomes.count("accepted") > 1
    ]
    all_ids = {s.delivery_id for b in world.batches for s in b.sends}
    lost += [f"delivery {d} never acknowledged" for d in sorted(all_ids - set(sender.acked))]
    lost += sender.failed
    return Totals(
        mode=mode,
        prs=len(world.final_head),
        distinct=world.distinct,
        sends=world.sends,
        acknowledged=len(sender.acked),
        refused_and_resent=dict(sender.retries),
        kills=sum(supervisor.kills.values()),
        restarts=sum(supervisor.restarts.values()),
        redis_restarts=supervisor.redis_restarts,
        faults=faults,
        github_calls=github_calls,
        check_runs=len(runs),
        dead_letters=state[1],
        queue_depth=state[0],
        drain_seconds=drain_seconds,
        seconds=seconds,
        wrong=wrong,
        lost=lost,
        duplicates=duplicates,
        unsafe=unsafe,
        audit=audit,
        errors=supervisor.errors,
        violations=len(fake.violations),
    )
