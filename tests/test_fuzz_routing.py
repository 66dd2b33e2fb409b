"""Webhook routing under hostile payloads: only typed errors escape, in linear time.

Structured fuzzing: GitHub's own example payloads, mutated field by field
(missing, wrong type, huge, nested), then routed. ``events.route`` may only
answer a route or raise ``MalformedPayload``; the receiver turns that into 400.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakegithub import deliveries
from webhooks import events

HANDLED = [
    (event, action)
    for event in deliveries.events()
    if event in events.HANDLED
    for action in sorted(
        {a for a in deliveries.actions(event) if events.handled(event, a)}, key=str
    )
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=50),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(payload: dict[str, Any], path: tuple[Any, ...], value: Any, *, drop: bool) -> None:
    node: Any = payload
    for part in path[:-1]:
        node = node[part]
    if drop and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(min_value=0, max_value=len(HANDLED) - 1),
    picks=st.lists(st.tuples(st.integers(min_value=0), values, st.booleans()), max_size=4),
)
def test_routing_a_mutated_payload_raises_only_typed_errors(
    which: int, picks: list[tuple[int, Any, bool]]
) -> None:
    event, action = HANDLED[which]
    payload = deliveries.example(event, action)
    for index, value, drop in picks:
        paths = _paths(payload)
        if not paths:
            break
        _mutate(payload, paths[index % len(paths)], copy.deepcopy(value), drop=drop)
    try:
        routed = events.route(event, payload, action=action)
    except events.MalformedPayload:
        return
    # What is stored decodes back to the same intent.
    assert events.decode(events.encode(routed.intent), event=event, action=action) == routed.intent
    assert events.parse_key(routed.key.text) == routed.key


def _key_or_error(text: str) -> events.JobKey | ValueError:
    try:
        return events.parse_key(text)
    except ValueError as error:
        return error


def _intent_or_error(body: bytes) -> events.Intent | events.MalformedPayload:
    try:
        return events.decode(body, event="pull_request", action="opened")
    except events.MalformedPayload as error:
        return error


@given(st.text(max_size=200))
def test_any_stored_key_parses_or_raises_value_error(text: str) -> None:
    key = _key_or_error(text)
    if isinstance(key, ValueError):
        assert "not a job key" in str(key)
    else:
        assert events.parse_key(key.text) == key


@given(st.binary(max_size=300))
def test_any_stored_body_decodes_or_raises_malformed(body: bytes) -> None:
    intent = _intent_or_error(body)
    if isinstance(intent, events.MalformedPayload):
        assert str(intent)
    else:
        assert intent.kind == "pull"


def test_routing_time_is_linear_in_the_payload() -> None:
    def body(size: int) -> str:
        payload = deliveries.example("pull_request", "synchronize")
        payload["pull_request"]["body"] = "x" * size
        payload["pull_request"]["labels"] = [{"name": str(i)} for i in range(size // 100)]
        return json.dumps(payload)

    def timed(text: str) -> float:
        start = time.process_time()
        for _ in range(5):
            events.route("pull_request", json.loads(text))
        return time.process_time() - start

    small_body, large_body = body(200_000), body(800_000)
    # Noise only slows a run: keep each size's fastest of three, measured in
    # alternation; a quadratic router would cost 16 times as much, not 4.
    small = large = float("inf")
    for _ in range(3):
        small = min(small, timed(small_body))
        large = min(large, timed(large_body))
    assert large < small * 4 * 2.5
