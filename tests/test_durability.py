"""Nothing lost: real `gate serve` processes, SIGKILL, replicas on Redis, a Redis outage."""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fakegithub import deliveries
from tests.fakegithub.models import PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import SECRET, running, settings_env, wait_for
from tests.world import sha
from webhooks.keys import write_private_key

_n = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gate_serve(env: dict[str, str], *args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    # Logs go to a file: a pipe nobody drains would block the server once full.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "webhooks", "serve", "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(
                    f"gate serve exited: {log.read().decode(errors='replace')[-2000:]}"
                )
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=30, what="gate serve to start")
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def post(
    url: str, event: str, action: str, *, delivery_id: str | None = None, **patches: Any
) -> httpx.Response:
    payload = deliveries.build(event, action, **patches)
    body = deliveries.encode(payload)
    headers = deliveries.headers(event, delivery_id or str(uuid.uuid4()), body, SECRET)
    return httpx.post(f"{url}/api/github/webhooks", content=body, headers=headers, timeout=15)


def opened(url: str, repo: str, installation: int, number: int, **extra: Any) -> int:
    """POST a signed pull_request.opened for PR ``number`` (head ``sha(number * 1000)``)."""
    return post(
        url,
        "pull_request",
        "opened",
        repo=repo,
        installation_id=installation,
        number=number,
        head_sha=sha(number * 1000),
        **extra,
    ).status_code


def scenario(fake: FakeGitHub, prs: int) -> tuple[str, int, str]:
    repo = f"dur{next(_n)}-{uuid.uuid4().hex[:6]}/app"
    fake.add_repo(repo)
    base = sha(10**6 + next(_n))
    org = repo.split("/")[0]
    fake.set_file(repo, base, ".github/CODEOWNERS", f"* @{org}/devs\n/app/auth/ @{org}/security\n")
    fake.set_team(org, "security", ["sec1"])
    fake.set_team(org, "devs", ["dev1"])
    for number in range(1, prs + 1):
        gated = number % 2 == 0
        fake.add_pull(
            repo,
            number,
            author="devin-ai-integration[bot]",
            head_sha=sha(number * 1000),
            base_sha=base,
            files=[PRFile("app/auth/x.py" if gated else "docs/x.md", patch="@@ -0,0 +1 @@\n+x")],
        )
    return repo, fake.installation_id_for(repo), base


@pytest.mark.slow
def test_sigkill_right_after_the_202_loses_nothing(fake_github: FakeGitHub, tmp_path: Path) -> None:
    repo, installation, _base = scenario(fake_github, 1)
    env = settings_env(fake_github, tmp_path, GATE_LEASE_SECONDS="2")
    # The receiver alone: the 202 is the only thing that happened before the kill.
    with gate_serve(env, "--no-worker") as (proc, url):
        response = post(
            url,
            "pull_request",
            "opened",
            repo=repo,
            installation_id=installation,
            number=1,
            head_sha=sha(1000),
        )
        assert response.status_code == 202
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert fake_github.check_runs(repo, sha(1000)) == []
    with gate_serve(env):
        run = wait_for(
            lambda: fake_github.check_runs(repo, sha(1000)), what="check run after restart"
        )
    assert run[0].conclusion == "success"


@pytest.mark.slow
def test_worker_killed_mid_job_is_reclaimed_after_its_lease(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    repo, installation, _base = scenario(fake_github, 2)
    env = settings_env(fake_github, tmp_path, GATE_LEASE_SECONDS="2")
    fake_github.latency = 0.5  # the worker is mid-job when it dies
    with gate_serve(env) as (proc, url):
        assert opened(url, repo, installation, 2) == 202
        wait_for(
            lambda: any("/pulls/2/" in c.path for c in fake_github.calls),
            what="the job to start",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    fake_github.latency = 0.0
    with gate_serve(env):
        runs = wait_for(
            lambda: fake_github.check_runs(repo, sha(2000)), timeout=30, what="reclaimed job"
        )
    assert [r.conclusion for r in runs] == ["action_required"]


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A Redis of this test's own (AOF on), so it can be stopped and started again."""
    port = free_port()
    cmd = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        str(tmp_path),
    ]
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_for(ready, timeout=10, what="redis to start")

    def stop() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", (start, stop)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_redis_outage_answers_503_and_resumes_without_loss(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    repo, installation, _base = scenario(fake_github, 4)
    with private_redis(tmp_path) as (redis_url, (start, stop)):
        env = settings_env(fake_github, tmp_path / "data", GATE_REDIS_URL=redis_url)
        with gate_serve(env) as (_proc, url):
            assert opened(url, repo, installation, 1) == 202
            wait_for(lambda: fake_github.check_runs(repo, sha(1000)), what="first check run")
            stop()
            refused = post(
                url,
                "pull_request",
                "opened",
                repo=repo,
                installation_id=installation,
                number=2,
                head_sha=sha(2000),
                delivery_id="during-outage",
            )
            assert refused.status_code == 503
            assert httpx.get(f"{url}/readyz").status_code == 503
            start()
            wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="ready again")
            # GitHub's redelivery of the refused delivery is accepted, not a duplicate.
            assert opened(url, repo, installation, 2, delivery_id="during-outage") == 202
            for number in (3, 4):
                assert opened(url, repo, installation, number) == 202
            for number in (2, 3, 4):
                wait_for(
                    lambda n=number: fake_github.check_runs(repo, sha(n * 1000)),
                    what=f"check run #{number}",
                )


@pytest.mark.slow
def test_two_replicas_on_one_redis_make_one_check_run_per_head(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    prs = 20
    repo, installation, _base = scenario(fake_github, prs)
    prefix = f"mg-test-{uuid.uuid4().hex[:8]}"
    redis_url = "redis://127.0.0.1:6379/0"
    env_a = settings_env(
        fake_github, tmp_path / "a", GATE_REDIS_URL=redis_url, GATE_REDIS_PREFIX=prefix
    )
    env_b = settings_env(
        fake_github, tmp_path / "b", GATE_REDIS_URL=redis_url, GATE_REDIS_PREFIX=prefix
    )
    # Replicas share the signing key, as the scaled deployment documents.
    key_file = tmp_path / "signing.pem"
    write_private_key(key_file, Ed25519PrivateKey.generate())
    env_a["GATE_SIGNING_KEY_FILE"] = env_b["GATE_SIGNING_KEY_FILE"] = str(key_file)
    try:
        with gate_serve(env_a) as (_a, url_a), gate_serve(env_b) as (_b, url_b):
            rng = random.Random(5)
            for number in range(1, prs + 1):
                for _ in range(3):  # each PR delivered several times, to either replica
                    url = rng.choice([url_a, url_b])
                    assert (
                        post(
                            url,
                            "pull_request",
                            "synchronize",
                            repo=repo,
                            installation_id=installation,
                            number=number,
                            head_sha=sha(number * 1000),
                        ).status_code
                        == 202
                    )
            for number in range(1, prs + 1):
                wait_for(
                    lambda n=number: fake_github.check_runs(repo, sha(n * 1000)), what=f"#{number}"
                )
            time.sleep(1.0)  # let any duplicate effect surface
        for number in range(1, prs + 1):
            runs = fake_github.check_runs(repo, sha(number * 1000))
            assert len(runs) == 1, f"#{number} has {len(runs)} check runs"
            assert runs[0].conclusion == ("action_required" if number % 2 == 0 else "success")
    finally:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.mark.slow
def test_a_thousand_shuffled_deliveries_with_duplicates_have_one_effect_each(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    prs = 50
    repo, installation, _base = scenario(fake_github, prs)
    rng = random.Random(11)
    planned: list[tuple[str, str, dict[str, Any], str]] = []
    for number in range(1, prs + 1):
        heads = [sha(number * 1000 + step) for step in range(4)]
        for step, head in enumerate(heads[1:], start=1):
            planned.append(
                (
                    f"{number}-sync-{step}",
                    "synchronize",
                    {"number": number, "head_sha": head},
                    "pull_request",
                )
            )
        planned.append(
            (f"{number}-open", "opened", {"number": number, "head_sha": heads[0]}, "pull_request")
        )
        # GitHub's final state: the last push, approved by the owner on every third PR.
        fake_github.push(repo, number, heads[-1])
        if number % 3 == 0:
            fake_github.add_review(repo, number, user="sec1", commit_id=heads[-1])
            planned.append(
                (
                    f"{number}-review",
                    "submitted",
                    {"number": number, "head_sha": heads[-1]},
                    "pull_request_review",
                )
            )
    # Duplicates: GitHub (or a redelivery) sends some deliveries again.
    sends = planned + rng.choices(planned, k=1000 - len(planned))
    rng.shuffle(sends)
    assert len(sends) == 1000
    with running(settings_env(fake_github, tmp_path), workers=4) as svc:

        def send(item: tuple[str, str, dict[str, Any], str]) -> int:
            delivery_id, action, kw, event = item
            payload = deliveries.build(event, action, repo=repo, installation_id=installation, **kw)
            if event == "pull_request_review":
                # the approval added above, as GitHub delivers it
                deliveries.set_review(
                    payload, user="sec1", state="APPROVED", commit_id=kw["head_sha"]
                )
            return svc.deliver(event, action, delivery_id=delivery_id, payload=payload).status_code

        with ThreadPoolExecutor(8) as pool:  # GitHub delivers concurrently too
            codes = list(pool.map(send, sends))
        assert codes.count(202) == len(planned)
        assert codes.count(200) == 1000 - len(planned)
        wait_for(
            lambda: svc.call(lambda s: s.store.depth()) == 0, timeout=120, what="the queue to drain"
        )
    for number in range(1, prs + 1):
        final = sha(number * 1000 + 3)
        runs = fake_github.check_runs(repo, final)
        assert len(runs) == 1
        gated = number % 2 == 0
        approved = number % 3 == 0
        expected = "action_required" if gated and not approved else "success"
        assert runs[0].conclusion == expected, number
        for step in range(3):
            assert fake_github.check_runs(repo, sha(number * 1000 + step)) == []
    evaluations = len(
        fake_github.calls_to("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
    )
    assert evaluations < len(planned)
