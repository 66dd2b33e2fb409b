"""The hook's decision, on the merge gate's own classifier and the base branch's policy.

A write is judged exactly as the merge gate would judge the same change: the file is
handed to :func:`gate.classify.classify_files` (tiers, ``scope.deny``, every detector,
secrets included) as a one-file pull request, and the hook answers with the tier's
``agent_edit`` (allow, ask or deny), or deny when the merge gate would deny the change.
Nothing about tiers is decided here.

On top of the policy the hook keeps one built-in list, :data:`CONTROL_SURFACES`: the
settings, hooks and instruction files of coding agents. Writing them is always denied,
so an agent cannot switch off its own hook or rewrite its own instructions.

Reads are checked against the policy's ``scope.deny_read``; shell commands by what
:mod:`gate.agents.shell` finds in them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from gate.agents.action import Decision, Verdict, strictest
from gate.agents.shell import ShellFacts, analyse
from gate.agents.view import LoadedView
from gate.globs import GlobSet

if TYPE_CHECKING:
    # Types only. Reads and most commands need no classifier, and the hook decides on a
    # cached view of the policy without pydantic: each is imported where it is used.
    from gate.codeowners import CodeOwners
    from gate.detectors.base import Detector
    from gate.model import ChangedFile, Contents
    from gate.policy import LoadedPolicy

#: Agent settings, hooks and instruction files: writes here are always denied.
CONTROL_SURFACES = (
    ".claude/**",
    "CLAUDE.md",
    "CLAUDE.local.md",
    "AGENTS.md",
    "AGENT.md",
    "GEMINI.md",
    ".cursor/**",
    ".cursorrules",
    ".codex/**",
    ".gemini/**",
    ".windsurf/**",
    ".windsurfrules",
    ".clinerules",
    ".clinerules/**",
    ".github/hooks/**",
    ".github/copilot-instructions.md",
    ".github/instructions/**",
    ".vscode/settings.json",
    ".mcp.json",
    ".cursor/mcp.json",
    ".codeium/**",
    # Git's own hooks and configuration: writing them disarms every repository safeguard.
    ".git/**",
)
BUILTIN_SOURCE = "gate hook built-in rules"
_SURFACES = GlobSet.compile(CONTROL_SURFACES)


@dataclass(frozen=True, slots=True)
class Change:
    """One file write, resolved by the edge: repository path and the text before and after.

    ``before`` is ``None`` for a new file, ``after`` ``None`` for a deletion; ``added`` is
    text known to be added when ``after`` could not be rebuilt (a hunk that does not apply).
    ``inside`` is False for a path outside the repository (judged by suffix there).
    """

    path: str
    before: str | None
    after: str | None
    added: str = ""
    previous_path: str | None = None
    inside: bool = True


@dataclass(frozen=True, slots=True)
class Rules:
    """What a decision needs: the base branch's policy and owners, and the detectors.

    ``policy`` is the parsed policy or its cached :class:`~gate.agents.view.LoadedView`;
    the classifier reads the same attributes of either.
    """

    policy: LoadedPolicy | LoadedView
    #: None when the action writes nothing (CODEOWNERS is then not parsed).
    codeowners: CodeOwners | None
    detectors: Mapping[str, Detector]
    #: Branches that force-pushes and deletions may not touch (the base branch first).
    base_branches: frozenset[str]


def _suffixes(path: str) -> list[str]:
    """``a/b/c`` -> ``a/b/c``, ``b/c``, ``c``: a path outside the repository is matched by
    every tail, so ``~/.aws/credentials`` meets ``.aws/credentials``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return ["/".join(parts[i:]) for i in range(len(parts))]


def _which(globs: GlobSet, path: str, *, anywhere: bool) -> str | None:
    for candidate in _suffixes(path) if anywhere else [path]:
        found = globs.which(candidate)
        if found is not None:
            return found
    return None


def control_surface(path: str, *, inside: bool = True) -> str | None:
    """The control-surface glob ``path`` matches, if any."""
    return _which(_SURFACES, path, anywhere=not inside)


def _patch(before: str, after: str) -> str:
    """Hunks of a unified diff, as GitHub's ``patch`` field holds them (no file header)."""
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3)
    return "\n".join(line for i, line in enumerate(lines) if i >= 2)


def changed_file(change: Change) -> tuple[ChangedFile, Contents]:
    """The change as the merge gate sees a pull-request file, with its texts."""
    from gate.model import ChangedFile, Contents, FileStatus

    if change.after is None and change.before is not None and not change.added:
        status = FileStatus.REMOVED
        patch: str | None = _patch(change.before, "")
    elif change.after is None:
        status = FileStatus.ADDED if change.before is None else FileStatus.MODIFIED
        added = change.added.splitlines() or [""]
        patch = f"@@ -0,0 +1,{len(added)} @@\n" + "\n".join("+" + line for line in added)
    else:
        status = FileStatus.ADDED if change.before is None else FileStatus.MODIFIED
        patch = _patch(change.before or "", change.after)
    if change.previous_path:
        status = FileStatus.RENAMED
    file = ChangedFile(
        path=change.path,
        status=status,
        previous_path=change.previous_path,
        patch=patch,
        additions=patch.count("\n+") if patch else 0,
    )
    texts = {("base", change.path): change.before, ("head", change.path): change.after}
    if change.previous_path:
        texts[("base", change.previous_path)] = change.before
    return file, Contents(texts=texts)


def decide_write(rules: Rules, change: Change) -> Verdict:
    """Deny, ask or allow one file write, as the merge gate would tier the same change."""
    for path in filter(None, (change.path, change.previous_path)):
        surface = control_surface(path, inside=change.inside)
        if surface is not None:
            return Verdict(
                decision=Decision.DENY,
                reason=f"{path} matches {surface!r}: agent settings, hooks and instructions "
                "are not for agents to change",
                rule="hook.control_surfaces",
                source=BUILTIN_SOURCE,
            )
    from gate import classify
    from gate.codeowners import CodeOwners

    file, contents = changed_file(change)
    (result,) = classify.classify_files(
        # The view has every attribute the classifier reads (tested for equal results).
        policy=cast("LoadedPolicy", rules.policy),
        codeowners=rules.codeowners or CodeOwners.empty(),
        files=[file],
        contents=contents,
        detectors=rules.detectors,
        agent=True,
    )
    policy = rules.policy.policy
    if result.denied:
        first = result.reasons[0]
        return Verdict(
            decision=Decision.DENY,
            reason=f"{change.path}: {first.detail}; the merge gate would deny this change",
            rule=first.rule,
            source=first.source,
            tier=result.tier,
        )
    rank = policy.rank(result.tier)
    tier = policy.tiers[rank]
    why = result.reasons[0].detail if result.reasons else ""
    said = {"allow": "allowed", "ask": "allowed once a human approves", "deny": "denied"}
    reason = (
        f"{change.path} is tier {tier.name!r} ({tier.description or why}); "
        f"an agent's edit here is {said[tier.agent_edit]}"
    )
    if why and tier.description:
        reason += f" [{why}]"
    return Verdict(
        decision=Decision(tier.agent_edit),
        reason=reason,
        rule=f"tiers.{tier.name}.agent_edit",
        source=rules.policy.cite("tiers", rank, "agent_edit"),
        tier=tier.name,
    )


def decide_read(rules: Rules, path: str, *, inside: bool = True) -> Verdict:
    """Deny reading secret material (``scope.deny_read``); allow the rest."""
    patterns = rules.policy.policy.scope.deny_read
    found = _which(_deny_read(patterns), path, anywhere=True)
    if found is not None:
        return Verdict(
            decision=Decision.DENY,
            reason=f"reading {path} is denied: it matches {found!r}, secret material "
            "an agent may not read",
            rule="scope.deny_read",
            source=rules.policy.cite("scope", "deny_read", patterns.index(found)),
        )
    return _allowed(rules, f"reading {path}")


def _deny_read(patterns: Sequence[str]) -> GlobSet:
    return _compiled(tuple(patterns))


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> GlobSet:
    return GlobSet.compile(patterns)


def _allowed(rules: Rules, what: str) -> Verdict:
    return Verdict(
        decision=Decision.ALLOW,
        reason=f"{what}: no rule applies",
        rule="default",
        source=rules.policy.path,
    )


def decide_shell(
    rules: Rules, command: str, *, inside: Mapping[str, str | None] | None = None
) -> Verdict:
    """Deny, ask or allow a shell command by what it plainly does.

    ``inside`` maps each path the command names to its repository path (``None`` when it
    lies outside the repository); paths it lacks are taken as repository paths.
    """
    facts = analyse(command, base_branches=rules.base_branches)
    verdicts = shell_verdicts(rules, facts, inside=inside or {})
    return strictest(verdicts) or _allowed(rules, "the command")


def shell_verdicts(
    rules: Rules, facts: ShellFacts, *, inside: Mapping[str, str | None]
) -> list[Verdict]:
    verdicts: list[Verdict] = []
    if facts.unparsed is not None:
        verdicts.append(
            Verdict(
                decision=Decision.DENY,
                reason=f"{facts.unparsed}; a command the hook cannot read is not run",
                rule="hook.shell.unparsed",
                source=BUILTIN_SOURCE,
            )
        )
    for bypass in facts.bypasses:
        verdicts.append(
            Verdict(
                decision=Decision.DENY,
                reason=f"{bypass}: safeguards are not for agents to bypass",
                rule="hook.shell.bypass",
                source=BUILTIN_SOURCE,
            )
        )
    for path in facts.reads:
        read = decide_read(rules, path)
        if read.decision is not Decision.ALLOW:
            verdicts.append(read)
    for path in facts.writes:
        repo_path = inside.get(path, path)
        verdict = decide_write(
            rules,
            Change(
                path=repo_path if repo_path is not None else path,
                before="",
                after="",
                inside=repo_path is not None,
            ),
        )
        if verdict.decision is not Decision.ALLOW:
            verdicts.append(verdict)
    for packages in facts.packages:
        verdicts.append(
            Verdict(
                decision=Decision.ASK,
                reason=f"`{packages.manager}` adds dependencies: {', '.join(packages.names)}; "
                "a human approves new dependencies (the merge gate scans them too)",
                rule="hook.shell.dependency",
                source=BUILTIN_SOURCE,
            )
        )
    if facts.unnamed_force_pushes:
        verdicts.append(
            Verdict(
                decision=Decision.ASK,
                reason="a force push without a named branch may rewrite the base branch",
                rule="hook.shell.force_push",
                source=BUILTIN_SOURCE,
            )
        )
    return verdicts
