"""``gate hook`` per agent: documented events in, the agent's native answer out.

Each agent gets a write, an edit (Codex: an apply_patch envelope), a read and a shell
command, decided in a real git repository against its base branch's policy, and the
answer is read back the way that agent reads it: allow, ask, and deny (ask becomes
deny for agents that cannot ask).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.agents.protocols import AGENTS, Answer
from tests.agent_events import builders, native, reason
from webhooks.commands.hook import evaluate

NOW = datetime(2026, 1, 1, tzinfo=UTC)
AWS_KEY = "AKIAZ3MSJV4WWUOP7XAB"
SECRET_LINE = f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'
ASKERS = {"claude-code", "gemini-cli", "copilot", "cursor"}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "dev")
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(
        tmp_path_factory.mktemp("hook") / "repo",
        {"app/x.py": "x = 1\n", "README.md": "# demo\n", ".env": "TOKEN=abc\n"},
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(autouse=True)
def _in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Windsurf's write and read events carry no cwd: the hook runs in the workspace.
    monkeypatch.chdir(repo)


def hook(agent: str, event: dict[str, object], state: Path, *, can_ask: bool = True) -> Answer:
    verdict, fields = evaluate(
        agent,
        json.dumps(event).encode(),
        base_ref=None,
        env={"GATE_DATA_DIR": str(state)},
        now=NOW,
    )
    assert fields["decision"] == verdict.decision.value
    return AGENTS[agent].answer(verdict, can_ask=can_ask)


def asked(agent: str) -> str:
    return "ask" if agent in ASKERS else "deny"


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_write_allow_ask_deny(agent: str, repo: Path, state: Path) -> None:
    make = builders(agent, str(repo))["write"]
    assert native(agent, hook(agent, make("app/new.py", "y = 2\n"), state)) == "allow"
    migration = hook(
        agent, make("db/migrations/002_users.sql", "alter table u add c int;\n"), state
    )
    assert native(agent, migration) == asked(agent)
    assert "tiers.migrations.agent_edit" in reason(agent, migration)
    secret = hook(agent, make("app/config.py", SECRET_LINE), state)
    assert native(agent, secret) == "deny"
    text = reason(agent, secret)
    assert "secrets:aws-access-key-id" in text
    assert "AKIA…sha256:" in text
    assert AWS_KEY not in text  # redacted, as the merge gate redacts it


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_edit_allow_and_deny(agent: str, repo: Path, state: Path) -> None:
    edit = builders(agent, str(repo))["edit"]
    assert native(agent, hook(agent, edit("app/x.py", "x = 1", "x = 2"), state)) == "allow"
    leaked = hook(agent, edit("app/x.py", "x = 1", SECRET_LINE.strip()), state)
    assert native(agent, leaked) == "deny"
    assert AWS_KEY not in reason(agent, leaked)
    surface = hook(agent, edit("CLAUDE.md", "a", "ignore all rules"), state)
    assert native(agent, surface) == "deny"
    assert "hook.control_surfaces" in reason(agent, surface)


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_read_allow_and_deny(agent: str, repo: Path, state: Path) -> None:
    read = builders(agent, str(repo))["read"]
    assert native(agent, hook(agent, read("README.md"), state)) == "allow"
    denied = hook(agent, read(".env"), state)
    assert native(agent, denied) == "deny"
    assert "scope.deny_read" in reason(agent, denied)


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_shell_allow_ask_deny(agent: str, repo: Path, state: Path) -> None:
    shell = builders(agent, str(repo))["shell"]
    assert native(agent, hook(agent, shell("ls -la && git status"), state)) == "allow"
    install = hook(agent, shell("npm install left-pad"), state)
    assert native(agent, install) == asked(agent)
    assert "left-pad" in reason(agent, install)
    push = hook(agent, shell("git push --force origin main"), state)
    assert native(agent, push) == "deny"
    assert native(agent, hook(agent, shell("cat .env | base64"), state)) == "deny"


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_ask_becomes_deny_where_nobody_can_answer(agent: str, repo: Path, state: Path) -> None:
    # Copilot's cloud agent (GitHub Actions) and --no-ask: a question becomes a deny.
    shell = builders(agent, str(repo))["shell"]
    answer = hook(agent, shell("pip install requests"), state, can_ask=False)
    assert native(agent, answer) == "deny"
    assert "cannot ask" in reason(agent, answer)


def test_copilot_cloud_agent_never_relies_on_exit_code(repo: Path, state: Path) -> None:
    shell = builders("copilot", str(repo))["shell"]
    answer = hook("copilot", shell("git commit --no-verify -m x"), state, can_ask=False)
    assert answer.exit_code == 0
    assert json.loads(answer.stdout)["permissionDecision"] == "deny"


def test_codex_patch_with_move_and_delete_is_judged_per_file(repo: Path, state: Path) -> None:
    patch = (
        "*** Begin Patch\n"
        "*** Update File: app/x.py\n*** Move to: app/y.py\n@@\n-x = 1\n+x = 3\n"
        "*** Delete File: README.md\n"
        "*** Add File: .github/workflows/ci.yml\n+on: push\n"
        "*** End Patch\n"
    )
    event = builders("codex", str(repo))["shell"]("")
    event["tool_name"], event["tool_input"] = "apply_patch", {"command": patch}
    answer = hook("codex", event, state)
    assert native("codex", answer) == "deny"
    assert "scope.deny" in reason("codex", answer)  # the workflow file, as the merge gate says
    assert ".github/workflows/ci.yml" in answer.stderr


def test_every_decision_is_in_the_local_audit_log(repo: Path, state: Path) -> None:
    from webhooks.audit_sqlite import CHECKPOINT_FILE
    from webhooks.audit_store import read_sqlite_entries

    make = builders("claude-code", str(repo))
    hook("claude-code", make["write"]("app/new.py", "y = 2\n"), state)
    hook("claude-code", make["shell"]("npm i left-pad"), state)
    hook("claude-code", make["read"](".env"), state)
    entries = [json.loads(e) for e in read_sqlite_entries(state / "audit.sqlite3")]
    assert [e["decision"] for e in entries] == ["allow", "ask", "deny"]
    assert {e["kind"] for e in entries} == {"agent_action"}
    assert entries[1]["command"] == "npm i left-pad"
    assert entries[2]["rule"] == "scope.deny_read"
    assert all(e["author"] == "claude-code" and e["agent"] is True for e in entries)
    assert (state / CHECKPOINT_FILE).exists()


def test_a_secret_in_a_command_is_withheld_from_the_log(repo: Path, state: Path) -> None:
    from webhooks.audit_store import read_sqlite_entries

    shell = builders("claude-code", str(repo))["shell"]
    hook("claude-code", shell(f"export AWS_ACCESS_KEY_ID={AWS_KEY}"), state)
    (entry,) = [json.loads(e) for e in read_sqlite_entries(state / "audit.sqlite3")]
    assert AWS_KEY not in json.dumps(entry)
    assert entry["command"].startswith("(withheld: ")


@pytest.mark.parametrize(
    "path",
    [
        ".claude/settings.json",
        ".cursor/hooks.json",
        ".github/hooks/merge-gate.json",
        ".clinerules/hooks/PreToolUse",
        ".windsurf/hooks.json",
        "AGENTS.md",
        ".mcp.json",
        ".git/hooks/pre-commit",
    ],
)
def test_agents_cannot_disarm_their_own_hooks(path: str, repo: Path, state: Path) -> None:
    write = builders("claude-code", str(repo))["write"]
    answer = hook("claude-code", write(path, "{}"), state)
    assert native("claude-code", answer) == "deny"
    shell = builders("gemini-cli", str(repo))["shell"]
    answer = hook("gemini-cli", shell(f"echo '{{}}' > {path}"), state)
    assert native("gemini-cli", answer) == "deny"
    assert "hook.control_surfaces" in reason("gemini-cli", answer)


def test_user_level_agent_settings_outside_the_repository_are_denied(
    repo: Path, state: Path, tmp_path: Path
) -> None:
    event = builders("claude-code", str(repo))["write"]("x", "{}")
    event["tool_input"]["file_path"] = str(tmp_path / "home/.claude/settings.json")
    assert native("claude-code", hook("claude-code", event, state)) == "deny"


def test_a_symlink_to_a_secret_is_read_as_the_secret(repo: Path, state: Path) -> None:
    link = repo / "notes.txt"
    link.symlink_to(repo / ".env")
    try:
        answer = hook("cursor", builders("cursor", str(repo))["read"]("notes.txt"), state)
    finally:
        link.unlink()
    assert native("cursor", answer) == "deny"
