"""What operators run and watch: the worker's metrics port, bounded metric labels,
the start line and the log level."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.fakegithub.server import FakeGitHub
from tests.harness import SECRET, running, settings_env, wait_for
from tests.test_durability import free_port, gate_serve, opened, scenario
from tests.world import sha
from webhooks.github import GitHubApp
from webhooks.metrics import OTHER, Metrics, package_version
from webhooks.settings import SettingsError, load

ROOT = Path(__file__).resolve().parent.parent


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric family in a Prometheus text exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, _, value = line.rpartition(" ")
            out[key[len(name) :]] = float(value)
    return out


@contextmanager
def gate_worker(env: dict[str, str], port: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    log = tempfile.NamedTemporaryFile(suffix=".log")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "webhooks", "worker", "--workers", "2", "--metrics-port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield proc, log.name
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_a_worker_process_serves_metrics_and_health_on_its_own_port(
    fake_github: FakeGitHub, tmp_path: Path
) -> None:
    repo, installation, _base = scenario(fake_github, 1)
    env = settings_env(
        fake_github,
        tmp_path,
        GATE_REDIS_URL="redis://127.0.0.1:6379/0",
        GATE_REDIS_PREFIX=f"test-ops-{uuid.uuid4().hex[:8]}",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with gate_worker(env, port) as (worker, log), gate_serve(env, "--no-worker") as (_, receiver):

        def healthy() -> bool:
            assert worker.poll() is None, Path(log).read_text()[-2000:]
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=30, what="the worker's /healthz")
        assert opened(receiver, repo, installation, 1) == 202
        wait_for(lambda: fake_github.check_runs(repo, sha(1000)), what="the worker's check run")
        text = httpx.get(f"{url}/metrics").text
        # The receiver accepted; the worker decided and called GitHub: its own port says so.
        assert samples(text, "merge_gate_build_info") == {f'{{version="{package_version()}"}}': 1.0}
        assert sum(samples(text, "merge_gate_decisions_total").values()) == 1.0
        routes = samples(text, "merge_gate_github_calls_total")
        # Route templates, never URLs: the repository's name appears nowhere.
        assert any("{sha}" in labels or "{n}" in labels for labels in routes), routes
        assert repo.split("/")[0] not in text
        assert samples(text, "merge_gate_queue_depth") == {"": 0.0}
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0
        lines = Path(log).read_text()
    started = [json.loads(line) for line in lines.splitlines() if '"merge-gate started"' in line]
    assert started == [
        {
            **started[0],
            "role": "worker",
            "version": package_version(),
            "store": "redis",
            "workers": 2,
            "public_url": "http://merge-gate.test",
            "metrics_port": port,
        }
    ]
    assert SECRET not in lines


def test_forged_event_names_do_not_grow_the_metrics(
    fake_github_server: FakeGitHub, tmp_path: Path
) -> None:
    # Unsigned deliveries are refused, but were counted under their X-GitHub-Event:
    # anyone who can reach the receiver could mint a time series per request.
    env = settings_env(fake_github_server, tmp_path)
    with running(env, workers=0) as service:
        for n in range(20):
            response = httpx.post(
                f"{service.url}/api/github/webhooks",
                content=b"{}",
                headers={"X-GitHub-Event": f"forged-{n}", "X-GitHub-Delivery": str(n)},
            )
            assert response.status_code == 401
        text = httpx.get(f"{service.url}/metrics").text
    series = samples(text, "merge_gate_deliveries_total")
    assert series == {f'{{event="{OTHER}",result="bad_signature"}}': 20.0}


def test_tier_and_route_labels_are_bounded() -> None:
    metrics = Metrics()
    for n in range(100):
        metrics.decisions.labels(conclusion="success", tier=f"tier-{n}").inc()
    tiers = samples(metrics.render().decode(), "merge_gate_decisions_total")
    assert len(tiers) == 33
    assert tiers['{conclusion="success",tier="other"}'] == 68.0
    assert tiers['{conclusion="success",tier="tier-0"}'] == 1.0


async def test_a_github_call_is_counted_by_its_route_never_its_url(
    fake_github: FakeGitHub,
) -> None:
    repo = f"ops-{uuid.uuid4().hex[:6]}/secret-project"
    fake_github.add_repo(repo)
    metrics = Metrics()
    gh = GitHubApp(
        app_id=fake_github.app_id,
        private_key=fake_github.app_private_key_pem,
        base_url=fake_github.base_url,
        on_call=metrics.github_call,
    )
    try:
        await gh.call("GET", f"/repos/{repo}/installation", installation_id=None)
    finally:
        await gh.close()
    text = metrics.render().decode()
    assert repo not in text
    assert samples(text, "merge_gate_github_calls_total") == {
        '{route="GET unnamed",status="2xx"}': 1.0
    }
    assert repo not in json.dumps(gh.stats.by_route)


def test_every_github_call_names_a_fixed_route() -> None:
    # The route label must never be built from request data: every ``route=`` is a
    # string literal, or a helper's own ``route`` parameter passed on (whose callers
    # are held to the same rule here).
    offenders = []
    for path in sorted((ROOT / "webhooks").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or (
                isinstance(node.func, ast.Attribute) and node.func.attr == "labels"
            ):
                continue  # the metric itself, bounded in webhooks/metrics.py
            for keyword in node.keywords:
                value = keyword.value
                literal = isinstance(value, ast.Constant) and isinstance(value.value, str)
                passed_on = isinstance(value, ast.Name) and value.id == "route"
                if keyword.arg == "route" and not (literal or passed_on):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_log_level_comes_from_gate_log_level(
    fake_github_server: FakeGitHub, tmp_path: Path
) -> None:
    env = settings_env(fake_github_server, tmp_path)
    assert load(env).log_level == "INFO"
    assert load({**env, "GATE_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    with pytest.raises(SettingsError, match="GATE_LOG_LEVEL"):
        load({**env, "GATE_LOG_LEVEL": "chatty"})


async def test_worker_health_fails_once_a_worker_task_has_stopped(
    fake_github_server: FakeGitHub, tmp_path: Path
) -> None:
    from webhooks import probes
    from webhooks.service import build

    service = await build(load(settings_env(fake_github_server, tmp_path)))
    tasks_alive = [True]
    app = probes.create_app(service, alive=lambda: tasks_alive[0])
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            assert (await client.get("/healthz")).status_code == 200
            tasks_alive[0] = False
            answer = await client.get("/healthz")
            assert answer.status_code == 503
            assert answer.json() == {"message": "a worker task has stopped"}
            metrics = await client.get("/metrics")
            assert "merge_gate_build_info" in metrics.text
    finally:
        await service.close()


@pytest.mark.slow
@pytest.mark.parametrize(("level", "logged"), [("info", True), ("WARNING", False)])
def test_serve_logs_its_start_line_at_gate_log_level(
    fake_github_server: FakeGitHub, tmp_path: Path, level: str, logged: bool
) -> None:
    env = settings_env(fake_github_server, tmp_path, GATE_LOG_LEVEL=level)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webhooks", "serve", "--no-worker", "--port", str(port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        try:

            def up() -> bool:
                assert proc.poll() is None, log.read_text()[-2000:]
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, timeout=30, what="gate serve")
            proc.send_signal(signal.SIGTERM)
            # uvicorn re-raises the signal it caught; the process still ends cleanly.
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    started = [json.loads(x) for x in log.read_text().splitlines() if "merge-gate started" in x]
    if not logged:
        assert started == []
        return
    [line] = started
    assert line["level"] == "info"
    assert (line["role"], line["store"], line["workers"], line["port"]) == (
        "serve",
        "sqlite",
        0,
        port,
    )
    assert (line["version"], line["public_url"]) == (package_version(), "http://merge-gate.test")
