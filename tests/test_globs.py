"""Globs and CODEOWNERS patterns match any character inside a path segment.

Git allows every byte but NUL in a path, and GitHub lists such paths as they
are; a newline or a control character in a file name must not take a file out
of the glob that names its directory.
"""

from __future__ import annotations

import pytest
from codeowners import MASK
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.codeowners import CodeOwners
from gate.detectors.base import ScanInput
from gate.detectors.migrations import MigrationDetector
from gate.globs import GlobSet
from gate.model import ChangedFile, Contents, FileStatus

ODD = ["\n", "\r", "\r\n", "\x01", "\x1b[0m", "\x7f", "\u2028", "\u0085", " ", "\t"]

CASES = [
    (".github/workflows/**", ".github/workflows/x{c}.yml"),
    (".github/workflows/**", ".github/workflows/a{c}b/c.yml"),
    ("**/auth/**", "app/auth/x{c}y/z.py"),
    ("**/auth/**", "a{c}b/auth/x.py"),
    ("**/migrations/**", "{c}/migrations/{c}"),
    ("docs/", "docs/{c}"),
    ("*.sql", "db/x{c}.sql"),
    ("x?.py", "x{c}.py"),
    ("[!a-z]*.yml", "{c}.yml"),
    (".claude/**", ".claude/{c}"),
]


@pytest.mark.parametrize("char", ODD, ids=repr)
@pytest.mark.parametrize(("glob", "template"), CASES)
def test_wildcards_match_control_characters(glob: str, template: str, char: str) -> None:
    path = template.format(c=char)
    if glob == "x?.py" and len(char) > 1:
        path = "x" + char[0] + ".py"
    globs = GlobSet.compile([glob])
    assert globs.matches(path)
    assert globs.which(path) == glob


def test_a_newline_never_crosses_a_segment_boundary() -> None:
    # "*" still stops at "/"; the newline is an ordinary character, not a separator.
    assert not GlobSet.compile(["docs/*.md"]).matches("docs/a\n/b.md")
    assert not GlobSet.compile(["*.md"]).matches("a.md\n")
    assert not GlobSet.compile([".github/workflows/**"]).matches("x\n.github/workflows/y")


OWNERS = """\
*                      @acme/devs
/.github/workflows/    @acme/security
/app/auth/             @acme/auth
**/migrations/**       @acme/dba
docs/**                @acme/docs
*.sql                  @acme/dba
"""


@pytest.mark.parametrize("char", ODD, ids=repr)
@pytest.mark.parametrize(
    ("template", "owner"),
    [
        (".github/workflows/x{c}.yml", "@acme/security"),
        ("app/auth/x{c}y/z.py", "@acme/auth"),
        ("a{c}b/migrations/x.py", "@acme/dba"),
        ("docs/a{c}b/c.md", "@acme/docs"),
        ("x{c}.sql", "@acme/dba"),
    ],
)
def test_codeowners_are_not_fooled_by_control_characters(
    template: str, owner: str, char: str
) -> None:
    owners = CodeOwners.parse(OWNERS)
    assert owners.owners_of(template.format(c=char)) == (owner,)


@pytest.mark.parametrize("char", ODD, ids=repr)
def test_the_migrations_detector_matches_paths_with_control_characters(char: str) -> None:
    for path in (f"a{char}b/migrations/0001_x{char}.py", f"db/x{char}y.sql"):
        file = ChangedFile(path, FileStatus.ADDED, patch="@@ -0,0 +1 @@\n+x = 1")
        found = MigrationDetector().scan(ScanInput(file=file, added=(), contents=Contents()))
        assert [f.rule for f in found] == ["migration"], path


BIG_OWNERS = (
    OWNERS
    + "\n".join(f"/app/mod{i}/ @acme/team{i}" for i in range(30))
    + "\n*.md @acme/docs\n/app/**/test_*.py @acme/qa\napp/auth/README.md\n"
)
PARTS = st.sampled_from(
    [
        "app",
        "auth",
        "docs",
        "mod1",
        "mod17",
        "migrations",
        "x\ny",
        "README.md",
        "a.sql",
        "test_x.py",
        ".github",
        "workflows",
        "z z",
        "\x1b",
    ]
)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(PARTS, min_size=1, max_size=5))
def test_the_set_matcher_agrees_with_testing_each_rule(parts: list[str]) -> None:
    owners = CodeOwners.parse(BIG_OWNERS)
    path = "/".join(parts)
    text = path.replace(" ", MASK)
    first = path.split("/", 1)[0]
    index = owners._index
    none = index[""].rules[:0]
    one_by_one = owners._match_one_by_one(
        text, index[""].rules, index[first].rules if first in index else none
    )
    assert owners.match(path) == one_by_one
