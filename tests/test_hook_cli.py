"""``gate hook`` as agents run it: a real process, the policy from the base ref, fail closed.

Every failure (garbage on stdin, an unknown tool, no base ref, a policy that does not
parse, an audit log that cannot be written) must still print a deny in the agent's own
protocol. The matrix runs ``gate-hook`` (the same command without the rest of the CLI);
one case per failure also runs through ``gate hook``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gate.agents.protocols import AGENTS, Answer
from tests.agent_events import builders, native, reason
from tests.test_agent_hooks import git, make_repo

BIN = Path(sys.executable).parent
#: Calls after a directory's first are answered by its daemon, which leaves soon after.
DAEMON_ENV = {"GATE_HOOK_IDLE": "10"}
POLICY = """\
version: 1
tiers:
  - name: low
    paths: ["docs/**"]
    require: {approvals: 0}
  - name: medium
    require: {approvals: 1}
  - name: frozen
    description: vendored code nobody edits by hand
    paths: ["vendor/**"]
    require: {approvals: 2}
    agent_edit: deny
default_tier: medium
unseen_content_tier: medium
"""


def run_hook(
    agent: str,
    stdin: bytes | str,
    *,
    state: Path,
    cwd: Path,
    full_cli: bool = False,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Answer:
    command = [str(BIN / "gate"), "hook"] if full_cli else [str(BIN / "gate-hook")]
    done = subprocess.run(
        [*command, "--agent", agent, *extra],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, **DAEMON_ENV, "GATE_DATA_DIR": str(state), **(env or {})},
        timeout=60,
        check=False,
    )
    return Answer(
        stdout=done.stdout.decode().strip(), stderr=done.stderr.decode(), exit_code=done.returncode
    )


def run_all(
    jobs: list[tuple[str, bytes | str, Path]], *, state: Path, full_cli: bool = False
) -> list[Answer]:
    """Run several hooks at once (each a real process), answers in order."""
    command = [str(BIN / "gate"), "hook"] if full_cli else [str(BIN / "gate-hook")]
    env = {**os.environ, **DAEMON_ENV, "GATE_DATA_DIR": str(state)}
    procs = [
        (
            subprocess.Popen(
                [*command, "--agent", agent],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
            ),
            stdin.encode() if isinstance(stdin, str) else stdin,
        )
        for agent, stdin, cwd in jobs
    ]
    answers = []
    for proc, data in procs:
        out, err = proc.communicate(data, timeout=60)
        answers.append(Answer(out.decode().strip(), err.decode(), proc.returncode))
    return answers


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(
        tmp_path_factory.mktemp("cli") / "repo",
        {".github/merge-gate.yml": POLICY, "vendor/lib.py": "v = 1\n", "app/x.py": "x = 1\n"},
    )


def _unknown_tool(agent: str, root: Path) -> dict[str, object]:
    event = builders(agent, str(root))["shell"]("ls")
    if agent == "cline":
        event["preToolUse"] = {"toolName": "browser_action", "parameters": {"url": "x"}}
    elif agent == "windsurf":
        event["agent_action_name"] = "pre_mcp_tool_use"
    elif agent == "copilot":
        event["tool_name"] = "web_fetch"
    elif agent == "cursor":
        event = {
            "hook_event_name": "preToolUse",
            "workspace_roots": [str(root)],
            "tool_name": "Delete",
            "tool_input": {"path": "x"},
        }
    else:
        event["tool_name"] = "WebFetch"
    return event


def _write(agent: str, root: Path, path: str = "app/y.py") -> str:
    return json.dumps(builders(agent, str(root))["write"](path, "y = 1\n"))


@pytest.mark.parametrize("case", ["garbage", "not-an-object", "unknown-tool", "wrong-event"])
def test_unreadable_events_are_denied_by_every_agent(case: str, repo: Path, tmp_path: Path) -> None:
    jobs: list[tuple[str, bytes | str, Path]] = []
    for agent in sorted(AGENTS):
        if case == "garbage":
            stdin: bytes | str = b"\xff\xfe not json {"
        elif case == "not-an-object":
            stdin = "[1, 2]"
        elif case == "unknown-tool":
            stdin = json.dumps(_unknown_tool(agent, repo))
        else:
            event = json.loads(_write(agent, repo))
            for key in ("hook_event_name", "hookName", "agent_action_name"):
                if key in event:
                    event[key] = "PostToolUse"
            if agent == "copilot":
                event["hook_event_name"] = "postToolUse"
            stdin = json.dumps(event)
        jobs.append((agent, stdin, repo))
    for (agent, _, _), answer in zip(jobs, run_all(jobs, state=tmp_path), strict=True):
        assert native(agent, answer) == "deny", (agent, answer)
        assert "fails closed" in reason(agent, answer)


def _failing_repos(tmp_path: Path) -> dict[str, Path]:
    bad = make_repo(tmp_path / "bad-policy", {".github/merge-gate.yml": "version: 2\ntiers: []\n"})
    no_base = tmp_path / "no-base"
    make_repo(no_base, {"a.txt": "a\n"})
    git(no_base, "branch", "-m", "main", "feature")
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    return {"bad-policy": bad, "no-base-ref": no_base, "not-a-repo": plain}


def test_no_base_ref_bad_policy_or_no_repository_deny_for_every_agent(tmp_path: Path) -> None:
    repos = _failing_repos(tmp_path)
    jobs = [(a, _write(a, root), root) for root in repos.values() for a in sorted(AGENTS)]
    answers = run_all(jobs, state=tmp_path / "state")
    for (agent, _, root), answer in zip(jobs, answers, strict=True):
        assert native(agent, answer) == "deny", (agent, root, answer)
        text = reason(agent, answer)
        if root == repos["bad-policy"]:
            assert "does not parse" in text
            assert "main:.github/merge-gate.yml:1:" in text
        elif root == repos["no-base-ref"]:
            assert "no base ref" in text
        else:
            assert "not inside a git repository" in text


def test_the_full_cli_fails_closed_too(repo: Path, tmp_path: Path) -> None:
    repos = _failing_repos(tmp_path)
    jobs: list[tuple[str, bytes | str, Path]] = [
        ("claude-code", b"garbage", repo),
        ("windsurf", json.dumps(_unknown_tool("windsurf", repo)), repo),
        ("codex", _write("codex", repos["bad-policy"]), repos["bad-policy"]),
        ("cline", _write("cline", repos["no-base-ref"]), repos["no-base-ref"]),
    ]
    for (agent, _, _), answer in zip(
        jobs, run_all(jobs, state=tmp_path / "s", full_cli=True), strict=True
    ):
        assert native(agent, answer) == "deny", (agent, answer)


def test_an_audit_log_that_cannot_be_written_denies(repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "state-is-a-file"
    blocker.write_text("")
    answer = run_hook("claude-code", _write("claude-code", repo), state=blocker, cwd=repo)
    assert native("claude-code", answer) == "deny"
    assert "audit log could not be written" in reason("claude-code", answer)


def test_the_policy_comes_from_the_base_ref_not_the_working_tree(
    repo: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    git(clone, "checkout", "-q", "-b", "agent/work")
    # The agent loosens the policy in its branch, committed and in the working tree.
    (clone / ".github/merge-gate.yml").write_text(POLICY.replace("agent_edit: deny", ""))
    git(clone, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qam", "loosen")
    answer = run_hook(
        "claude-code",
        _write("claude-code", clone, "vendor/lib.py"),
        state=tmp_path / "s",
        cwd=clone,
    )
    assert native("claude-code", answer) == "deny"
    text = reason("claude-code", answer)
    assert "tiers.frozen.agent_edit" in text
    assert ".github/merge-gate.yml:" in text  # the base file's line that decided
    # The base is origin/HEAD (the remote's default branch) when there is one.
    fields = json.loads(
        subprocess.run(
            [str(BIN / "gate"), "audit", "--format", "jsonl", "--data-dir", str(tmp_path / "s")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
    )
    assert fields["base_ref"] == "origin/HEAD"
    assert fields["base_sha"] == git(repo, "rev-parse", "main").strip()


def test_base_flag_picks_the_ref(repo: Path, tmp_path: Path) -> None:
    answer = run_hook(
        "gemini-cli",
        _write("gemini-cli", repo, "vendor/x.py"),
        state=tmp_path,
        cwd=repo,
        extra=("--base", "main"),
    )
    assert native("gemini-cli", answer) == "deny"
    missing = run_hook(
        "gemini-cli", _write("gemini-cli", repo), state=tmp_path, cwd=repo, extra=("--base", "nope")
    )
    assert native("gemini-cli", missing) == "deny"
    assert "no base ref (nope)" in reason("gemini-cli", missing)


def test_local_log_verifies_and_shows_beside_pr_decisions(repo: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    jobs: list[tuple[str, bytes | str, Path]] = [
        ("claude-code", _write("claude-code", repo), repo),
        ("cursor", _write("cursor", repo, "vendor/z.py"), repo),
    ]
    run_all(jobs, state=state)
    env = {**os.environ, **DAEMON_ENV, "GATE_DATA_DIR": str(state)}
    verify = subprocess.run(
        [str(BIN / "gate"), "audit", "verify"], capture_output=True, text=True, env=env, check=False
    )
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("ok: 2 entries")
    table = subprocess.run(
        [str(BIN / "gate"), "audit", "--agent", "cursor"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert "agent_action" in table
    assert "vendor/z.py" in table
    assert "claude-code" not in table
