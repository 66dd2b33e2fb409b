"""Each agent's documented pre-tool hook events, and how to read its native answer.

Shapes follow each agent's hook reference (see ``gate/agents/protocols.py``): a write,
an edit (Codex: an ``apply_patch`` envelope), a read and a shell command per agent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gate.agents.protocols import Answer

Event = dict[str, Any]


def claude(tool: str, cwd: str, **tool_input: Any) -> Event:
    return {
        "session_id": "sess-claude",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": cwd,
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input,
    }


def gemini(tool: str, cwd: str, **tool_input: Any) -> Event:
    return {
        "session_id": "sess-gemini",
        "cwd": cwd,
        "hook_event_name": "BeforeTool",
        "timestamp": "2026-01-01T00:00:00Z",
        "tool_name": tool,
        "tool_input": tool_input,
    }


def codex(tool: str, cwd: str, **tool_input: Any) -> Event:
    return {
        "session_id": "sess-codex",
        "turn_id": "t1",
        "cwd": cwd,
        "hook_event_name": "PreToolUse",
        "model": "gpt-5-codex",
        "tool_name": tool,
        "tool_input": tool_input,
    }


def copilot(tool: str, cwd: str, **args: Any) -> Event:
    # The camelCase form, toolArgs as a JSON string (as the CLI sends it).
    return {"timestamp": 1767225600000, "cwd": cwd, "toolName": tool, "toolArgs": json.dumps(args)}


def copilot_snake(tool: str, cwd: str, **args: Any) -> Event:
    return {"hook_event_name": "preToolUse", "cwd": cwd, "tool_name": tool, "tool_input": args}


def cursor(tool: str, cwd: str, **tool_input: Any) -> Event:
    return {
        "conversation_id": "conv-1",
        "generation_id": "gen-1",
        "hook_event_name": "preToolUse",
        "workspace_roots": [cwd],
        "tool_name": tool,
        "tool_input": tool_input,
    }


def cline(tool: str, cwd: str, **parameters: Any) -> Event:
    return {
        "clineVersion": "3.40.0",
        "hookName": "PreToolUse",
        "timestamp": "1767225600000",
        "taskId": "task-1",
        "workspaceRoots": [cwd],
        "userId": "u1",
        "preToolUse": {"toolName": tool, "parameters": parameters},
    }


def windsurf(action: str, workspace: str, **tool_info: Any) -> Event:
    return {
        "agent_action_name": action,
        "trajectory_id": "traj-1",
        "execution_id": "exec-1",
        "timestamp": "2026-01-01T00:00:00Z",
        "tool_info": tool_info,
    }


def patch_add(path: str, text: str) -> str:
    body = "".join(f"+{line}\n" for line in text.splitlines())
    return f"*** Begin Patch\n*** Add File: {path}\n{body}*** End Patch\n"


def patch_update(path: str, old: str, new: str) -> str:
    return f"*** Begin Patch\n*** Update File: {path}\n@@\n-{old}\n+{new}\n*** End Patch\n"


#: agent -> builders for (write path content), (edit path old new), (read path), (shell cmd).
Builders = dict[str, Callable[..., Event]]


def builders(agent: str, root: str) -> Builders:
    """Event builders for ``agent`` in the working tree ``root``."""
    absolute = lambda p: f"{root}/{p}"  # noqa: E731
    table: dict[str, Builders] = {
        "claude-code": {
            "write": lambda p, c: claude("Write", root, file_path=absolute(p), content=c),
            "edit": lambda p, o, n: claude(
                "Edit", root, file_path=absolute(p), old_string=o, new_string=n
            ),
            "read": lambda p: claude("Read", root, file_path=absolute(p)),
            "shell": lambda c: claude("Bash", root, command=c, description="run"),
        },
        "gemini-cli": {
            "write": lambda p, c: gemini("write_file", root, file_path=absolute(p), content=c),
            "edit": lambda p, o, n: gemini(
                "replace", root, file_path=absolute(p), old_string=o, new_string=n
            ),
            "read": lambda p: gemini("read_file", root, file_path=absolute(p)),
            "shell": lambda c: gemini("run_shell_command", root, command=c),
        },
        "codex": {
            "write": lambda p, c: codex("apply_patch", root, command=patch_add(p, c)),
            "edit": lambda p, o, n: codex("apply_patch", root, command=patch_update(p, o, n)),
            "read": lambda p: codex("Bash", root, command=f"cat {p}"),
            "shell": lambda c: codex("Bash", root, command=c),
        },
        "copilot": {
            "write": lambda p, c: copilot("create", root, path=absolute(p), file_text=c),
            "edit": lambda p, o, n: copilot("edit", root, path=absolute(p), old_str=o, new_str=n),
            "read": lambda p: copilot_snake("view", root, path=absolute(p)),
            "shell": lambda c: copilot_snake("bash", root, command=c, description="run"),
        },
        "cursor": {
            "write": lambda p, c: cursor("Write", root, file_path=absolute(p), contents=c),
            "edit": lambda p, o, n: cursor(
                "StrReplace", root, path=absolute(p), old_string=o, new_string=n
            ),
            "read": lambda p: {
                "conversation_id": "conv-1",
                "hook_event_name": "beforeReadFile",
                "workspace_roots": [root],
                "file_path": absolute(p),
                "content": "",
            },
            "shell": lambda c: {
                "conversation_id": "conv-1",
                "hook_event_name": "beforeShellExecution",
                "workspace_roots": [root],
                "command": c,
                "cwd": root,
            },
        },
        "cline": {
            "write": lambda p, c: cline("write_to_file", root, path=p, content=c),
            "edit": lambda p, o, n: cline(
                "replace_in_file",
                root,
                path=p,
                diff=f"------- SEARCH\n{o}\n=======\n{n}\n+++++++ REPLACE\n",
            ),
            "read": lambda p: cline("read_file", root, path=p),
            "shell": lambda c: cline("execute_command", root, command=c, requires_approval=False),
        },
        "windsurf": {
            "write": lambda p, c: windsurf(
                "pre_write_code",
                root,
                file_path=absolute(p),
                edits=[{"old_string": "", "new_string": c}],
            ),
            "edit": lambda p, o, n: windsurf(
                "pre_write_code",
                root,
                file_path=absolute(p),
                edits=[{"old_string": o, "new_string": n}],
            ),
            "read": lambda p: windsurf("pre_read_code", root, file_path=absolute(p)),
            "shell": lambda c: windsurf("pre_run_command", root, command_line=c, cwd=root),
        },
    }
    return table[agent]


def native(agent: str, answer: Answer) -> str:
    """The decision an agent reads from ``answer``, by its own protocol."""
    if agent == "windsurf":
        assert answer.stdout == ""
        return {0: "allow", 2: "deny"}[answer.exit_code]
    out = json.loads(answer.stdout)
    if agent in ("claude-code", "codex"):
        decision = out["hookSpecificOutput"]["permissionDecision"]
        assert out["hookSpecificOutput"]["hookEventName"] == "PreToolUse"
        assert out["hookSpecificOutput"]["permissionDecisionReason"].startswith("merge-gate: ")
        if agent == "codex":
            assert answer.exit_code == (2 if decision == "deny" else 0)
            assert (answer.stderr != "") == (decision == "deny")
        else:
            assert answer.exit_code == 0
        return str(decision)
    assert answer.exit_code == 0
    if agent == "gemini-cli":
        return str(out["decision"])
    if agent == "copilot":
        assert set(out) == {"permissionDecision", "permissionDecisionReason"}
        return str(out["permissionDecision"])
    if agent == "cursor":
        assert out["user_message"] == out["agent_message"]
        return str(out["permission"])
    assert agent == "cline"
    if out["cancel"]:
        assert out["errorMessage"].startswith("merge-gate: ")
        return "deny"
    return "allow"


def reason(agent: str, answer: Answer) -> str:
    """The human-readable reason in ``answer``."""
    if agent == "windsurf":
        return answer.stderr
    out = json.loads(answer.stdout)
    for key in ("hookSpecificOutput",):
        if key in out:
            return str(out[key]["permissionDecisionReason"])
    for key in ("reason", "permissionDecisionReason", "user_message", "errorMessage"):
        if key in out:
            return str(out[key])
    return ""
