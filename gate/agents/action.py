"""What an agent is about to do, and what the hook answers.

Every agent's event becomes one :class:`Action`: the files it writes (with their new
text or the edits that make it), the files it reads, and the shell command it runs.
The answer is a :class:`Verdict`: ``allow``, ``ask`` (a human confirms) or ``deny``,
with the rule and the file that decided, so the agent learns at write time exactly
what the merge gate will say.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Decision(enum.StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Decision.ALLOW: 0, Decision.ASK: 1, Decision.DENY: 2}


class BadEvent(ValueError):
    """The event is not one this agent documents; the hook answers deny (fail closed)."""


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``old`` by ``new`` in the file (every occurrence when ``replace_all``)."""

    old: str
    new: str
    replace_all: bool = False


@dataclass(frozen=True, slots=True)
class FileWrite:
    """One file the action creates, changes, moves or deletes.

    ``content`` is the whole new text when the agent sends it (Write, create); otherwise
    ``edits`` say how the current text changes. ``added`` holds text known to be added
    when neither can be applied (a patch hunk), so secrets are still found in it.
    """

    path: str
    content: str | None = None
    edits: tuple[Edit, ...] = ()
    added: str = ""
    delete: bool = False
    move_to: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    """One agent tool call, normalised."""

    agent: str
    event: str
    tool: str
    session: str = ""
    cwd: str | None = None
    writes: tuple[FileWrite, ...] = ()
    reads: tuple[str, ...] = ()
    command: str | None = None

    @property
    def kind(self) -> str:
        if self.command is not None:
            return "shell"
        if self.writes:
            return "write"
        if self.reads:
            return "read"
        return "none"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The hook's answer: the decision, the rule that made it and where that rule lives."""

    decision: Decision
    reason: str
    rule: str
    source: str = ""
    tier: str | None = None

    @property
    def message(self) -> str:
        """What the agent and the human read: the reason, then which rule of which file."""
        where = f" ({self.rule}, {self.source})" if self.source else f" ({self.rule})"
        return f"merge-gate: {self.reason}{where}"


def strictest(verdicts: list[Verdict]) -> Verdict | None:
    """The verdict to answer with: deny over ask over allow; the first of equals."""
    best: Verdict | None = None
    for verdict in verdicts:
        if best is None or verdict.decision.rank > best.decision.rank:
            best = verdict
    return best
