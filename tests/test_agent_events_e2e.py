"""Hook decisions reach the service's central audit log, beside its PR decisions.

A real service on loopback (``tests.harness``), tokens issued and revoked with
``gate agent-token``, and ``gate-hook`` processes forwarding with ``GATE_AUDIT_URL`` and
``GATE_AGENT_TOKEN``. A rejected or unreachable service never delays the answer past
the forwarding budget; what was not sent is sent by a later invocation.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent_events import builders, native
from tests.fakegithub.models import PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env, wait_for
from tests.test_agent_hooks import make_repo
from tests.world import World, patch, sha

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service")


@pytest.fixture(scope="module")
def service(fake_github_server: FakeGitHub, data_dir: Path) -> Iterator[RunningService]:
    with running(settings_env(fake_github_server, data_dir)) as svc:
        yield svc


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("agent") / "repo", {"app/x.py": "x = 1\n"})


def token_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "gate"), "agent-token", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def issue(service: RunningService, agent: str) -> str:
    """A token issued in the service's own store (the CLI is tested below)."""
    from datetime import UTC, datetime

    from webhooks import agent_tokens

    token, _ = service.call(
        lambda s: agent_tokens.issue(s.store, agent=agent, now=datetime.now(UTC))
    )
    return str(token)


def issue_cli(data_dir: Path, agent: str) -> str:
    done = token_cli(data_dir, "create", "--agent", agent)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("token: ", 1)[1].split()[0]


def hook(
    agent: str,
    event: dict[str, object],
    *,
    state: Path,
    url: str,
    token: str,
    daemon: bool = True,
) -> tuple:
    env = {**os.environ, "GATE_DATA_DIR": str(state), "GATE_AUDIT_URL": url}
    if not daemon:
        env["GATE_HOOK_DAEMON"] = "0"
    env["GATE_HOOK_IDLE"] = "10"  # the daemon a first call starts leaves soon after
    env["GATE_AGENT_TOKEN"] = token
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "gate-hook"), "--agent", agent],
        input=json.dumps(event).encode(),
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    return done, time.monotonic() - started


def central(service: RunningService, agent: str) -> list[dict[str, object]]:
    rows = service.call(lambda s: s.audit.query(agent=agent))
    return [r for r in rows if r.get("kind") == "agent_action"]


def outbox(state: Path) -> list[str]:
    path = state / "outbox.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def test_forwarded_events_land_in_the_central_log(
    service: RunningService, data_dir: Path, repo: Path, tmp_path: Path
) -> None:
    token = issue(service, "cursor")
    make = builders("cursor", str(repo))
    done, _ = hook(
        "cursor",
        make["shell"]("npm install left-pad"),
        state=tmp_path,
        url=service.url,
        token=token,
    )
    assert done.returncode == 0
    rows = wait_for(lambda: central(service, "cursor"), what="the forwarded event")
    (row,) = rows
    assert row["decision"] == "ask"
    assert row["rule"] == "hook.shell.dependency"
    assert row["command"] == "npm install left-pad"
    assert row["session"] == "conv-1"
    assert row["repo"] == "repo"
    assert row["forwarded"] is True
    assert outbox(tmp_path) == []


def test_the_token_decides_the_agent_and_revoked_tokens_queue(
    service: RunningService, data_dir: Path, repo: Path, tmp_path: Path
) -> None:
    token = issue_cli(data_dir, "codex")
    make = builders("claude-code", str(repo))  # the event claims another agent
    hook("claude-code", make["read"](".env"), state=tmp_path, url=service.url, token=token)
    (row,) = wait_for(lambda: central(service, "codex"), what="the codex event")
    assert row["claimed_agent"] == "claude-code"
    assert row["decision"] == "deny"

    ident = token_cli(data_dir, "revoke", token)
    assert ident.returncode == 0, ident.stderr
    response = httpx.post(
        f"{service.url}/api/agent-events",
        json={"events": []},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    done, _ = hook(
        "claude-code",
        make["write"]("app/y.py", "y = 1\n"),
        state=tmp_path,
        url=service.url,
        token=token,
    )
    assert native("claude-code", _answer(done)) == "allow"
    assert len(outbox(tmp_path)) == 1  # kept for later, not lost
    assert len(central(service, "codex")) == 1

    fresh = issue(service, "codex")
    hook("claude-code", make["shell"]("ls"), state=tmp_path, url=service.url, token=fresh)
    rows = wait_for(lambda: len(central(service, "codex")) == 3 and central(service, "codex"))
    assert [r["decision"] for r in rows] == ["deny", "allow", "allow"]
    assert outbox(tmp_path) == []


def test_an_unreachable_service_does_not_delay_the_answer(repo: Path, tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        make = builders("windsurf", str(repo))
        # Both decide in-process and start no daemon, whose start would share the cores
        # with the second call: what is compared is the forwarding budget alone.
        baseline, plain = hook(
            "windsurf", make["shell"]("ls"), state=tmp_path / "a", url="", token="", daemon=False
        )
        done, slow = hook(
            "windsurf",
            make["shell"]("ls"),
            state=tmp_path / "b",
            url=url,
            token="mga_x",
            daemon=False,
        )
    assert baseline.returncode == done.returncode == 0
    assert slow - plain < 0.3 + 0.5  # the 300 ms budget, plus scheduling noise
    assert len(outbox(tmp_path / "b")) == 1


def test_gate_audit_shows_hook_events_beside_pr_decisions(
    world: World, service: RunningService, data_dir: Path, repo: Path, tmp_path: Path
) -> None:
    world.open(7, [PRFile("docs/guide.md", patch=patch())], head=sha(701))
    world.run(sha(701), "success")
    token = issue(service, "gemini-cli")
    make = builders("gemini-cli", str(repo))
    hook(
        "gemini-cli",
        make["write"]("app/z.py", "z = 1\n"),
        state=tmp_path,
        url=service.url,
        token=token,
    )
    wait_for(lambda: central(service, "gemini-cli"), what="the gemini event")
    table = subprocess.run(
        [str(BIN / "gate"), "audit", "--agent", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = table.splitlines()
    assert any("evaluation" in line and f"{world.repo}#7" in line for line in lines)
    assert any(
        "agent_action" in line and "gemini-cli" in line and "app/z.py" in line for line in lines
    )


def _answer(done: subprocess.CompletedProcess[bytes]):  # type: ignore[no-untyped-def]
    from gate.agents.protocols import Answer

    return Answer(done.stdout.decode().strip(), done.stderr.decode(), done.returncode)
