"""Renderings of a decision: check-run title and Markdown summary, annotations, text.

Limits are GitHub's for check runs
(https://docs.github.com/rest/checks/runs#update-a-check-run): title, summary and
text at most 65535 characters; 50 annotations per request.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from gate.result import (
    VOCABULARY,
    Decision,
    DecisionKind,
    FileResult,
    Outcome,
    RequirementResult,
)

MAX_TEXT = 65535

_ICON = {
    Outcome.PASS: "✅",
    Outcome.NEEDS_APPROVAL: "⏳",
    Outcome.DENIED: "⛔",
    Outcome.ERROR: "❌",
}


def conclusion(decision: Decision) -> str:
    return VOCABULARY[decision.outcome].check_run


def title(decision: Decision) -> str:
    if decision.override is not None:
        return f"Override by @{decision.override.by} (break-glass): {decision.override.reason}"
    if decision.would_block:
        return "Would block (advisory mode): " + _title(decision)
    return _title(decision)


def _title(decision: Decision) -> str:
    if decision.children:
        if decision.outcome is Outcome.PASS:
            return f"Passes: all {len(decision.children)} pull requests"
        part = "Merge group" if decision.kind is DecisionKind.MERGE_GROUP else "Commit"
        worst = next((c for c in decision.children if c.outcome is decision.outcome), None)
        if worst is None:
            return f"{part} blocked: " + decision.summary[:200]
        return f"{part} blocked by #{worst.number}: {_title(worst)}"
    if decision.kind is DecisionKind.MERGE_GROUP:
        return "Merge group blocked: " + _cell(decision.summary)[:200]
    if not decision.governed:
        return "Not governed: human PR"
    if decision.outcome is Outcome.DENIED:
        return f"Denied: {len(decision.denied_files)} file(s) outside an agent's scope"
    if decision.outcome is Outcome.ERROR:
        return "Error: cannot evaluate, failing closed"
    if decision.outcome is Outcome.NEEDS_APPROVAL:
        who = sorted({o for r in decision.outstanding for o in r.owners})
        tail = f" from {', '.join(who[:3])}" + (" …" if len(who) > 3 else "") if who else ""
        return f"Needs approval{tail} (tier {decision.tier})"
    return f"Passes (tier {decision.tier})"


#: Characters GitHub Flavored Markdown gives a meaning anywhere in a line
#: (https://github.github.com/gfm/#backslash-escapes): code spans, emphasis and
#: strikethrough, links and images, table cells, math (``$``), and the escape itself.
_INLINE = re2.compile(r"([\\`*_\[\]|~$])")
#: Block markers matter only at the start of a line: headings, list items, setext
#: underlines, ordered lists (``1.``). Our text always starts after a fixed prefix
#: (``- ``, ``### ``, a table pipe), so the text's own first character is that start.
_LEADING = re2.compile(r"^(\s*(?:[0-9]+)?)([#+=.)-])")  # "1." and ".": escaping is harmless
#: Extended autolinks (https://github.github.com/gfm/#autolinks-extension-): a
#: scheme's ``://`` and a leading ``www.``; an escaped character breaks the match.
_AUTOLINK = re2.compile(r"(:)(//)|\b((?i:www))(\.)")
#: A zero-width space after ``@`` stops GitHub's @-mentions (a notification to a
#: user or a whole team) and e-mail autolinks, and still reads as ``@``.
_ZWSP = "\u200b"


def _visible(char: str) -> str:
    """A control or invisible character as something a reviewer can see."""
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode Control Pictures: LF shows as ␊
    if code == 0x7F:
        return "\u2421"
    return f"⟨U+{code:04X}⟩"


def printable(text: str) -> str:
    """``text`` with every control, format or separator character made visible: a file
    name cannot start a new line or send terminal escape sequences."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _visible(c) for c in text)


def _break_autolink(match: Any) -> str:
    if match.group(1):
        return "\\:" + str(match.group(2))
    return str(match.group(3)) + "\\."


def escape(text: str) -> str:
    """``text`` as literal Markdown: what an agent controls renders as itself.

    File names, logins, branch names, titles, detector messages and policy
    reasons all reach the check-run summary, which GitHub renders as Markdown with
    inline HTML. Escaped here: HTML (``<``, ``>``, ``&`` as entities), every inline
    construct (links, images, emphasis, code, table pipes, math), block markers at
    the start, autolinks and mentions, and every line break or control character
    (shown as a visible picture, so a ``x\\n.yml`` file cannot fake a second row).
    """
    text = html.escape(printable(text), quote=False)
    text = str(_INLINE.sub(r"\\\1", text))
    text = str(_LEADING.sub(r"\1\\\2", text, count=1))
    # Leading blanks would indent a list item's text into a code block: as entities
    # they still show, but do not count as indentation.
    stripped = text.lstrip(" \t")
    if len(stripped) != len(text):
        blanks = text[: len(text) - len(stripped)]
        text = blanks.replace(" ", "&#32;").replace("\t", "&#9;") + stripped
    text = str(_AUTOLINK.sub(_break_autolink, text))
    return text.replace("@", "@" + _ZWSP)


def _cell(text: str) -> str:
    return escape(text)


def _code(text: str) -> str:
    # Markdown inside an HTML <code> element is still parsed, so it is escaped too.
    return "<code>" + escape(text) + "</code>"


def _requirement_row(requirement: RequirementResult) -> str:
    mark = "✅" if requirement.satisfied else "⏳"
    who = ", ".join(requirement.owners) or requirement.owners_source
    paths = ", ".join(_code(p) for p in requirement.paths[:5])
    if len(requirement.paths) > 5:
        paths += f" and {len(requirement.paths) - 5} more"
    return (
        f"| {mark} | {_cell(requirement.tier)} | {_cell(requirement.kind)} | {paths} | "
        f"{_cell(who)} | {_cell(requirement.explanation)} |"
    )


def _file_row(file: FileResult) -> str:
    name = _code(file.path)
    if file.previous_path:
        name = f"{_code(file.previous_path)} → {name}"
    tier = f"⛔ denied ({file.tier})" if file.denied else file.tier
    why = "; ".join(f"{r.detail}" + (f" ({r.source})" if r.source else "") for r in file.reasons)
    return f"| {name} | {_cell(tier)} | {_cell(why)} |"


#: Pull request number -> (users, teams) whose review request GitHub accepted.
Requested = Mapping[int, tuple[Sequence[str], Sequence[str]]]


def markdown(
    decision: Decision,
    *,
    details_url: str | None = None,
    limit: int = MAX_TEXT,
    requested: Requested | None = None,
) -> str:
    """The check-run summary; cut at ``limit`` with a pointer to the details page.

    A commit's or a merge group's decision says which pull request each part
    came from: one section per pull request, the most restrictive first.
    """
    if not decision.children:
        return _markdown(decision, details_url=details_url, limit=limit, requested=requested)
    parts = sorted(decision.children, key=lambda d: (-d.outcome.severity, d.number))
    intro = [f"### {_ICON[decision.outcome]} {_cell(decision.summary)}", ""]
    intro += [
        f"- {_ICON[p.outcome]} #{p.number} into {_code(p.base_ref or p.base_sha[:12])}: "
        f"{_cell(p.summary)}"
        for p in parts
    ]
    budget = max(2000, (limit - len("\n".join(intro)) - 200) // len(parts))
    sections = [
        f"\n---\n## Pull request #{p.number}\n\n"
        + _markdown(p, details_url=details_url, limit=budget, requested=requested)
        for p in parts
    ]
    return ("\n".join(intro) + "".join(sections))[:limit]


def _markdown(
    decision: Decision, *, details_url: str | None, limit: int, requested: Requested | None
) -> str:
    head = [
        f"### {_ICON[decision.outcome]} {_cell(decision.summary)}",
        "",
        f"**Governance:** {_cell(decision.governance)}.",
    ]
    if decision.clearance is not None:
        cleared = decision.clearance
        head += [
            "",
            f"**Secret finding(s) cleared** by {_cell('@' + cleared.user)} at "
            f"{_cell(cleared.at)}: {_cell(', '.join(cleared.fingerprints))}.",
        ]
    if decision.outcome is Outcome.DENIED:
        # Only a change to the pull request can unblock it: no approvals, no requests.
        head += [
            "",
            "**To unblock:** change the pull request so it no longer touches the denied "
            "files below (or removes what was found in them). No approval can pass it.",
        ]
        if any(x.detector == "secrets" and x.deny for f in decision.files for x in f.findings):
            head.append(
                "A secret finding that is no secret (a false alarm, or a secret already "
                "revoked) can be cleared by a human the policy names (`secrets.cleared_by`, "
                "else the file's code owners): the check run's *Not a secret* button."
            )
        return _fit(
            head, *_file_table(decision), _tail(decision), details_url=details_url, limit=limit
        )
    if decision.tier:
        head.append(
            f"**Tier:** {escape(decision.tier)} · **Head:** {_code(decision.head_sha[:12])}"
        )
    if decision.requirements:
        head += [
            "",
            "#### Requirements",
            "| | tier | kind | paths | who can satisfy | status |",
            "|---|---|---|---|---|---|",
            *(_requirement_row(r) for r in decision.requirements),
        ]
    if requested is None and (decision.request_users or decision.request_teams):
        # Offline (gate check): nothing was asked, only what would be.
        would = _who(decision.request_users, decision.request_teams)
        head += ["", f"**Would request review from:** {_cell(would)}"]
    elif requested and requested.get(decision.number):
        asked = _who(*requested[decision.number])
        head += ["", f"**Review requested from:** {_cell(asked)}"]
    if decision.ignored_reviews:
        head += ["", "#### Approvals that do not count"]
        head += [
            f"- {_cell('@' + i.user)} (review {i.review_id}): {_cell(i.why)}"
            for i in decision.ignored_reviews
        ]
    if decision.simulation:
        changed = [r for r in decision.simulation if r.changed]
        head += [
            "",
            f"#### The new policy on the last {len(decision.simulation)} merged pull requests",
            f"{len(changed)} would be judged differently.",
            "",
            "| PR | title | now | with this change |",
            "|---|---|---|---|",
            *(
                f"| #{r.number} | {_cell(r.title[:80])} | {_cell(f'{r.current_tier}: {r.current}')}"
                f" | {'**' if r.changed else ''}{_cell(f'{r.new_tier}: {r.new}')}"
                f"{'**' if r.changed else ''} |"
                for r in decision.simulation
            ),
        ]
    return _fit(head, *_file_table(decision), _tail(decision), details_url=details_url, limit=limit)


def _who(users: Sequence[str], teams: Sequence[str]) -> str:
    return ", ".join([f"@{u}" for u in users] + [f"team {t}" for t in teams])


def _tail(decision: Decision) -> list[str]:
    tail: list[str] = []
    if decision.notes:
        tail += ["", "#### Notes", *(f"- {_cell(n)}" for n in decision.notes)]
    if decision.policy:
        tail += [
            "",
            f"<sub>Policy {_code(decision.policy.path)} {escape(decision.policy.digest)} "
            f"at base {_code(decision.base_sha[:12])}.</sub>",
        ]
    return tail


#: Files listed by name in one collapsed tier group, at most.
_COLLAPSED_NAMES = 200


def _file_table(decision: Decision) -> tuple[list[str], list[str]]:
    """(table head, rows): gated and denied files first, one row each; the files that
    need nothing but CI collapsed per tier, with their count, so a 3000-file pull
    request stays readable."""
    gated_paths = {p for r in decision.requirements for p in r.paths}
    gated = [f for f in decision.files if f.denied or f.path in gated_paths or f.findings]
    rest: dict[str, list[FileResult]] = {}
    for file in decision.files:
        if file not in gated:
            rest.setdefault(file.tier, []).append(file)
    if not decision.files:
        return [], []
    rows = [_file_row(f) for f in gated]
    table = ["", "#### Files", "| file | tier | why |", "|---|---|---|"] if rows else []
    blocks = []
    for tier, files in rest.items():
        names = ", ".join(_code(f.path) for f in files[:_COLLAPSED_NAMES])
        more = len(files) - _COLLAPSED_NAMES
        if more > 0:
            names += f" and {more} more"
        blocks.append(
            f"\n<details><summary>{len(files)} file(s) in tier {escape(tier)} "
            f"(CI only)</summary>\n\n{names}\n\n</details>"
        )
    return table, rows + blocks


def _fit(
    head: list[str],
    table: list[str],
    rows: list[str],
    tail: list[str],
    *,
    details_url: str | None,
    limit: int,
) -> str:
    full = "\n".join(head + table + rows + tail)
    if len(full) <= limit:
        return full
    where = f"[the details page]({details_url})" if details_url else "the details page"
    note = (
        f"\n\n… {{n}} more file(s) not shown: the summary is limited to {limit} "
        f"characters; see {where}."
    )
    budget = limit - len("\n".join(head + table + tail)) - len(note) - 16
    kept: list[str] = []
    used = 0
    for row in rows:
        if used + len(row) + 1 > budget:
            break
        kept.append(row)
        used += len(row) + 1
    text = "\n".join(head + table + kept) + note.format(n=len(rows) - len(kept))
    text += "\n".join(["", *tail])
    return text[:limit]


@dataclass(frozen=True, slots=True)
class Annotation:
    path: str
    start_line: int
    end_line: int
    level: str  # "failure" | "warning" | "notice"
    title: str
    message: str
    raw_details: str = ""

    def to_github(self) -> dict[str, object]:
        data: dict[str, object] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotation_level": self.level,
            "title": self.title[:255],
            "message": self.message[:MAX_TEXT],
        }
        if self.raw_details:
            data["raw_details"] = self.raw_details[:MAX_TEXT]
        return data


def annotate(decision: Decision, *, raw_details: str = "") -> list[Annotation]:
    """At most one annotation per file, at its first relevant line.

    ``failure`` for a denied file, ``warning`` for one that needs an approval still
    missing, ``notice`` for a gated file whose requirements are met; the first
    finding's line when there is one, else the first added hunk. The one
    exception: each error of a pull request's own policy or CODEOWNERS is shown on
    its line, so the author can fix them all at once. For a tree, the pull
    requests' annotations, each file once.
    """
    if decision.children:
        seen: dict[str, Annotation] = {}
        for part in decision.pulls:
            for a in annotate(part, raw_details=raw_details):
                seen.setdefault(f"{a.path}:{a.start_line}:{a.title}", a)
        return list(seen.values())
    if not decision.governed and not decision.files:
        return []
    open_paths = {p for r in decision.outstanding for p in r.paths}
    gated = {p for r in decision.requirements for p in r.paths}
    out: list[Annotation] = []
    for file in decision.files:
        rules = [f for f in file.findings if f.detector == "rules" and f.line is not None]
        out += [
            Annotation(
                path=file.path,
                start_line=f.line or 1,
                end_line=f.line or 1,
                level="failure" if f.deny else "warning",
                title=f"merge-gate: {f.detector}:{f.rule}",
                message=f.message,
                raw_details=raw_details,
            )
            for f in rules
        ]
        findings = [f for f in file.findings if f not in rules]
        if file.denied or any(f.deny for f in findings):
            level = "failure"
        elif file.path in open_paths or (file.previous_path or "") in open_paths:
            level = "warning"
        elif file.path in gated or findings:
            level = "notice"
        else:
            continue
        placed = next((f for f in findings if f.line is not None), None)
        start, end = (placed.line, placed.line) if placed and placed.line else file.lines
        why = [r.detail for r in file.reasons] + [
            f"{f.detector}:{f.rule}" + (f" (line {f.line})" if f.line else "") + f": {f.message}"
            for f in findings
        ]
        verb = "denied" if file.denied else f"tier {file.tier}"
        out.append(
            Annotation(
                path=file.path,
                start_line=start,
                end_line=end,
                level=level,
                title=f"merge-gate: {verb}",
                message="; ".join(why),
                raw_details=raw_details,
            )
        )
    return out


def text(decision: Decision) -> str:
    """Plain text for the terminal (``gate check``); one line per item, whatever the names."""
    lines = [f"{decision.outcome.value.upper()}: {decision.summary}", f"  {decision.governance}"]
    if decision.files:
        lines.append("files:")
        for file in decision.files:
            flag = "DENIED " if file.denied else ""
            lines.append(f"  {flag}{file.tier:<12} {file.path}")
            for reason in file.reasons:
                src = f"  [{reason.source}]" if reason.source else ""
                lines.append(f"      - {reason.detail}{src}")
    if decision.requirements:
        lines.append("requirements:")
        for r in decision.requirements:
            mark = "ok " if r.satisfied else "OPEN"
            lines.append(f"  [{mark}] {r.tier}/{r.kind}: {r.explanation}")
            lines.append(f"         paths: {', '.join(r.paths)}")
    if decision.request_users or decision.request_teams:
        who = [f"@{u}" for u in decision.request_users] + [
            f"team:{t}" for t in decision.request_teams
        ]
        lines.append("request review from: " + ", ".join(who))
    for ignored in decision.ignored_reviews:
        lines.append(f"ignored approval by @{ignored.user}: {ignored.why}")
    for note in decision.notes:
        lines.append(f"note: {note}")
    return "\n".join(printable(line) for line in lines)
