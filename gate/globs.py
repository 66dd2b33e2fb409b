"""Path globs of the policy file, compiled to linear-time RE2 programs.

Syntax (documented in the README):

- ``*`` matches any run of characters except ``/``; ``?`` one such character;
- ``**`` as a whole segment matches any number of directories (``docs/**``,
  ``**/auth/**``);
- ``{a,b}`` matches either alternative (``**/*.{md,rst}``);
- ``[abc]`` / ``[a-z]`` / ``[!a-z]`` character classes;
- a pattern ending in ``/`` matches everything below that directory;
- a pattern without ``/`` matches the file name at any depth (``*.md``).

Paths are untrusted (an agent names its files), so every pattern runs on RE2.
Git allows any byte but NUL in a path, newlines and control characters included,
and GitHub lists such paths as they are: every wildcard matches them (RE2's
``s`` flag, so ``.`` also matches a newline), and paths are matched as given,
never normalised, so ``.github/workflows/x\n.yml`` is still a workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import re2

_SPECIAL = set(".^$+()|\\")
#: ``.`` matches a newline too; ``^``/``$`` stay anchored to the whole path.
_FLAGS = "(?s)"


class Program(Protocol):
    """The part of a compiled RE2 program the engine uses."""

    def match(self, text: str) -> object | None: ...

    def search(self, text: str) -> object | None: ...


class GlobError(ValueError):
    """A glob that cannot be compiled; the message says why."""


def _translate_class(glob: str, start: int) -> tuple[str, int]:
    end = glob.find("]", start + 2 if glob[start + 1 : start + 2] in ("!", "^") else start + 1)
    if end == -1:
        raise GlobError(f"unterminated character class '[' at column {start + 1}")
    body = glob[start + 1 : end]
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    if not body:
        raise GlobError(f"empty character class at column {start + 1}")
    if "/" in body:
        raise GlobError("a character class cannot match '/'")
    escaped = body.replace("\\", "\\\\").replace("]", "\\]")
    return ("[^/" if negate else "[") + escaped + "]", end + 1


def translate(glob: str) -> str:
    """The RE2 source (unanchored body) for one glob."""
    if not glob or not glob.strip():
        raise GlobError("empty pattern")
    if glob.startswith("!"):
        raise GlobError("negation ('!') is not supported; use the tier's 'exclude' list")
    if "\x00" in glob or "\n" in glob:
        raise GlobError("control characters are not allowed in a pattern")
    directory = glob.endswith("/")
    body = glob.strip("/") if directory else glob.lstrip("/")
    if not body:
        raise GlobError("pattern matches nothing but the root")
    anchored = "/" in glob.rstrip("/")
    out: list[str] = []
    segments = body.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:.*/)?")
            continue
        if "**" in segment:
            raise GlobError(f"'**' must be a whole path segment, not part of {segment!r}")
        out.append(_translate_segment(segment))
        if not last:
            out.append("/")
    regex = "".join(out)
    if directory:
        regex += "/.*"
    prefix = "" if anchored else "(?:.*/)?"
    return prefix + regex


def _translate_segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    depth = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            cls, i = _translate_class(segment, i)
            out.append(cls)
            continue
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        elif char in _SPECIAL or char in "{}]":
            out.append("\\" + char)
        else:
            out.append(char)
        i += 1
    if depth:
        raise GlobError("unbalanced '{' in pattern")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class GlobSet:
    """Several globs matched in one pass; ``which`` names the first that matches."""

    patterns: tuple[str, ...]
    _any: Program | None
    _each: tuple[Program, ...]

    @classmethod
    def compile(cls, patterns: Iterable[str]) -> GlobSet:
        patterns = tuple(patterns)
        sources = [translate(pattern) for pattern in patterns]
        each = tuple(re2.compile(f"{_FLAGS}^(?:{source})$") for source in sources)
        combined = (
            re2.compile(_FLAGS + "^(?:" + "|".join(f"(?:{s})" for s in sources) + ")$")
            if sources
            else None
        )
        return cls(patterns=patterns, _any=combined, _each=each)

    def matches(self, path: str) -> bool:
        return self._any is not None and self._any.match(path) is not None

    def which(self, path: str) -> str | None:
        if not self.matches(path):
            return None
        for pattern, compiled in zip(self.patterns, self._each, strict=True):
            if compiled.match(path) is not None:
                return pattern
        return None  # pragma: no cover - the combined program matched, so one part does


def validate(patterns: Sequence[str]) -> list[tuple[int, str]]:
    """(index, message) for every pattern that does not compile."""
    errors: list[tuple[int, str]] = []
    for index, pattern in enumerate(patterns):
        try:
            re2.compile(translate(pattern))
        except GlobError as error:
            errors.append((index, str(error)))
        except Exception as error:  # re2 reports its own syntax errors
            errors.append((index, f"invalid pattern: {error}"))
    return errors
