"""Each agent's hook protocol: its event JSON in, its answer (stdout, stderr, exit code) out.

Field names follow each agent's own hook reference:

- Claude Code (https://docs.anthropic.com/en/docs/claude-code/hooks): ``PreToolUse`` with
  ``tool_name``/``tool_input``; answer ``hookSpecificOutput.permissionDecision``.
- Gemini CLI (https://geminicli.com/docs/hooks/reference): ``BeforeTool``; answer
  ``{"decision", "reason"}``.
- Codex (https://developers.openai.com/codex/hooks): ``PreToolUse``; ``apply_patch`` sends
  the patch envelope in ``tool_input.command``; a deny also exits 2 with the reason on
  stderr. Codex does not honour ``ask`` from a hook, so ask becomes deny.
- GitHub Copilot (https://docs.github.com/copilot, hooks): ``preToolUse`` with
  ``toolName``/``toolArgs`` (``toolArgs`` may be a JSON string) or ``tool_name``/
  ``tool_input``; answer ``{"permissionDecision", "permissionDecisionReason"}``, always
  exit 0. The cloud agent has nobody to ask, so there ask becomes deny.
- Cursor (https://cursor.com/docs/agent/hooks): ``preToolUse``, ``beforeShellExecution``,
  ``beforeReadFile``; answer ``{"permission", "user_message", "agent_message"}``.
- Cline (https://docs.cline.bot/features/hooks/hook-reference): ``PreToolUse`` with
  ``preToolUse.toolName``/``parameters``; answer ``{"cancel", "errorMessage"}``; no ask.
- Windsurf (https://docs.windsurf.com/windsurf/cascade/hooks): ``pre_write_code``,
  ``pre_read_code``, ``pre_run_command`` with ``tool_info``; deny is exit 2 with the reason
  on stderr; no ask.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gate.agents.action import Action, BadEvent, Decision, Edit, FileWrite, Verdict
from gate.agents.patch import parse_patch


@dataclass(frozen=True, slots=True)
class Answer:
    """What the hook process prints and how it exits."""

    stdout: str
    stderr: str
    exit_code: int


@dataclass(frozen=True, slots=True)
class AgentProtocol:
    name: str
    #: Whether the agent can put an ``ask`` to a human at all.
    can_ask: bool
    parse: Callable[[Mapping[str, Any]], Action]
    render: Callable[[Verdict], Answer]
    #: The tools ``gate hook install`` wires, per event.
    events: Mapping[str, tuple[str, ...]]

    def answer(self, verdict: Verdict, *, can_ask: bool = True) -> Answer:
        """``verdict`` in this agent's protocol; ask becomes deny where nobody can be asked."""
        if verdict.decision is Decision.ASK and not (self.can_ask and can_ask):
            verdict = Verdict(
                decision=Decision.DENY,
                reason=f"{verdict.reason} (a human must approve this, and this agent "
                "cannot ask: run it yourself or change the policy)",
                rule=verdict.rule,
                source=verdict.source,
                tier=verdict.tier,
            )
        return self.render(verdict)


# --- field access ----------------------------------------------------------------------


def _map(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadEvent(f"{what} is not a JSON object")
    return value


def _text(data: Mapping[str, Any], *keys: str, required: bool = True) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            return value
    if required:
        raise BadEvent(f"the event has no {' or '.join(keys)} string")
    return ""


def _opt(data: Mapping[str, Any], *keys: str) -> str | None:
    value = _text(data, *keys, required=False)
    return value or None


def _command(data: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return shlex.join(value)
    raise BadEvent(f"the event has no {' or '.join(keys)} command")


def _edits(items: object, old: str, new: str) -> tuple[Edit, ...]:
    if not isinstance(items, list) or not items:
        raise BadEvent("edits is not a non-empty list")
    return tuple(
        Edit(
            old=_text(_map(item, "an edit"), old),
            new=_text(_map(item, "an edit"), new),
            replace_all=_map(item, "an edit").get("replace_all") is True,
        )
        for item in items
    )


def _expect(event: str, allowed: tuple[str, ...]) -> None:
    if event not in allowed:
        raise BadEvent(f"unexpected hook event {event!r} (expected {', '.join(allowed)})")


def _unknown(tool: str) -> BadEvent:
    return BadEvent(f"unknown tool {tool!r}: not one the hook can judge")


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- Claude Code -----------------------------------------------------------------------


def _claude(event: Mapping[str, Any]) -> Action:
    _expect(_text(event, "hook_event_name"), ("PreToolUse",))
    tool = _text(event, "tool_name")
    data = _map(event.get("tool_input"), "tool_input")
    base = Action(
        agent="claude-code",
        event="PreToolUse",
        tool=tool,
        session=_text(event, "session_id", required=False),
        cwd=_opt(event, "cwd"),
    )
    if tool == "Write":
        write = FileWrite(path=_text(data, "file_path"), content=_text(data, "content"))
        return replace(base, writes=(write,))
    if tool == "Edit":
        edit = Edit(
            old=_text(data, "old_string"),
            new=_text(data, "new_string"),
            replace_all=data.get("replace_all") is True,
        )
        return replace(base, writes=(FileWrite(path=_text(data, "file_path"), edits=(edit,)),))
    if tool == "MultiEdit":
        edits = _edits(data.get("edits"), "old_string", "new_string")
        return replace(base, writes=(FileWrite(path=_text(data, "file_path"), edits=edits),))
    if tool == "NotebookEdit":
        # A cell's source inside notebook JSON: judged by path and by the added source.
        path = _text(data, "notebook_path")
        return replace(base, writes=(FileWrite(path=path, added=_text(data, "new_source")),))
    if tool == "Read":
        return replace(base, reads=(_text(data, "file_path"),))
    if tool == "Bash":
        return replace(base, command=_command(data, "command"))
    raise _unknown(tool)


def _claude_answer(verdict: Verdict) -> Answer:
    out = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": verdict.decision.value,
            "permissionDecisionReason": verdict.message,
        }
    }
    return Answer(stdout=_json(out), stderr="", exit_code=0)


# --- Gemini CLI ------------------------------------------------------------------------


def _gemini(event: Mapping[str, Any]) -> Action:
    _expect(_text(event, "hook_event_name"), ("BeforeTool",))
    tool = _text(event, "tool_name")
    data = _map(event.get("tool_input"), "tool_input")
    base = Action(
        agent="gemini-cli",
        event="BeforeTool",
        tool=tool,
        session=_text(event, "session_id", required=False),
        cwd=_opt(event, "cwd"),
    )
    if tool == "write_file":
        path = _text(data, "file_path", "absolute_path", "path")
        return replace(base, writes=(FileWrite(path=path, content=_text(data, "content")),))
    if tool == "replace":
        count = data.get("expected_replacements")
        edit = Edit(
            old=_text(data, "old_string"),
            new=_text(data, "new_string"),
            replace_all=isinstance(count, int) and count > 1,
        )
        path = _text(data, "file_path", "absolute_path", "path")
        return replace(base, writes=(FileWrite(path=path, edits=(edit,)),))
    if tool == "read_file":
        return replace(base, reads=(_text(data, "file_path", "absolute_path", "path"),))
    if tool == "run_shell_command":
        return replace(base, command=_command(data, "command"))
    raise _unknown(tool)


def _gemini_answer(verdict: Verdict) -> Answer:
    out = {"decision": verdict.decision.value, "reason": verdict.message}
    return Answer(stdout=_json(out), stderr="", exit_code=0)


# --- Codex -----------------------------------------------------------------------------

_CODEX_SHELLS = ("Bash", "shell", "local_shell", "exec_command", "container.exec")


def _codex(event: Mapping[str, Any]) -> Action:
    _expect(_text(event, "hook_event_name"), ("PreToolUse",))
    tool = _text(event, "tool_name")
    data = _map(event.get("tool_input"), "tool_input")
    base = Action(
        agent="codex",
        event="PreToolUse",
        tool=tool,
        session=_text(event, "session_id", required=False),
        cwd=_opt(event, "cwd"),
    )
    if tool == "apply_patch":
        return replace(base, writes=parse_patch(_text(data, "command", "patch", "input")))
    if tool in _CODEX_SHELLS:
        return replace(base, command=_command(data, "command", "cmd"))
    raise _unknown(tool)


def _codex_answer(verdict: Verdict) -> Answer:
    out = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": verdict.decision.value,
            "permissionDecisionReason": verdict.message,
        }
    }
    if verdict.decision is Decision.DENY:
        return Answer(stdout=_json(out), stderr=verdict.message + "\n", exit_code=2)
    return Answer(stdout=_json(out), stderr="", exit_code=0)


# --- GitHub Copilot --------------------------------------------------------------------


def _copilot(event: Mapping[str, Any]) -> Action:
    name = event.get("hook_event_name") or event.get("hookEventName") or "preToolUse"
    _expect(str(name), ("preToolUse", "PreToolUse"))
    tool = _text(event, "toolName", "tool_name")
    raw = event.get("toolArgs", event.get("tool_input"))
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise BadEvent("toolArgs is a string that is not JSON") from None
    data = _map(raw, "toolArgs")
    base = Action(
        agent="copilot",
        event="preToolUse",
        tool=tool,
        session=_text(event, "sessionId", "session_id", required=False),
        cwd=_opt(event, "cwd"),
    )
    if tool == "create":
        content = _text(data, "file_text", "content")
        return replace(base, writes=(FileWrite(path=_text(data, "path"), content=content),))
    if tool == "edit":
        edit = Edit(old=_text(data, "old_str"), new=_text(data, "new_str"))
        return replace(base, writes=(FileWrite(path=_text(data, "path"), edits=(edit,)),))
    if tool == "view":
        return replace(base, reads=(_text(data, "path"),))
    if tool == "bash":
        return replace(base, command=_command(data, "command"))
    raise _unknown(tool)


def _copilot_answer(verdict: Verdict) -> Answer:
    out = {
        "permissionDecision": verdict.decision.value,
        "permissionDecisionReason": verdict.message,
    }
    return Answer(stdout=_json(out), stderr="", exit_code=0)


# --- Cursor ----------------------------------------------------------------------------


def _cursor(event: Mapping[str, Any]) -> Action:
    name = _text(event, "hook_event_name")
    _expect(name, ("preToolUse", "beforeShellExecution", "beforeReadFile"))
    roots = event.get("workspace_roots")
    root = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None
    base = Action(
        agent="cursor",
        event=name,
        tool=name,
        session=_text(event, "conversation_id", "session_id", required=False),
        cwd=_opt(event, "cwd") or root,
    )
    if name == "beforeShellExecution":
        return replace(base, tool="Shell", command=_command(event, "command"))
    if name == "beforeReadFile":
        return replace(base, tool="Read", reads=(_text(event, "file_path", "path"),))
    tool = _text(event, "tool_name")
    data = _map(event.get("tool_input"), "tool_input")
    if tool == "Write":
        path = _text(data, "file_path", "path", "target_file")
        content = _text(data, "contents", "content", "file_text")
        return replace(base, tool=tool, writes=(FileWrite(path=path, content=content),))
    if tool == "StrReplace":
        path = _text(data, "file_path", "path", "target_file")
        edit = Edit(
            old=_text(data, "old_string"),
            new=_text(data, "new_string"),
            replace_all=data.get("replace_all") is True,
        )
        return replace(base, tool=tool, writes=(FileWrite(path=path, edits=(edit,)),))
    if tool == "Read":
        path = _text(data, "file_path", "path", "target_file")
        return replace(base, tool=tool, reads=(path,))
    if tool == "Shell":
        return replace(base, tool=tool, command=_command(data, "command"))
    raise _unknown(tool)


def _cursor_answer(verdict: Verdict) -> Answer:
    out = {
        "permission": verdict.decision.value,
        "user_message": verdict.message,
        "agent_message": verdict.message,
    }
    return Answer(stdout=_json(out), stderr="", exit_code=0)


# --- Cline -----------------------------------------------------------------------------

_SEARCH = ("------- SEARCH", "<<<<<<< SEARCH")
_DIVIDER = "======="
_REPLACE = ("+++++++ REPLACE", ">>>>>>> REPLACE")


def _search_replace(diff: str) -> tuple[Edit, ...]:
    """Cline's ``replace_in_file`` SEARCH/REPLACE blocks as edits."""
    edits: list[Edit] = []
    old: list[str] | None = None
    new: list[str] | None = None
    for line in diff.splitlines():
        marker = line.strip()
        if marker in _SEARCH:
            old, new = [], None
        elif marker == _DIVIDER and old is not None and new is None:
            new = []
        elif marker in _REPLACE and old is not None and new is not None:
            edits.append(Edit(old="\n".join(old), new="\n".join(new)))
            old = new = None
        elif new is not None:
            new.append(line)
        elif old is not None:
            old.append(line)
    if not edits or old is not None:
        raise BadEvent("replace_in_file: the diff has no complete SEARCH/REPLACE block")
    return tuple(edits)


def _cline(event: Mapping[str, Any]) -> Action:
    _expect(_text(event, "hookName"), ("PreToolUse",))
    call = _map(event.get("preToolUse"), "preToolUse")
    tool = _text(call, "toolName")
    data = _map(call.get("parameters"), "parameters")
    roots = event.get("workspaceRoots")
    root = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else None
    base = Action(
        agent="cline",
        event="PreToolUse",
        tool=tool,
        session=_text(event, "taskId", required=False),
        cwd=root,
    )
    if tool == "write_to_file":
        write = FileWrite(path=_text(data, "path"), content=_text(data, "content"))
        return replace(base, writes=(write,))
    if tool == "replace_in_file":
        edits = _search_replace(_text(data, "diff"))
        return replace(base, writes=(FileWrite(path=_text(data, "path"), edits=edits),))
    if tool == "read_file":
        return replace(base, reads=(_text(data, "path"),))
    if tool == "execute_command":
        return replace(base, command=_command(data, "command"))
    raise _unknown(tool)


def _cline_answer(verdict: Verdict) -> Answer:
    if verdict.decision is Decision.ALLOW:
        return Answer(stdout=_json({"cancel": False}), stderr="", exit_code=0)
    out = {"cancel": True, "errorMessage": verdict.message}
    return Answer(stdout=_json(out), stderr="", exit_code=0)


# --- Windsurf --------------------------------------------------------------------------


def _windsurf(event: Mapping[str, Any]) -> Action:
    name = _text(event, "agent_action_name")
    _expect(name, ("pre_write_code", "pre_read_code", "pre_run_command"))
    info = _map(event.get("tool_info"), "tool_info")
    base = Action(
        agent="windsurf",
        event=name,
        tool=name,
        session=_text(event, "trajectory_id", required=False),
        cwd=_opt(info, "cwd"),
    )
    if name == "pre_write_code":
        edits = _edits(info.get("edits"), "old_string", "new_string")
        return replace(base, writes=(FileWrite(path=_text(info, "file_path"), edits=edits),))
    if name == "pre_read_code":
        return replace(base, reads=(_text(info, "file_path"),))
    return replace(base, command=_command(info, "command_line"))


def _windsurf_answer(verdict: Verdict) -> Answer:
    if verdict.decision is Decision.ALLOW:
        return Answer(stdout="", stderr="", exit_code=0)
    return Answer(stdout="", stderr=verdict.message + "\n", exit_code=2)


AGENTS: Mapping[str, AgentProtocol] = {
    p.name: p
    for p in (
        AgentProtocol(
            "claude-code",
            True,
            _claude,
            _claude_answer,
            {"PreToolUse": ("Write", "Edit", "MultiEdit", "NotebookEdit", "Read", "Bash")},
        ),
        AgentProtocol(
            "gemini-cli",
            True,
            _gemini,
            _gemini_answer,
            {"BeforeTool": ("write_file", "replace", "read_file", "run_shell_command")},
        ),
        AgentProtocol(
            "codex", False, _codex, _codex_answer, {"PreToolUse": ("apply_patch", "Bash")}
        ),
        AgentProtocol(
            "copilot",
            True,
            _copilot,
            _copilot_answer,
            {"preToolUse": ("create", "edit", "view", "bash")},
        ),
        AgentProtocol(
            "cursor",
            True,
            _cursor,
            _cursor_answer,
            {
                "preToolUse": ("Write", "StrReplace", "Shell", "Read"),
                "beforeShellExecution": (),
                "beforeReadFile": (),
            },
        ),
        AgentProtocol(
            "cline",
            False,
            _cline,
            _cline_answer,
            {"PreToolUse": ("write_to_file", "replace_in_file", "read_file", "execute_command")},
        ),
        AgentProtocol(
            "windsurf",
            False,
            _windsurf,
            _windsurf_answer,
            {"pre_write_code": (), "pre_read_code": (), "pre_run_command": ()},
        ),
    )
}


def parse_event(agent: str, raw: bytes | str) -> Action:
    """The action in ``raw`` (the hook's stdin) for ``agent``; raises ``BadEvent``."""
    try:
        event = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadEvent("the hook event on stdin is not JSON") from None
    return AGENTS[agent].parse(_map(event, "the hook event"))
