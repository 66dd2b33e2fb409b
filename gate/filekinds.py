"""What kind of file a path names and whether a text reads as tests: shared, pure helpers.

Tests and documentation are judged by where they live and how they are named,
in the conventions of the common test runners: pytest (``test_*.py``,
``*_test.py``, ``conftest.py``), Go (``*_test.go``), Jest/Vitest/Mocha
(``*.test.ts``, ``*.spec.js``, ``__tests__/``), RSpec (``*_spec.rb``, ``spec/``),
JUnit/xUnit (``UserTest.java``, ``OrderTests.cs``).

A file in a test directory is not taken at its word: ``looks_like_test`` asks
whether its text declares tests at all (a test function, class, ``describe(``
block...), so code placed under ``tests/`` to borrow its lower tier is still
code.
"""

from __future__ import annotations

import re2

# Path segments of tests and documentation.
_TEST_SEGMENTS = frozenset(
    {"test", "tests", "spec", "specs", "__tests__", "testdata", "fixtures", "__fixtures__"}
    | {"__mocks__", "testing", "e2e"}
)
_DOC_SEGMENTS = frozenset({"doc", "docs", "documentation"})
DOC_SUFFIXES = (".md", ".markdown", ".rst", ".adoc", ".txt")

# One line that declares a test, in the languages the runners above serve. RE2:
# the text comes from an untrusted pull request.
# A line may carry a unified diff's "+" or " " prefix (a removed test does not count).
_TEST_DECLARATION = re2.compile(
    r"(?m)^[+ ]?[ \t]*(?:"
    # pytest / unittest: def test_x, async def test_x, class TestX, class XTests(TestCase)
    r"(?:async[ \t]+)?def[ \t]+test\w*[ \t]*\("
    r"|class[ \t]+(?:Test\w*|\w+Tests?)\b"
    r"|@pytest\."
    # Go
    r"|func[ \t]+(?:Test|Benchmark|Fuzz|Example)\w*\("
    # Jest, Vitest, Mocha, Jasmine, RSpec, Minitest
    r"|(?:describe|it|test|context|suite)(?:\.\w+)?[ \t]*\(?[ \t]*[\"'`:]"
    r"|(?:RSpec\.)?describe[ \t]+\S"
    r"|it[ \t]+[\"']"
    r"|test[ \t]+[\"']"
    r"|class[ \t]+\w+[ \t]*<[ \t]*(?:\w+::)*\w*Test(?:Case)?\b"
    # JUnit, xUnit, NUnit, Rust
    r"|@(?:Test|ParameterizedTest)\b"
    r"|\[(?:Fact|Theory|Test|TestMethod|TestCase)\b"
    r"|#\[(?:test|tokio::test|cfg\(test\))"
    r")"
)


def is_doc_path(path: str) -> bool:
    """True for documentation: under ``docs/`` or a prose extension."""
    parts = path.split("/")
    return parts[-1].lower().endswith(DOC_SUFFIXES) or not _DOC_SEGMENTS.isdisjoint(
        part.lower() for part in parts[:-1]
    )


def is_test_path(path: str) -> bool:
    """True for test files, by directory or by file name."""
    parts = path.split("/")
    name = parts[-1]
    lowered = name.lower()
    stem = name.rsplit(".", 1)[0]
    return (
        not _TEST_SEGMENTS.isdisjoint(part.lower() for part in parts[:-1])
        or lowered.startswith("test_")
        or lowered == "conftest.py"
        or stem.lower().endswith(("_test", "-test", ".test", "_spec", "-spec", ".spec"))
        # UserTest.java, OrderTests.cs: a capital T after a lowercase letter.
        or (stem.endswith(("Test", "Tests")) and stem.rstrip("s")[:-4][-1:].islower())
    )


def is_test_or_doc_path(path: str) -> bool:
    return is_test_path(path) or is_doc_path(path)


def looks_like_test(text: str) -> bool:
    """True when ``text`` declares at least one test (function, class or block)."""
    return _TEST_DECLARATION.search(text) is not None
