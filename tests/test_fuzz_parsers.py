"""Fuzzing every parser of untrusted input, and checking each runs in linear time.

CODEOWNERS, the policy file, patches, manifests and lockfiles, and the text the
secrets detector scans all come from repositories and pull requests: a parser
may answer with its own typed error (``PatchError``, ``InvalidPolicy``, a
``ParseError`` value, a CODEOWNERS ``Problem``), never with an unexpected
exception, which would fail a job until it is dead-lettered instead of telling
the author what is wrong.

Inputs are built from each format's own structure (rules, hunks, policy
sections, dependency tables) and then mutated (noise inserted, slices deleted or
repeated), so most examples get deep into the parser instead of failing at the
first byte. The linear-time checks double an adversarial input (long lines,
deep nesting, many hunks or rules) and require the time to grow at most 2.5
times; each measures the best of three runs of CPU time, which other processes
on the machine do not inflate.
"""

from __future__ import annotations

import gc
import itertools
import json
import string
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate.codeowners import CodeOwners
from gate.defaults import load_policy
from gate.detectors.base import ScanInput
from gate.detectors.dependencies import DependencyDetector, new_packages
from gate.detectors.manifests import (
    Manifest,
    ParseError,
    is_local,
    parse_manifest,
    registry_ref,
)
from gate.detectors.secrets import scan_lines, scan_text
from gate.diff import AddedLine, PatchError, added_lines, first_added_range
from gate.model import ChangedFile, Contents, FileStatus
from gate.policy import InvalidPolicy, LoadedPolicy

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Characters parsers trip over: separators, quotes, escapes, line ends of every
#: kind, NUL, a BOM, a lone surrogate (JSON can decode one), non-ASCII.
_TRICKY = [
    *"abz09 -_./*?#@!\\[]{}()<>:;,=~^$%&|'\"`\t\r\n",
    "\x00",
    "\x0b",
    "\x85",
    "\u2028",
    "\ufeff",
    "\ud800",
    "é",
    "漢",
    "\U0001f600",
]
NOISE = st.text(alphabet=st.sampled_from(_TRICKY), max_size=12)
WORD = st.text(alphabet=string.ascii_lowercase + string.digits + "-_.", min_size=1, max_size=10)


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[str]) -> str:
    """A document of the format with a few random edits."""
    text = draw(documents)
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(["insert", "delete", "repeat"]))
        i = draw(st.integers(0, len(text)))
        if operation == "insert":
            text = text[:i] + draw(NOISE) + text[i:]
        elif operation == "delete":
            j = draw(st.integers(i, min(len(text), i + 20)))
            text = text[:i] + text[j:]
        else:
            j = draw(st.integers(i, min(len(text), i + 40)))
            text = text[:j] + text[i:j] * draw(st.integers(1, 4)) + text[j:]
    return text


def _grows_linearly(run: Callable[[int], object], *, size: int, repeat: int = 1) -> None:
    """Doubling the input size costs at most 2.5 times the CPU time.

    ``repeat`` runs the parser several times per measurement, so inputs stay
    small enough (a megabyte or two) that cache and page-fault effects of large
    allocations do not drown the parser's own cost.

    Noise only ever slows a run down, never speeds it up: the two sizes are
    measured in alternation (a busy spell hits both), each keeps its fastest
    run, and a ratio over the bound is measured again, up to three times. A
    quadratic parser costs four times as much at double the size on every
    attempt, so it still fails.
    """

    def once(n: int) -> float:
        started = time.process_time()
        for _ in range(repeat):
            run(n)
        return time.process_time() - started

    gc.collect()
    gc.disable()  # a collection landing in one run but not the other is noise
    try:
        for _ in range(3):
            small = large = float("inf")
            for _ in range(3):
                small = min(small, once(size))
                large = min(large, once(2 * size))
            # a few ms of slack: timer resolution and allocator noise on tiny inputs
            if large <= 2.5 * small + 0.004:
                break
    finally:
        gc.enable()
    assert large <= 2.5 * small + 0.004, f"size {size}: {small:.4f} s, double: {large:.4f} s"
    assert small >= 0.0015, f"size {size} is too small to measure ({small:.4f} s)"


# -- CODEOWNERS ---------------------------------------------------------------------

SEGMENT = st.sampled_from(
    ["*", "**", "?", "a", "src", "docs", ".github", "a b", "é", "[a-z]", "\\#", "x*y", "*.py"]
)
OWNER = st.sampled_from(
    ["@alice", "@org/team", "@org/team.x", "dev@example.com", "@", "@-bad", "x", "@a[bot]", "#c"]
)


@st.composite
def codeowners_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["rule", "rule", "rule", "comment", "blank", "noise"]))
    if kind == "comment":
        return "# " + draw(NOISE)
    if kind == "blank":
        return draw(st.sampled_from(["", "   ", "\t"]))
    if kind == "noise":
        return draw(NOISE)
    pattern = "/".join(draw(st.lists(SEGMENT, min_size=1, max_size=5)))
    pattern = draw(st.sampled_from(["", "/", "!"])) + pattern + draw(st.sampled_from(["", "/"]))
    owners = " ".join(draw(st.lists(OWNER, max_size=3)))
    comment = draw(st.sampled_from(["", " # owners", "#x"]))
    return f"{pattern} {owners}{comment}"


CODEOWNERS_TEXT = mutated(st.lists(codeowners_line(), max_size=12).map("\n".join))
REPO_PATH = st.lists(SEGMENT | WORD, min_size=1, max_size=6).map("/".join)


@FUZZ
@given(text=CODEOWNERS_TEXT, paths=st.lists(REPO_PATH, max_size=5))
def test_codeowners_answers_every_file(text: str, paths: list[str]) -> None:
    parsed = CodeOwners.parse(text)
    lines = len(text.splitlines())
    assert all(1 <= problem.line <= max(lines, 1) for problem in parsed.problems)
    for path in paths:
        owners = parsed.owners_of(path)
        assert all(isinstance(owner, str) and owner for owner in owners)


def test_codeowners_linear_in_rules() -> None:
    runs = itertools.count()

    def run(n: int) -> None:
        salt = next(runs)  # new patterns each run: no compiled-regex cache helps
        rules = "\n".join(f"/dir{i}/**/*.py{salt} @org/team{i % 7}" for i in range(n))
        owners = CodeOwners.parse(rules + "\n*.md @docs\n")
        for i in range(0, n, 10):
            owners.owners_of(f"dir{i}/a/b/c.py{salt}")

    _grows_linearly(run, size=400)


def test_codeowners_globstars_cost_nothing() -> None:
    """``**/`` repeated made the backtracking matcher take 18 s for ten of them."""
    deep = "a/" + "c/" * 100
    started = time.process_time()
    owners = CodeOwners.parse("a/" + "**/" * 10_000 + "b @x\n" + "x/" + "**/**/" * 20 + " @y\n")
    assert owners.owners_of(deep + "d") == ()
    assert owners.owners_of(deep + "b") == ("@x",)
    assert owners.owners_of("x/" + "y/" * 100) == ("@y",)
    assert time.process_time() - started < 0.2


def test_codeowners_linear_in_wildcards() -> None:
    deep = "a/" + "c/" * 100

    def run(n: int) -> None:
        owners = CodeOwners.parse("a/" + "*c/" * n + "b @x\n")
        owners.owners_of(deep + "d")

    _grows_linearly(run, size=2_500)


def test_codeowners_linear_in_line_length() -> None:
    """A pattern of n wildcards against a path: RE2 takes pattern x path steps, never more."""
    path = "src/" + "a" * 200 + "/b.py"

    def run(n: int) -> None:
        owners = CodeOwners.parse("*a" * n + " @x\n" + "x" * n + " " + "@y " * (n // 10))
        owners.owners_of(path)

    _grows_linearly(run, size=6_000)


def test_codeowners_linear_in_path_length() -> None:
    owners = CodeOwners.parse("*a*b*c*/**/x?y @x\n/src/**/*.py @y\nsrc/ @z\n")
    _grows_linearly(
        lambda n: owners.owners_of("src/" + "ab/" * n + "x.py"), size=100_000, repeat=20
    )


# -- the policy -----------------------------------------------------------------------

GLOB = st.lists(SEGMENT | WORD, min_size=1, max_size=4).map("/".join) | NOISE
JUNK: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | NOISE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORD, inner, max_size=3),
    max_leaves=6,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes anything."""
    return st.one_of(valid, valid, valid, JUNK)


@st.composite
def policy_document(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["low", "medium", "high", "x", ""]), max_size=4))
    tier = st.fixed_dictionaries(
        {"name": maybe(st.sampled_from(names or ["low"]))},
        optional={
            "description": maybe(NOISE),
            "paths": maybe(st.lists(GLOB, max_size=3)),
            "exclude": maybe(st.lists(GLOB, max_size=2)),
            "detectors": maybe(
                st.lists(
                    st.sampled_from(["secrets", "dependencies:new-package", "nope", "a:B"]),
                    max_size=2,
                )
            ),
            "require": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "approvals": maybe(st.integers(-1, 12)),
                        "from": maybe(
                            st.sampled_from(["code_owners", "nobody"]) | st.lists(OWNER, max_size=2)
                        ),
                        "gates": maybe(
                            st.lists(
                                st.sampled_from(["staged_rollout", "supply_chain_scan", "x"]),
                                max_size=2,
                            )
                        ),
                    },
                )
            ),
            "rollout": maybe(NOISE),
        },
    )
    sections = {
        "agents": st.fixed_dictionaries(
            {},
            optional={
                "bots": maybe(st.booleans()),
                "logins": maybe(st.lists(st.sampled_from(["*[bot]", "a b", "x?"]), max_size=3)),
                "exclude": maybe(st.lists(WORD, max_size=2)),
                "co_authors": maybe(st.booleans()),
                "co_author_emails": maybe(st.lists(st.just("*@users.noreply.github.com"))),
                "labels": maybe(st.lists(WORD, max_size=2)),
            },
        ),
        "govern_humans": maybe(st.booleans()),
        "scope": st.fixed_dictionaries(
            {},
            optional={
                "deny": maybe(
                    st.lists(
                        st.fixed_dictionaries(
                            {"reason": maybe(NOISE)},
                            optional={
                                "paths": maybe(st.lists(GLOB, max_size=2)),
                                "detectors": maybe(st.lists(st.just("secrets"), max_size=1)),
                            },
                        ),
                        max_size=2,
                    )
                )
            },
        ),
        "tiers": maybe(st.lists(tier, max_size=4)),
        "default_tier": maybe(st.sampled_from(names or ["medium"])),
        "unseen_content_tier": maybe(st.sampled_from(names or ["medium"])),
        "fallback_owners": maybe(st.lists(OWNER, max_size=2)),
        "unknown": JUNK,
    }
    document: dict[str, Any] = {"version": draw(maybe(st.sampled_from([1, 2, "1"])))}
    for name in draw(st.lists(st.sampled_from(sorted(sections)), unique=True)):
        document[name] = draw(sections[name])
    return document


def _yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


#: Documents that once escaped as other exceptions or took exponential time.
POLICY_EDGES = [
    "[" * 3000 + "]" * 3000,  # RecursionError in the composer
    "version: 1\nx:\n" + "".join(" " * i + "- \n" for i in range(1, 60)),  # block nesting
    "version: " + "9" * 5000,  # ValueError: past int()'s digit limit
    "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n",
    "? [a]\n: b\n",
    "version: 1\nversion: 1\n",
    "--- 1\n--- 2\n",
    "%YAML 9.9\n---\na: 1\n",
    "!!python/object:os.system x\n",
]
POLICY_TEXT = mutated(policy_document().map(_yaml)) | st.sampled_from(POLICY_EDGES)


@pytest.mark.parametrize("text", POLICY_EDGES)
def test_policy_edge_cases_are_invalid_policies(text: str) -> None:
    with pytest.raises(InvalidPolicy):
        load_policy(text)


@FUZZ
@given(text=POLICY_TEXT)
def test_policy_is_loaded_or_rejected_with_positions(text: str) -> None:
    try:
        loaded = load_policy(text)
    except InvalidPolicy as error:
        errors = error.errors
    else:
        assert isinstance(loaded, LoadedPolicy)
        assert loaded.digest.startswith("sha256:")
        assert loaded.cite("tiers")
        return
    assert errors
    lines = len(text.splitlines()) + 1  # YAML breaks lines at NEL and U+2028 too
    assert all(1 <= e.line <= lines + 1 and e.column >= 1 for e in errors)


def test_policy_alias_expansion_is_bounded() -> None:
    """Nine aliases of nine aliases, eight levels deep: 43 million nodes once expanded."""
    lines = ['x0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    started = time.process_time()
    with pytest.raises(InvalidPolicy, match=r"once aliases are expanded|alias uses"):
        load_policy("\n".join(lines))
    assert time.process_time() - started < 1.0


def test_policy_linear_in_tiers_and_paths() -> None:
    def run(n: int) -> None:
        tiers = [
            {"name": f"t{i}", "paths": [f"dir{i}/**/*.py", f"{{a,b}}/x{i}/"]} for i in range(n)
        ]
        with pytest.raises(InvalidPolicy):  # no tier named "medium" (the default tier)
            load_policy(_yaml({"version": 1, "tiers": tiers}))

    _grows_linearly(run, size=60)


def test_policy_linear_in_line_length() -> None:
    def run(n: int) -> None:
        deny = [{"paths": ["x/**"], "reason": "r" * n}]
        load_policy(_yaml({"version": 1, "scope": {"deny": deny}}) + "# " + "y" * n + "\n")

    _grows_linearly(run, size=10_000)


def test_policy_linear_in_nesting() -> None:
    """Nesting within the limit, many times over; past it, the scanner stops at once."""

    def run(n: int) -> None:
        with pytest.raises(InvalidPolicy, match="unknown key"):
            load_policy("version: 1\nx: [" + ", ".join(["[" * 25 + "]" * 25] * n) + "]")

    _grows_linearly(run, size=30)
    started = time.process_time()
    with pytest.raises(InvalidPolicy, match="levels deep"):
        load_policy("version: 1\nx: " + "[" * 100_000 + "]" * 100_000)
    assert time.process_time() - started < 0.5


# -- patches --------------------------------------------------------------------------


@st.composite
def hunk(draw: st.DrawFn) -> str:
    number = st.integers(-3, 10**6).map(str) | st.sampled_from(["", "x", "٣", "1e3", "99" * 20])
    header = draw(st.sampled_from(["@@ -{a},{b} +{c},{d} @@{ctx}", "@@ -{a} +{c} @@", "@@ {a}"]))
    header = header.format(
        a=draw(number), b=draw(number), c=draw(number), d=draw(number), ctx=draw(NOISE)
    )
    body = draw(
        st.lists(
            st.tuples(st.sampled_from([" ", "+", "-", "\\", ""]), NOISE).map("".join),
            max_size=8,
        )
    )
    return "\n".join([header, *body])


PATCH_TEXT = mutated(
    st.tuples(st.lists(hunk(), min_size=1, max_size=4), st.sampled_from(["\n", "\r\n"])).map(
        lambda parts: parts[1].join(parts[0])
    )
)


@FUZZ
@given(patch=PATCH_TEXT)
def test_patches_give_added_lines_or_patch_error(patch: str) -> None:
    try:
        lines = added_lines(patch)
    except PatchError:
        return
    assert len(lines) == sum(1 for line in patch.split("\n") if line.startswith("+"))
    start, end = first_added_range(lines)
    assert start <= end


def test_patch_linear_in_hunks() -> None:
    _grows_linearly(lambda n: added_lines("@@ -1,2 +1,3 @@\n a\n-b\n+c\n+d\n" * n), size=8_000)


def test_patch_linear_in_line_length() -> None:
    _grows_linearly(lambda n: added_lines("@@ -1 +1 @@\n+" + "a" * n), size=500_000, repeat=20)


# -- manifests and lockfiles ------------------------------------------------------------

NAME = st.sampled_from(["requests", "left-pad", "@scope/pkg", "a_b.c", "Django", "x"]) | WORD
VERSION = st.sampled_from(["1.0", "1.2.3", "^1.2.3", "~> 7.0", ">=1,<2", "*", "v1.2.3", ""]) | NOISE
REQUIREMENT = st.tuples(
    NAME,
    st.sampled_from(["", "[extra]", "[a,b]", "[", "[]"]),
    st.sampled_from(["", "==", ">=", "~=", "!=", "===", " @ ", "<"]),
    VERSION,
    st.sampled_from(["", "; python_version < '3.12'", " --hash=sha256:abc", " # c", " \\"]),
).map("".join)


def _toml(value: Any) -> str:
    """A TOML inline value (JSON strings are TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


def _toml_document(tables: dict[str, Any]) -> str:
    return "\n".join(f"{json.dumps(key)} = {_toml(value)}" for key, value in tables.items())


TOML_VALUE: st.SearchStrategy[Any] = st.recursive(
    st.booleans() | st.integers(-5, 5) | VERSION,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORD, inner, max_size=3),
    max_leaves=5,
)
CARGO_DEPENDENCY = maybe(
    VERSION
    | st.fixed_dictionaries(
        {},
        optional={
            "version": maybe(VERSION),
            "git": st.just("https://github.com/o/r"),
            "path": st.just("../local"),
            "package": maybe(NAME),
            "workspace": maybe(st.booleans()),
        },
    )
)


@st.composite
def manifest_document(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(
        st.sampled_from(
            [
                "requirements.txt",
                "requirements/dev.in",
                "pyproject.toml",
                "Cargo.toml",
                "package.json",
                "package-lock.json",
                "go.mod",
                "Gemfile",
            ]
        )
    )
    if kind.startswith("requirements"):
        lines = st.one_of(
            REQUIREMENT,
            REQUIREMENT,
            st.sampled_from(
                [
                    "-r other.txt",
                    "-e git+https://github.com/o/r.git#egg=r",
                    "--index-url https://user:secret@pypi.example/simple",
                    "--extra-index-url=https://x.example/simple?token=1",
                    "./local/pkg",
                    "pkg @ https://example.com/pkg-1.0.whl",
                    "# comment",
                    "-e",
                    "--hash",
                ]
            ),
        )
        return kind, "\n".join(draw(st.lists(lines, max_size=8)))
    if kind == "pyproject.toml":
        requirements = st.lists(REQUIREMENT, max_size=4)
        document = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "project": st.fixed_dictionaries(
                        {},
                        optional={
                            "dependencies": maybe(requirements),
                            "optional-dependencies": maybe(
                                st.dictionaries(WORD, requirements, max_size=2)
                            ),
                        },
                    ),
                    "dependency-groups": maybe(
                        st.dictionaries(WORD, st.lists(REQUIREMENT | TOML_VALUE, max_size=3))
                    ),
                    "tool": st.fixed_dictionaries(
                        {},
                        optional={
                            "poetry": st.fixed_dictionaries(
                                {"dependencies": st.dictionaries(NAME, CARGO_DEPENDENCY)}
                            )
                            | st.dictionaries(WORD, TOML_VALUE, max_size=2)
                        },
                    ),
                },
            )
        )
        return kind, _toml_document(document)
    if kind == "Cargo.toml":
        deps = st.dictionaries(NAME, CARGO_DEPENDENCY, max_size=3)
        document = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "dependencies": maybe(deps),
                    "dev-dependencies": maybe(deps),
                    "target": maybe(st.dictionaries(st.just("cfg(unix)"), st.just({}))),
                    "workspace": maybe(st.fixed_dictionaries({"dependencies": deps})),
                },
            )
        )
        return kind, _toml_document(document)
    if kind == "package.json":
        deps = maybe(st.dictionaries(NAME, maybe(VERSION | st.just("npm:real@^1.0.0"))))
        document = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "dependencies": deps,
                    "devDependencies": deps,
                    "optionalDependencies": deps,
                    "peerDependencies": deps,
                    "name": maybe(NAME),
                },
            )
        )
        return kind, json.dumps(document)
    if kind == "package-lock.json":
        entry = st.fixed_dictionaries(
            {},
            optional={
                "version": maybe(VERSION),
                "resolved": st.just("https://registry.npmjs.org/x/-/x-1.0.0.tgz"),
                "link": maybe(st.booleans()),
                "dependencies": maybe(st.dictionaries(NAME, maybe(VERSION), max_size=2)),
            },
        )
        document = draw(
            st.fixed_dictionaries(
                {"lockfileVersion": maybe(st.sampled_from([1, 2, 3]))},
                optional={
                    "packages": maybe(
                        st.dictionaries(
                            st.sampled_from(["", "node_modules/a", "node_modules/@s/b"]) | WORD,
                            maybe(entry),
                            max_size=3,
                        )
                    ),
                    "dependencies": maybe(st.dictionaries(NAME, maybe(entry), max_size=2)),
                },
            )
        )
        return kind, json.dumps(document)
    if kind == "go.mod":
        directive = st.sampled_from(
            [
                "module example.com/m",
                "go 1.22",
                "require example.com/a v1.2.3",
                "require (\n\texample.com/b v0.1.0 // indirect\n)",
                "replace example.com/a => ../a",
                "replace example.com/a v1.0.0 => example.com/c v1.1.0",
                'require "example.com/q" v1.0.0',
                "exclude example.com/x v1.0.0",
                "require (",
                ")",
                "// comment",
            ]
        )
        return kind, "\n".join(draw(st.lists(directive, max_size=6)))
    gem = st.tuples(
        st.sampled_from(["gem ", "gem(", "  gem "]),
        NAME.map(lambda name: f"'{name}'"),
        st.sampled_from(
            ["", ", '~> 7.0'", ", git: 'https://g/x'", ", '>= 1', '< 2'", ", path: 'x'"]
        ),
    ).map("".join)
    lines = st.one_of(
        gem, st.sampled_from(["source 'https://rubygems.org'", "group :dev do", "end"])
    )
    return kind, "\n".join(draw(st.lists(lines, max_size=6)))


@st.composite
def mutated_manifest(draw: st.DrawFn) -> tuple[str, str]:
    path, text = draw(manifest_document())
    return path, draw(mutated(st.just(text)))


@FUZZ
@given(document=mutated_manifest())
def test_manifests_parse_or_report(document: tuple[str, str]) -> None:
    path, text = document
    parsed = parse_manifest(path=path, text=text)
    if isinstance(parsed, ParseError):
        assert parsed.reason
        return
    assert isinstance(parsed, Manifest)
    for package in parsed.packages:
        is_local(package)
        ref = registry_ref(package)
        assert ref is None or ref.name


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("package.json", '{"dependencies": {"\\ud800": "1.0.0"}}'),  # a JSON escape
        ("package-lock.json", '{"packages": {"node_modules/a": {"version": "\\udfff"}}}'),
        ("requirements.txt", "pkg==1.0\ud800"),
        ("go.mod", "require ex.com/\ud800 v1.0.0"),
        ("Gemfile", "gem '\ud800'"),
    ],
)
def test_manifest_with_a_lone_surrogate_is_a_parse_error(path: str, text: str) -> None:
    assert isinstance(parse_manifest(path=path, text=text), ParseError)


def test_codeowners_with_a_lone_surrogate_still_answers() -> None:
    owners = CodeOwners.parse("* @all\n/\ud800/ @odd\n")
    assert owners.owners_of("\ud800/x") == ("@odd",)
    assert owners.owners_of("src/\udfff.py") == ("@all",)


@FUZZ
@given(base=mutated_manifest(), head=mutated_manifest())
def test_dependency_detector_compares_any_two_versions(
    base: tuple[str, str], head: tuple[str, str]
) -> None:
    path = head[0]
    file = ChangedFile(path=path, status=FileStatus.MODIFIED, patch="@@ -1 +1 @@\n+x")
    contents = Contents(texts={("base", path): base[1], ("head", path): head[1]})
    data = ScanInput(file=file, added=(), contents=contents)
    findings = DependencyDetector().scan(data)
    assert all(finding.path == path for finding in findings)
    new_packages(data)


def _requirements(n: int) -> str:
    return "\n".join(f"pkg{i}[a,b]>=1.{i},<2; python_version >= '3.9'" for i in range(n))


@pytest.mark.parametrize(
    ("path", "build", "size"),
    [
        ("requirements.txt", _requirements, 300),
        ("requirements.txt", lambda n: "pkg \\\n" + ">=1 \\\n" * n, 3_000),  # one logical line
        ("requirements.txt", lambda n: "pkg==" + "1" * n, 300_000),
        (
            "package.json",
            lambda n: json.dumps({"dependencies": {f"p{i}": f"^1.{i}.0" for i in range(n)}}),
            1_000,
        ),
        ("package.json", lambda n: "[" + ",".join(["[" * 40 + "]" * 40] * n) + "]", 1_000),
        ("pyproject.toml", lambda n: "a = [" + ",".join(["[" * 40 + "]" * 40] * n) + "]", 200),
        (
            "Cargo.toml",
            lambda n: "[dependencies]\n" + "".join(f'c{i} = "1.{i}"\n' for i in range(n)),
            600,
        ),
        (
            "go.mod",
            lambda n: "require (\n" + "".join(f"ex.com/m{i} v1.{i}.0\n" for i in range(n)) + ")",
            5_000,
        ),
        ("Gemfile", lambda n: "".join(f"gem 'g{i}', '~> 1.{i}'\n" for i in range(n)), 400),
        ("Gemfile", lambda n: "gem 'x', " + "'a', " * n, 2_500),
    ],
)
def test_manifest_linear(path: str, build: Callable[[int], str], size: int) -> None:
    _grows_linearly(lambda n: parse_manifest(path=path, text=build(n)), size=size)


# -- secrets ---------------------------------------------------------------------------

FRAGMENT = st.sampled_from(
    [
        "AKIA",
        "ghp_",
        "github_pat_",
        "xoxb-",
        "sk_live_",
        "glpat-",
        "-----BEGIN RSA PRIVATE KEY-----\n",
        "-----END RSA PRIVATE KEY-----",
        "password = ",
        'api_key: "',
        "Authorization: Bearer ",
        "postgres://user:",
        "@db.example.com/x",
        "eyJhbGciOiJIUzI1NiJ9.",
        "=",
        "\n",
        '"',
    ]
) | st.text(alphabet=string.ascii_letters + string.digits + "+/_-", min_size=1, max_size=48)
SECRET_TEXT = mutated(st.lists(FRAGMENT | NOISE, max_size=16).map("".join))


@FUZZ
@given(text=SECRET_TEXT)
def test_secrets_scan_any_text(text: str) -> None:
    lines = text.count("\n") + 1
    for finding in scan_text(path="config/settings.py", text=text):
        assert finding.line is not None
        assert 1 <= finding.line <= lines
    added = tuple(AddedLine(i + 10, line) for i, line in enumerate(text.split("\n")))
    for finding in scan_lines(path=".env", lines=added):
        assert finding.line is not None
        assert 10 <= finding.line < 10 + len(added)


@pytest.mark.parametrize(
    ("build", "size"),
    [
        (lambda n: "A" * n, 500_000),  # one long line
        (lambda n: "password = " + "x9Y" * (n // 3), 500_000),
        (lambda n: "\n".join(f"k{i} = 'AKIA{i:016d}'" for i in range(n // 30)), 300_000),
        (lambda n: "ghp_" * (n // 4), 500_000),
        (lambda n: "-----BEGIN RSA PRIVATE KEY-----\n" * (n // 32), 500_000),
    ],
)
def test_secrets_linear(build: Callable[[int], str], size: int) -> None:
    texts = {size: build(size), 2 * size: build(2 * size)}
    _grows_linearly(lambda n: scan_text(path="a.txt", text=texts[n]), size=size, repeat=5)
