"""``gate hook install`` merges into each agent's settings; ``gate hook doctor`` reports."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from webhooks.commands.hook_install import TARGETS
from webhooks.main import main as gate_main

BIN = Path(sys.executable).parent


def gate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gate hook ARGS`` in ``cwd`` with ``HOME`` at ``cwd/home``, in this process
    (one real process run is below)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.setenv("HOME", str(cwd / "home"))
        patch.chdir(cwd)
        code = gate_main(["hook", *args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_install_runs_as_a_real_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "gate"), "hook", "install", "--agent", "codex", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / ".codex/hooks.json").read_text())
    assert data["hooks"]["PreToolUse"][0]["matcher"] == "apply_patch|Bash"


def test_install_keeps_existing_settings_and_does_not_duplicate(tmp_path: Path) -> None:
    settings = tmp_path / ".claude/settings.json"
    settings.parent.mkdir()
    mine = {"matcher": "Bash", "hooks": [{"type": "command", "command": "./lint.sh"}]}
    settings.write_text(
        json.dumps({"permissions": {"deny": ["Read(./.env)"]}, "hooks": {"PreToolUse": [mine]}})
    )
    for _ in range(2):
        assert gate("install", "--agent", "claude-code", cwd=tmp_path).returncode == 0
    data = json.loads(settings.read_text())
    assert data["permissions"] == {"deny": ["Read(./.env)"]}
    groups = data["hooks"]["PreToolUse"]
    assert groups[0] == mine
    assert len(groups) == 2
    assert groups[1]["matcher"] == "Write|Edit|MultiEdit|NotebookEdit|Read|Bash"
    assert groups[1]["hooks"][0]["command"].endswith("gate-hook --agent claude-code")


def test_print_writes_nothing(tmp_path: Path) -> None:
    done = gate("install", "--agent", "cursor", "--print", cwd=tmp_path)
    assert done.returncode == 0
    hooks = json.loads(done.stdout)["hooks"]
    assert set(hooks) == {"preToolUse", "beforeShellExecution", "beforeReadFile"}
    assert not (tmp_path / ".cursor").exists()


def test_user_scope_goes_to_the_home_directory(tmp_path: Path) -> None:
    assert gate("install", "--agent", "windsurf", "--scope", "user", cwd=tmp_path).returncode == 0
    data = json.loads((tmp_path / "home/.codeium/windsurf/hooks.json").read_text())
    assert set(data["hooks"]) == {"pre_write_code", "pre_read_code", "pre_run_command"}


def test_a_foreign_cline_hook_is_not_overwritten(tmp_path: Path) -> None:
    script = tmp_path / ".clinerules/hooks/PreToolUse"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\necho '{\"cancel\": false}'\n")
    done = gate("install", "--agent", "cline", cwd=tmp_path)
    assert done.returncode == 1
    assert "not merge-gate's" in done.stderr
    assert "echo" in script.read_text()


def test_invalid_json_settings_are_not_clobbered(tmp_path: Path) -> None:
    settings = tmp_path / ".gemini/settings.json"
    settings.parent.mkdir()
    settings.write_text("{ not json")
    assert gate("install", "--agent", "gemini-cli", cwd=tmp_path).returncode == 1
    assert settings.read_text() == "{ not json"


def test_doctor_reports_every_wired_agent(tmp_path: Path) -> None:
    assert gate("doctor", cwd=tmp_path).returncode == 1  # nothing wired yet
    for agent in TARGETS:
        assert gate("install", "--agent", agent, cwd=tmp_path).returncode == 0
    done = gate("doctor", cwd=tmp_path)
    assert done.returncode == 0
    wired = {line.split()[0] for line in done.stdout.splitlines() if " project  wired" in line}
    assert wired == set(TARGETS)
    assert os.access(tmp_path / ".clinerules/hooks/PreToolUse", os.X_OK)


@pytest.mark.parametrize("agent", sorted(TARGETS))
def test_installed_files_are_what_each_agent_parses(agent: str, tmp_path: Path) -> None:
    done = gate(
        "install",
        "--agent",
        agent,
        "--print",
        "--command",
        "gate-hook --agent " + agent,
        cwd=tmp_path,
    )
    assert done.returncode == 0
    if agent == "cline":
        assert done.stdout.startswith("#!/bin/sh\n")
        assert f"exec gate-hook --agent {agent}" in done.stdout
    else:
        assert f"gate-hook --agent {agent}" in json.dumps(json.loads(done.stdout))


def test_doctor_says_what_the_hook_makes_of_the_organisation_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATE_ORG_POLICY_FILE", raising=False)
    assert "GATE_ORG_POLICY_FILE is not set" in gate("doctor", cwd=tmp_path).stdout

    monkeypatch.setenv("GATE_ORG_POLICY_FILE", str(tmp_path / "absent.yml"))
    assert "organisation policy: refused" in gate("doctor", cwd=tmp_path).stdout

    org = tmp_path / "org" / "merge-gate.yml"
    org.parent.mkdir(mode=0o755)
    org.write_text("version: 1\n")
    org.chmod(0o644)
    monkeypatch.setenv("GATE_ORG_POLICY_FILE", str(org))
    line = next(
        line for line in gate("doctor", cwd=tmp_path).stdout.splitlines() if "organisation" in line
    )
    # Whoever runs the doctor can write the file here, so an agent running as them could.
    assert os.access(org, os.W_OK)
    assert "WARNING: this user can write it" in line

    org.chmod(0o666)
    assert "writable by others" in gate("doctor", cwd=tmp_path).stdout
