"""CODEOWNERS with GitHub's semantics.

Implements https://docs.github.com/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners:

- the file is read from ``.github/``, the root, then ``docs/``; the first found wins;
- the last matching pattern wins; a pattern with no owners leaves the path unowned;
- owners are ``@user``, ``@org/team`` or email addresses; ``#`` starts a comment,
  also after the owners;
- GitHub does not support ``!`` negation, ``[ ]`` ranges or ``\\#`` escapes: such
  lines are reported and skipped, as GitHub skips them;
- a file over 3 MB is not loaded.

Pattern matching is delegated to the ``codeowners`` package; this module is the
pre-filter that makes its input match GitHub (that package alone keeps
``# comment`` words as owners and applies the unsupported syntax).
"""

from __future__ import annotations

from dataclasses import dataclass

import re2
from codeowners import CodeOwners as _Matcher

LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
MAX_BYTES = 3 * 1024 * 1024

_OWNER = re2.compile(
    r"^(@[A-Za-z0-9](?:[A-Za-z0-9-]*)(?:\[bot\])?(?:/[A-Za-z0-9][A-Za-z0-9._-]*)?|[^@\s]+@[^@\s]+\.[^@\s]+)$"
)


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: int
    message: str


@dataclass(frozen=True, slots=True)
class Match:
    owners: tuple[str, ...]
    line: int
    pattern: str


@dataclass(frozen=True, slots=True)
class CodeOwners:
    """A parsed CODEOWNERS file; ``owners_of`` answers like GitHub does."""

    path: str | None
    problems: tuple[Problem, ...]
    _matcher: _Matcher | None
    _owners: dict[int, tuple[str, ...]]

    @classmethod
    def empty(cls) -> CodeOwners:
        return cls(path=None, problems=(), _matcher=None, _owners={})

    @classmethod
    def parse(cls, text: str, *, path: str = ".github/CODEOWNERS") -> CodeOwners:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            problem = Problem(1, 1, "CODEOWNERS is over 3 MB; GitHub does not load it")
            return cls(path=path, problems=(problem,), _matcher=None, _owners={})
        kept: list[str] = []
        owners_by_line: dict[int, tuple[str, ...]] = {}
        problems: list[Problem] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line, problem = _clean(raw, number)
            if problem is not None:
                problems.append(problem)
            if line is None:
                kept.append("")
                continue
            pattern, *owners = line.split()
            owners_by_line[number] = tuple(owners)
            if pattern.endswith("/**/"):
                # "dir/**/" means every file below dir, the same as "dir/**"; the
                # matcher would demand one more directory level.
                pattern = pattern[:-1]
            # The matcher only needs the pattern and a placeholder owner: owners
            # come from our own parse, keyed by line.
            kept.append(f"{pattern} @_" if owners else pattern)
        return cls(
            path=path,
            problems=tuple(problems),
            _matcher=_Matcher("\n".join(kept)),
            _owners=owners_by_line,
        )

    def match(self, path: str) -> Match | None:
        """The line that decides ``path``'s owners, or None when no line matches."""
        if self._matcher is None:
            return None
        _owners, line, pattern, _section = self._matcher.matching_line(path)
        if line is None or pattern is None:
            return None
        return Match(owners=self._owners[line], line=line, pattern=pattern)

    def owners_of(self, path: str) -> tuple[str, ...]:
        found = self.match(path)
        return found.owners if found else ()


def _clean(raw: str, number: int) -> tuple[str | None, Problem | None]:
    """The line GitHub would use, or None with the reason it skips the line."""
    stripped = raw.strip()
    if not stripped or stripped.startswith("#"):
        return None, None
    column = len(raw) - len(raw.lstrip()) + 1
    if stripped.startswith("\\#"):
        return None, Problem(number, column, "escaping '#' with '\\' is not supported by GitHub")
    if stripped.startswith("!"):
        return None, Problem(number, column, "negation with '!' is not supported by GitHub")
    # An inline comment starts at a '#' preceded by white space.
    for index, char in enumerate(stripped):
        if char == "#" and index > 0 and stripped[index - 1] in " \t":
            stripped = stripped[:index].rstrip()
            break
    pattern, *owners = stripped.split()
    if "[" in pattern or "]" in pattern:
        return None, Problem(number, column, "character ranges '[ ]' are not supported by GitHub")
    for owner in owners:
        if _OWNER.match(owner) is None:
            at = raw.find(owner) + 1
            return None, Problem(number, at, f"invalid owner {owner!r}: the line is skipped")
    return " ".join([pattern, *owners]), None


def locate(files: dict[str, str | None]) -> tuple[str, str] | None:
    """The CODEOWNERS GitHub uses among ``files`` (path -> text or None when absent)."""
    for path in LOCATIONS:
        text = files.get(path)
        if text is not None:
            return path, text
    return None
