"""Added lines of a GitHub file patch, with their line numbers in the new file.

GitHub's ``patch`` field holds only the hunks of a unified diff (no file header),
see https://docs.github.com/rest/pulls/pulls#list-pull-requests-files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AddedLine:
    number: int
    text: str


class PatchError(ValueError):
    """The patch text is not a unified diff."""


def _hunk_start(header: str) -> int:
    """The head-side start line of ``@@ -a,b +c,d @@``."""
    try:
        plus = header.split(" ", 3)[2]
        if not plus.startswith("+"):
            raise ValueError
        return int(plus[1:].split(",", 1)[0])
    except (IndexError, ValueError):
        raise PatchError(f"bad hunk header {header[:80]!r}") from None


def added_lines(patch: str) -> tuple[AddedLine, ...]:
    """Every ``+`` line of ``patch`` with its line number in the head version.

    A single linear pass over the hunks (unidiff built a full object model
    per line and took most of the engine's time on large PRs).
    """
    if not patch:
        return ()
    if not patch.startswith("@@"):
        raise PatchError("a patch starts with a hunk header '@@'")
    out: list[AddedLine] = []
    number = 0
    for line in patch.split("\n"):
        head = line[:1]
        if head == "+":
            out.append(AddedLine(number, line[1:].rstrip("\r")))
            number += 1
        elif head == " " or not line:
            number += 1
        elif head == "@":
            number = _hunk_start(line)
        elif head not in ("-", "\\"):
            raise PatchError(f"unexpected line in patch: {line[:40]!r}")
    return tuple(out)


def first_added_range(lines: tuple[AddedLine, ...]) -> tuple[int, int]:
    """Line range of the first run of added lines, for an annotation; (1, 1) when none."""
    if not lines:
        return (1, 1)
    start = end = lines[0].number
    for line in lines[1:]:
        if line.number != end + 1:
            break
        end = line.number
    return (start, end)
