"""Fuzzing the agent side's parsers of untrusted input: hook events, patches, shell commands.

Every agent's documented event shapes are generated and then mutated (a value of the
wrong type anywhere, a key dropped or added, a JSON string that is not JSON): parsing
gives an action or :class:`BadEvent`, which the hook answers as deny, never any
other exception. Sizes that grow give costs that grow linearly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate.agents.action import Action, BadEvent
from gate.agents.patch import parse_patch
from gate.agents.protocols import AGENTS, parse_event
from gate.agents.shell import ShellFacts, analyse
from tests.agent_events import builders
from tests.test_fuzz_parsers import _grows_linearly

ROOT = "/home/dev/project"
TEXT = st.lists(
    st.sampled_from([*"ab/.-_ \n\t*$\"'`;|&<>()\\é\x00\u2028", "../", ".env", "~"]),
    max_size=20,
).map("".join)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
KINDS = {"write": 2, "edit": 3, "read": 1, "shell": 1}


def _outcome(run: Callable[[], object]) -> object:
    """What ``run`` returns, or the ``BadEvent`` it raises (any other exception escapes)."""
    try:
        return run()
    except BadEvent as error:
        return error


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value sits."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _drop(node: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        node = node[step]
    if isinstance(node, dict):
        del node[path[-1]]
    else:
        node.pop(path[-1])


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    agent = draw(st.sampled_from(sorted(AGENTS)))
    kind = draw(st.sampled_from(sorted(KINDS)))
    args = [draw(TEXT) for _ in range(KINDS[kind])]
    event: dict[str, Any] = builders(agent, ROOT)[kind](*args)
    for _ in range(draw(st.integers(0, 3))):
        places = _paths(event)
        operation = draw(st.sampled_from(["retype", "drop", "add", "jsonstring"]))
        if operation == "add" or not places:
            event[draw(TEXT)] = draw(JSON_VALUE)
            continue
        place = draw(st.sampled_from(places))
        if operation == "retype":
            _set(event, place, draw(JSON_VALUE))
        elif operation == "drop":
            _drop(event, place)
        else:  # copilot's toolArgs is JSON inside a string: so may anything be
            _set(event, place, draw(st.sampled_from(["{", "[]", "null", '{"a": 1}', '"x"'])))
    return agent, event


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_any_mutated_event_is_an_action_or_bad_event(drawn: tuple[str, dict[str, Any]]) -> None:
    agent, event = drawn
    outcome = _outcome(lambda: parse_event(agent, json.dumps(event)))
    assert isinstance(outcome, Action) or (isinstance(outcome, BadEvent) and str(outcome))


@given(st.sampled_from(sorted(AGENTS)), st.binary(max_size=200))
def test_any_bytes_are_an_action_or_bad_event(agent: str, raw: bytes) -> None:
    outcome = _outcome(lambda: parse_event(agent, raw))
    assert isinstance(outcome, Action) or (isinstance(outcome, BadEvent) and str(outcome))


PATCH_LINE = st.sampled_from(
    [
        "*** Begin Patch",
        "*** End Patch",
        "*** Add File: a.py",
        "*** Add File: ",
        "*** Update File: src/x.py",
        "*** Delete File: old.txt",
        "*** Move to: new.py",
        "*** End of File",
        "@@",
        "@@ def f():",
        "+added",
        "-removed",
        " context",
        "",
        "junk",
    ]
)


@settings(max_examples=300)
@given(st.lists(PATCH_LINE, max_size=12), st.booleans())
def test_any_patch_is_files_or_bad_event(lines: list[str], framed: bool) -> None:
    if framed:
        lines = ["*** Begin Patch", *lines, "*** End Patch"]
    outcome = _outcome(lambda: parse_patch("\n".join(lines) + "\n"))
    if isinstance(outcome, BadEvent):
        assert str(outcome).startswith("apply_patch:")
    else:
        assert isinstance(outcome, tuple)
        assert outcome


SHELL_WORD = st.sampled_from(
    [
        "cat",
        ".env",
        "git",
        "push",
        "--force",
        "origin",
        "main",
        "commit",
        "--no-verify",
        "pip",
        "install",
        "requests",
        "npm",
        "add",
        "bash",
        "-c",
        "'cat .env'",
        '"',
        "'",
        "$(",
        "`",
        "&&",
        "|",
        ";",
        ">",
        "2>&1",
        "<",
        "(",
        ")",
        "\\",
        "\n",
        "config",
        "core.hooksPath",
        "/dev/null",
    ]
)


@settings(max_examples=400)
@given(st.lists(SHELL_WORD, max_size=16))
def test_any_command_is_analysed_or_reported_unparsed(words: list[str]) -> None:
    facts = analyse(" ".join(words), base_branches=frozenset({"main"}))
    assert isinstance(facts, ShellFacts)
    if facts.unparsed is not None:
        assert facts.unparsed


def test_patch_linear_in_files() -> None:
    def run(n: int) -> None:
        body = "".join(f"*** Add File: f{i}.py\n+x = {i}\n" for i in range(n))
        assert len(parse_patch(f"*** Begin Patch\n{body}*** End Patch\n")) == n

    _grows_linearly(run, size=4_000)


def test_shell_linear_in_commands() -> None:
    _grows_linearly(
        lambda n: analyse("cat README.md && " * n + "true", base_branches=frozenset({"main"})),
        size=2_000,
    )


def test_event_linear_in_edits() -> None:
    def run(n: int) -> None:
        edits = [{"old_string": f"a{i}", "new_string": f"b{i}"} for i in range(n)]
        event = builders("claude-code", ROOT)["edit"]("x.py", "", "")
        event["tool_name"] = "MultiEdit"
        event["tool_input"] = {"file_path": f"{ROOT}/x.py", "edits": edits}
        assert isinstance(parse_event("claude-code", json.dumps(event)), Action)

    _grows_linearly(run, size=5_000)
