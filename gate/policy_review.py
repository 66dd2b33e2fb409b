"""A pull request that changes the rules: its new policy and CODEOWNERS, checked first.

The pull request is still judged by the base's rules; its own versions are only
validated, so a typo is found on the line it is on, before it lands (after it,
every pull request would fail closed on an invalid policy). Every error at
once, each at its line and column; CODEOWNERS lines GitHub would skip are
reported as GitHub reports them, as warnings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gate.codeowners import LOCATIONS, CodeOwners
from gate.defaults import load_policy
from gate.model import ChangedFile, Contents, FileStatus, PullSnapshot
from gate.policy import POLICY_PATH, InvalidPolicy
from gate.result import FileFinding

RULE_FILES = (POLICY_PATH, *LOCATIONS)


def _changed(files: Iterable[ChangedFile]) -> list[ChangedFile]:
    return [f for f in files if f.path in RULE_FILES and f.status is not FileStatus.REMOVED]


def wanted(pull: PullSnapshot) -> frozenset[tuple[str, str]]:
    """The head versions of the rule files the pull request changes."""
    return frozenset(("head", f.path) for f in _changed(pull.files))


def review(pull: PullSnapshot, contents: Contents) -> Mapping[str, tuple[FileFinding, ...]]:
    """Findings per changed rule file; a finding that denies means the new file is invalid."""
    out: dict[str, tuple[FileFinding, ...]] = {}
    for file in _changed(pull.files):
        text = contents.get("head", file.path)
        if text is None:
            if ("head", file.path) in contents.too_large:
                out[file.path] = (_finding(None, f"{file.path} is too large to check", deny=True),)
            continue
        if file.path == POLICY_PATH:
            try:
                load_policy(text, path=POLICY_PATH)
            except InvalidPolicy as error:
                out[file.path] = tuple(
                    _finding(e.line, f"{e.line}:{e.column}: {e.message}", deny=True)
                    for e in error.errors
                )
        else:
            problems = CodeOwners.parse(text, path=file.path).problems
            if problems:
                out[file.path] = tuple(
                    _finding(p.line, f"{p.line}:{p.column}: {p.message}", deny=False)
                    for p in problems
                )
    return out


def _finding(line: int | None, message: str, *, deny: bool) -> FileFinding:
    return FileFinding(
        detector="rules",
        rule="invalid-policy" if deny else "codeowners-skipped",
        line=line,
        message=message,
        deny=deny,
    )
