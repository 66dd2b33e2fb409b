"""Policy parsing is bounded: hostile YAML is a positioned error, found fast."""

from __future__ import annotations

import time

import pytest

from gate.defaults import DEFAULT_POLICY, load_policy
from gate.policy import MAX_ALIASES, MAX_DEPTH, MAX_NODES, MAX_POLICY_BYTES, InvalidPolicy, parse


def billion_laughs(levels: int = 10) -> str:
    lines = [
        "version: 1",
        'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
    ]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def error_of(text: str) -> tuple[int, int, str]:
    with pytest.raises(InvalidPolicy) as raised:
        parse(text)
    (error,) = raised.value.errors
    return error.line, error.column, error.message


def test_billion_laughs_is_a_positioned_error_found_fast() -> None:
    started = time.process_time()  # CPU time: a busy machine does not count
    line, column, message = error_of(billion_laughs())
    elapsed = time.process_time() - started
    # l0..l3 expand to 8,302 nodes; l4's first alias (line 6) adds 7,381 more.
    assert (line, column) == (6, 10)
    assert f"more than {MAX_NODES} nodes" in message
    assert elapsed < 0.5


def test_too_many_alias_uses() -> None:
    text = "version: 1\nx: &x a\nl: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    line, column, message = error_of(text)
    assert line == 3
    assert column == 5 + 4 * MAX_ALIASES  # the 101st "*x"
    assert "alias uses" in message


def test_a_recursive_alias_is_an_error_not_a_crash() -> None:
    assert error_of("version: 1\nx: &r [a, *r]\n")[:2] == (2, 11)


def test_deep_nesting_is_an_error() -> None:
    text = "version: 1\nx: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    line, column, message = error_of(text)
    # The document's mapping is the first level: the 64th bracket opens level 65.
    assert (line, column) == (2, 3 + MAX_DEPTH)
    assert "levels deep" in message


def test_the_size_is_capped() -> None:
    text = DEFAULT_POLICY + "#" * (MAX_POLICY_BYTES - len(DEFAULT_POLICY.encode()) + 1)
    assert error_of(text) == (
        1,
        1,
        f"the policy is {MAX_POLICY_BYTES + 1} bytes; the limit is {MAX_POLICY_BYTES}",
    )


def test_a_document_at_the_size_limit_parses_quickly() -> None:
    text = DEFAULT_POLICY + "# padding\n" * ((MAX_POLICY_BYTES - len(DEFAULT_POLICY)) // 10)
    started = time.perf_counter()
    loaded = parse(text)
    assert time.perf_counter() - started < 5  # about 0.3 s; generous for a loaded CI machine
    assert loaded.policy.tiers


def test_a_few_aliases_are_still_fine() -> None:
    text = """\
version: 1
tiers:
  - name: low
    paths: &docs ["docs/**", "*.md"]
    require: {approvals: 0}
  - name: medium
    require: &one {approvals: 1}
  - name: high
    paths: ["**/auth/**"]
    exclude: *docs
    require: *one
default_tier: medium
unseen_content_tier: medium
"""
    policy = load_policy(text).policy
    assert policy.tier("high").exclude == ("docs/**", "*.md")
    assert policy.tier("high").require == policy.tier("medium").require
