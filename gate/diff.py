"""Added lines of a GitHub file patch, with their line numbers in the new file.

GitHub's ``patch`` field holds only the hunks of a unified diff (no file header),
see https://docs.github.com/rest/pulls/pulls#list-pull-requests-files.
"""

from __future__ import annotations

from dataclasses import dataclass

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError


@dataclass(frozen=True, slots=True)
class AddedLine:
    number: int
    text: str


class PatchError(ValueError):
    """The patch text is not a unified diff."""


def added_lines(patch: str) -> tuple[AddedLine, ...]:
    """Every ``+`` line of ``patch`` with its line number in the head version."""
    if not patch:
        return ()
    if not patch.startswith("@@"):
        raise PatchError("a patch starts with a hunk header '@@'")
    try:
        patch_set = PatchSet(f"--- a/f\n+++ b/f\n{patch}\n")
    except UnidiffParseError as error:
        raise PatchError(str(error)) from error
    return tuple(
        AddedLine(number=line.target_line_no or 0, text=line.value.rstrip("\r\n"))
        for patched in patch_set
        for hunk in patched
        for line in hunk
        if line.is_added
    )


def first_added_range(patch: str | None) -> tuple[int, int]:
    """Line range of the first added hunk, for an annotation; (1, 1) when unknown."""
    if not patch:
        return (1, 1)
    try:
        lines = added_lines(patch)
    except PatchError:
        return (1, 1)
    if not lines:
        return (1, 1)
    start = end = lines[0].number
    for line in lines[1:]:
        if line.number != end + 1:
            break
        end = line.number
    return (start, end)
