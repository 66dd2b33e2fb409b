"""CODEOWNERS with GitHub's semantics.

Implements https://docs.github.com/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners:

- the file is read from ``.github/``, the root, then ``docs/``; the first found wins;
- the last matching pattern wins; a pattern with no owners leaves the path unowned;
- owners are ``@user``, ``@org/team`` or email addresses; ``#`` starts a comment,
  also after the owners;
- GitHub does not support ``!`` negation, ``[ ]`` ranges or ``\\#`` escapes: such
  lines are reported and skipped, as GitHub skips them;
- a file over 3 MB is not loaded.

Pattern translation is delegated to the ``codeowners`` package; this module is the
pre-filter that makes its input match GitHub (that package alone keeps
``# comment`` words as owners and applies the unsupported syntax). Its regexes are
recompiled for RE2 with the ``s`` flag: paths are untrusted, and a path with a
newline in it (git allows any byte but NUL) must match ``**`` like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2
from codeowners import MASK as _MASK
from codeowners import CodeOwners as _Matcher

from gate.owners import Owner

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
    owners: tuple[Owner, ...]
    line: int
    pattern: str


@dataclass(frozen=True, slots=True)
class CodeOwners:
    """A parsed CODEOWNERS file; ``owners_of`` answers like GitHub does."""

    path: str | None
    problems: tuple[Problem, ...]
    _matcher: _Matcher | None
    _owners: dict[int, tuple[Owner, ...]]
    #: First path segment -> rules (latest line first) that can match under it;
    #: "" holds the rules that can match anywhere. Most rules are anchored to a
    #: directory, so a path is tested against a few rules instead of all.
    _index: dict[str, _Bucket] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> CodeOwners:
        return cls(path=None, problems=(), _matcher=None, _owners={})

    @classmethod
    def parse(cls, text: str, *, path: str = ".github/CODEOWNERS") -> CodeOwners:
        text = _encodable(text)
        if len(text.encode("utf-8")) > MAX_BYTES:
            too_big = Problem(1, 1, "CODEOWNERS is over 3 MB; GitHub does not load it")
            return cls(path=path, problems=(too_big,), _matcher=None, _owners={})
        kept: list[str] = []
        owners_by_line: dict[int, tuple[Owner, ...]] = {}
        problems: list[Problem] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line, problem = _clean(raw, number)
            if problem is not None:
                problems.append(problem)
            if line is None:
                kept.append("")
                continue
            pattern, *owners = line.split()
            owners_by_line[number] = tuple(Owner(o) for o in owners)
            if pattern.endswith("/**/"):
                # "dir/**/" means every file below dir, the same as "dir/**"; the
                # matcher would demand one more directory level.
                pattern = pattern[:-1]
            if "**/**" in pattern:
                pattern = _one_globstar(pattern)
            # The matcher only needs the pattern and a placeholder owner: owners
            # come from our own parse, keyed by line.
            kept.append(f"{pattern} @_" if owners else pattern)
        matcher = _Matcher("\n".join(kept))
        return cls(
            path=path,
            problems=tuple(problems),
            _matcher=matcher,
            _owners=owners_by_line,
            _index=_build_index(matcher),
        )

    def match(self, path: str) -> Match | None:
        """The line that decides ``path``'s owners, or None when no line matches."""
        if self._matcher is None:
            return None
        path = _encodable(path)
        text = path.replace(" ", _MASK)
        anywhere = self._index.get("", _NO_RULES)
        anchored = self._index.get(path.split("/", 1)[0], _NO_RULES)
        found = [anywhere.latest(text), anchored.latest(text)]
        if _UNSURE in found:
            return self._match_one_by_one(text, anywhere.rules, anchored.rules)
        rules = [rule for rule in found if isinstance(rule, tuple)]
        if not rules:
            return None
        _regex, pattern, line = max(rules, key=lambda rule: rule[2])
        return Match(owners=self._owners[line], line=line, pattern=pattern)

    def _match_one_by_one(
        self, text: str, anywhere: tuple[_Rule, ...], anchored: tuple[_Rule, ...]
    ) -> Match | None:
        # Merge the two latest-first lists, testing each rule once, latest first.
        i = j = 0
        while i < len(anywhere) or j < len(anchored):
            if j >= len(anchored) or (i < len(anywhere) and anywhere[i][2] > anchored[j][2]):
                regex, pattern, line = anywhere[i]
                i += 1
            else:
                regex, pattern, line = anchored[j]
                j += 1
            if regex.search(text) is not None:
                return Match(owners=self._owners[line], line=line, pattern=pattern)
        return None

    def owners_of(self, path: str) -> tuple[Owner, ...]:
        found = self.match(path)
        return found.owners if found else ()


def _one_globstar(pattern: str) -> str:
    """``a/**/**/b`` as ``a/**/b``: the same paths (any number of directories),
    but each extra ``**`` multiplies the states a matcher tracks."""
    parts = pattern.split("/")
    kept = [part for i, part in enumerate(parts) if not (part == "**" == parts[i - 1] and i)]
    return "/".join(kept)


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (JSON can decode ``"\\ud800"``) replaced: RE2 needs UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _first_segment(pattern: str) -> str:
    """The literal first directory an anchored pattern requires, or "" (any)."""
    slash = pattern.find("/")
    anchored = slash > -1 and slash != len(pattern) - 1
    if not anchored:
        return ""
    first = pattern.lstrip("/").split("/", 1)[0]
    return "" if any(c in first for c in "*?[\\") else first


#: (regex, pattern, line) of one CODEOWNERS rule.
_Rule = tuple[Any, str, int]
#: A bucket's answer when RE2's set matcher gave up (see ``_Bucket.latest``).
_UNSURE = "unsure"


@dataclass(frozen=True, slots=True)
class _Bucket:
    """Rules that can match under one first segment, and all of them as one RE2 set,
    so a path costs one set match instead of one search per rule."""

    rules: tuple[_Rule, ...]
    any_of: Any

    @classmethod
    def of(cls, rules: list[tuple[Any, str, int, str]]) -> _Bucket:
        options = re2.Options()
        options.log_errors = False
        any_of = re2.Set.SearchSet(options)
        # The sentinel matches every text: its absence means the DFA gave up, and
        # RE2 then reports no match at all, which must not be read as "unowned".
        any_of.Add(r"\z")
        for _regex, _pattern, _line, source in rules:
            any_of.Add(source)
        any_of.Compile()
        return cls(rules=tuple(rule[:3] for rule in rules), any_of=any_of)

    def latest(self, text: str) -> _Rule | str | None:
        """The latest rule that matches ``text``, None, or ``_UNSURE``."""
        if not self.rules:
            return None
        hits = self.any_of.Match(text)
        if not hits or 0 not in hits:
            return _UNSURE
        # Rules are latest first, so the lowest index is the latest line.
        first = min((index for index in hits if index), default=0)
        return self.rules[first - 1] if first else None


_NO_RULES = _Bucket(rules=(), any_of=None)


def _re2(source: str) -> str:
    """A Python ``re`` source of the matcher as RE2: ``\\Z`` is spelt ``\\z`` there, and
    ``.`` must match a newline."""
    out: list[str] = []
    i = 0
    while i < len(source):
        pair = source[i : i + 2]
        if pair.startswith("\\"):
            out.append("\\z" if pair == "\\Z" else pair)
            i += 2
            continue
        out.append(source[i])
        i += 1
    return "(?s)" + "".join(out)


def _build_index(matcher: _Matcher) -> dict[str, _Bucket]:
    index: dict[str, list[tuple[Any, str, int, str]]] = {}
    # matcher.paths is latest line first: (regex, pattern, owners, line, section).
    for regex, pattern, _owners, line, _section in matcher.paths:
        source = _re2(regex.pattern)
        rule = (re2.compile(source), pattern, line, source)
        index.setdefault(_first_segment(pattern), []).append(rule)
    return {key: _Bucket.of(rules) for key, rules in index.items()}


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
