"""``gate hook install`` and ``gate hook doctor``: wire each agent to ``gate hook``.

``install --agent NAME [--scope project|user] [--print]`` merges the hook into the
agent's own settings file, keeping every other setting and hook there, and replaces an
earlier merge-gate entry instead of adding a second one. ``doctor`` reports which agents
a working tree (and the user's home) wires to ``gate hook``.

Project files are inside the repository, so an agent could edit them (``gate hook``
itself denies writes to them, see ``gate.agents.decision.CONTROL_SURFACES``); the
organisation-wide place for each agent is its managed configuration, listed in
:data:`MANAGED` and in ``docs/agent-hooks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate.agents.protocols import AGENTS

MARKERS = ("gate-hook", "gate hook")


@dataclass(frozen=True, slots=True)
class Target:
    project: str
    user: str
    #: "claude" (matcher groups), "copilot", "cursor", "windsurf" or "script" (Cline).
    style: str


TARGETS: Mapping[str, Target] = {
    "claude-code": Target(".claude/settings.json", "~/.claude/settings.json", "claude"),
    "gemini-cli": Target(".gemini/settings.json", "~/.gemini/settings.json", "claude"),
    "codex": Target(".codex/hooks.json", "~/.codex/hooks.json", "claude"),
    "copilot": Target(
        ".github/hooks/merge-gate.json", "~/.copilot/hooks/merge-gate.json", "copilot"
    ),
    "cursor": Target(".cursor/hooks.json", "~/.cursor/hooks.json", "cursor"),
    "cline": Target(".clinerules/hooks/PreToolUse", "~/Documents/Cline/Hooks/PreToolUse", "script"),
    "windsurf": Target(".windsurf/hooks.json", "~/.codeium/windsurf/hooks.json", "windsurf"),
}

#: Where each agent reads configuration that users and agents cannot override.
MANAGED: Mapping[str, str] = {
    "claude-code": "managed-settings.json: /etc/claude-code/ (Linux), "
    "/Library/Application Support/ClaudeCode/ (macOS), C:\\ProgramData\\ClaudeCode\\ (Windows); "
    "set allowManagedHooksOnly",
    "gemini-cli": "system settings: /etc/gemini-cli/settings.json (Linux), "
    "/Library/Application Support/GeminiCli/settings.json (macOS)",
    "codex": "managed configuration: /etc/codex/managed_config.toml and requirements.toml, "
    "or MDM on macOS",
    "copilot": "the repository's .github/hooks/ on the default branch (protect it with "
    "CODEOWNERS and the merge gate's governance tier); org-level Copilot policies",
    "cursor": "enterprise hooks: /etc/cursor/hooks.json (Linux), "
    "/Library/Application Support/Cursor/hooks.json (macOS), or team hooks in the dashboard",
    "cline": "global hooks in ~/Documents/Cline/Hooks/ deployed by device management",
    "windsurf": "system hooks: /etc/windsurf/hooks.json (Linux), "
    "/Library/Application Support/Windsurf/hooks.json (macOS), or team settings",
}


def default_command(agent: str) -> str:
    found = shutil.which("gate-hook")
    return f"{found or 'gate-hook'} --agent {agent}"


def _ours(entry: object) -> bool:
    text = json.dumps(entry)
    return any(marker in text for marker in MARKERS)


def _matcher_groups(settings: dict[str, Any], agent: str, command: str) -> None:
    hooks = settings.setdefault("hooks", {})
    for event, tools in AGENTS[agent].events.items():
        groups = [g for g in hooks.get(event, []) if not _ours(g)]
        group: dict[str, Any] = {"hooks": [{"type": "command", "command": command}]}
        if tools:
            group = {"matcher": "|".join(tools), **group}
        hooks[event] = [*groups, group]


def _copilot(settings: dict[str, Any], agent: str, command: str) -> None:
    settings.setdefault("version", 1)
    hooks = settings.setdefault("hooks", {})
    kept = [h for h in hooks.get("preToolUse", []) if not _ours(h)]
    hooks["preToolUse"] = [*kept, {"type": "command", "bash": command, "timeoutSec": 10}]


def _cursor(settings: dict[str, Any], agent: str, command: str) -> None:
    settings.setdefault("version", 1)
    hooks = settings.setdefault("hooks", {})
    for event, tools in AGENTS[agent].events.items():
        kept = [h for h in hooks.get(event, []) if not _ours(h)]
        entry: dict[str, Any] = {"command": command}
        if tools:
            entry["matcher"] = "|".join(tools)
        hooks[event] = [*kept, entry]


def _windsurf(settings: dict[str, Any], agent: str, command: str) -> None:
    hooks = settings.setdefault("hooks", {})
    for event in AGENTS[agent].events:
        kept = [h for h in hooks.get(event, []) if not _ours(h)]
        hooks[event] = [*kept, {"command": command, "show_output": True}]


_MERGERS = {
    "claude": _matcher_groups,
    "copilot": _copilot,
    "cursor": _cursor,
    "windsurf": _windsurf,
}


class InstallError(Exception):
    pass


def merged(agent: str, existing: str | None, command: str) -> str:
    """The new file text: ``existing`` with the merge-gate hook in place."""
    target = TARGETS[agent]
    if target.style == "script":
        if existing is not None and not _ours(existing):
            raise InstallError(
                "a PreToolUse hook script exists and is not merge-gate's: call "
                f"`{command}` from it (stdin passes through), or remove it"
            )
        return (
            "#!/bin/sh\n# merge-gate: judge every tool call by the base branch's policy.\n"
            f"exec {command}\n"
        )
    try:
        settings = json.loads(existing) if existing and existing.strip() else {}
    except json.JSONDecodeError as error:
        raise InstallError(f"the existing file is not JSON ({error}); fix it first") from None
    if not isinstance(settings, dict):
        raise InstallError("the existing file is not a JSON object")
    _MERGERS[target.style](settings, agent, command)
    return json.dumps(settings, indent=2) + "\n"


def _path(agent: str, scope: str, root: Path) -> Path:
    target = TARGETS[agent]
    return Path(target.user).expanduser() if scope == "user" else root / target.project


def install(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    path = _path(args.agent, args.scope, root)
    existing = path.read_text(encoding="utf-8") if path.exists() else None
    try:
        text = merged(args.agent, existing, args.command or default_command(args.agent))
    except InstallError as error:
        print(f"gate hook install: {path}: {error}", file=sys.stderr)
        return 1
    if args.print:
        sys.stdout.write(text)
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if TARGETS[args.agent].style == "script":
        path.chmod(0o755)
    print(f"wrote {path}")
    print(f"organisation-wide (agents cannot edit it): {MANAGED[args.agent]}")
    return 0


def wired(agent: str, path: Path) -> bool:
    """Whether the file at ``path`` runs ``gate hook`` for ``agent``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(marker in text for marker in MARKERS) and f"--agent {agent}" in text


def doctor(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    any_wired = False
    for agent in sorted(TARGETS):
        for scope in ("project", "user"):
            path = _path(agent, scope, root)
            ok = wired(agent, path)
            any_wired |= ok
            state = "wired" if ok else ("present, not wired" if path.exists() else "absent")
            print(f"{agent:12} {scope:8} {state:20} {path}")
    if not any_wired:
        print("no agent is wired to gate hook: run `gate hook install --agent NAME`")
    print(org_policy_state(os.environ))
    return 0 if any_wired else 1


def org_policy_state(env: Mapping[str, str]) -> str:
    """What the hook makes of ``$GATE_ORG_POLICY_FILE``, in one line for the doctor.

    The hook refuses a file others may write; a file the agent's own user may write
    it still reads (the hook cannot tell that user from the agent), so the doctor says
    so: agents run as this user, and the file belongs to root (mode 0644).
    """
    from webhooks.commands.hook import ORG_POLICY_ENV, OrgPolicyError, read_org_policy

    try:
        found = read_org_policy(env)
    except OrgPolicyError as error:
        return f"organisation policy: refused, every action is denied where it applies: {error}"
    if found is None:
        return (
            f"organisation policy: {ORG_POLICY_ENV} is not set; a repository whose policy "
            "says 'extend: org' has every agent action denied"
        )
    if os.access(found.path, os.W_OK):
        return (
            f"organisation policy: {found.path} — WARNING: this user can write it, and so can "
            "an agent running as this user; install it owned by root, mode 0644"
        )
    return f"organisation policy: {found.path} (sha256:{found.sha[:12]}), read-only here"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inst = sub.add_parser("install", help="write (or print) an agent's hook configuration")
    inst.add_argument("--agent", required=True, choices=sorted(TARGETS))
    inst.add_argument("--scope", choices=("project", "user"), default="project")
    inst.add_argument("--print", action="store_true", help="print the merged file instead")
    inst.add_argument("--dir", default=".", help="the working tree (default: .)")
    inst.add_argument("--command", help="the hook command (default: gate-hook --agent NAME)")
    inst.set_defaults(func=install)
    doc = sub.add_parser("doctor", help="which agents are wired to gate hook")
    doc.add_argument("--dir", default=".", help="the working tree (default: .)")
    doc.set_defaults(func=doctor)
