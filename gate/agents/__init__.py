"""The agent side of merge-gate: the same policy, checked before the write (``gate hook``).

An agent's pre-action hook event (Claude Code, Gemini CLI, Codex, Copilot, Cursor, Cline,
Windsurf) is parsed into one :class:`~gate.agents.action.Action` (files written, files
read, a shell command), decided against the base branch's policy by the merge gate's own
classifier, and the :class:`~gate.agents.action.Verdict` is rendered back in that agent's
protocol. Everything here is pure; ``webhooks/commands/hook.py`` does the I/O.
"""
