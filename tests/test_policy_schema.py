"""The shipped JSON Schema accepts every policy the parser accepts.

Editors validate ``.github/merge-gate.yml`` against ``gate/policy.schema.json``; a
schema that rejects a valid policy would flag correct files red. The README's
example, the built-in policy, a file that leaves every section out, and generated
policies (every field, optional sections, unusual text) go through both.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gate import globs
from gate.defaults import DEFAULT_POLICY, default_policy, load_policy
from gate.policy import DETECTORS, GATES

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "gate/policy.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def schema_errors(data: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(data)]


def both_accept(text: str) -> None:
    load_policy(text)  # raises InvalidPolicy with every problem
    assert schema_errors(yaml.safe_load(text)) == []


def test_the_schema_itself_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_readme_example_and_default_policy_validate() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- policy-example -->\n```yaml\n(.*?)```", readme, re.S)
    assert block
    both_accept(block.group(1))
    both_accept(DEFAULT_POLICY)
    # The parsed, complete form too (what `gate check --format json` reasons about).
    full = default_policy().policy.model_dump(mode="json", by_alias=True)
    assert schema_errors(full) == []


def test_sections_left_out_are_valid_in_the_schema_too() -> None:
    both_accept("version: 1\n")
    both_accept("version: 1\nfallback_owners: ['@acme/security']\n")


def test_the_schema_rejects_what_the_parser_rejects() -> None:
    assert schema_errors({"version": 1, "bogus": 1})
    assert schema_errors({"tiers": []})
    deny = {"detectors": ["secret"], "reason": "a typo never denies anything"}
    assert schema_errors({"version": 1, "scope": {"deny": [deny]}})


# --- generated policies ---------------------------------------------------------------

# PyYAML's dumper writes NEL and the Unicode line separators raw and reads them back as
# line breaks; they are left out so that the text survives the round trip unchanged.
CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x85\u2028\u2029")
TEXT = st.text(CHARS, max_size=40)
_SEGMENTS = st.sampled_from(
    [
        "docs",
        "src",
        "**",
        "*",
        "*.py",
        "a?c",
        "{md,rst}",
        "*.{js,ts}",
        "[a-z]*",
        "[!x]y",
        "été",
        "a b",
        "x.y",
        "-",
        "_",
    ]
)
GLOB = st.lists(_SEGMENTS, min_size=1, max_size=4).map("/".join) | st.text(
    CHARS, min_size=1, max_size=20
)
GLOB = GLOB.filter(lambda g: g.strip() != "" and not globs.validate([g]))
LOGIN_GLOB = st.from_regex(r"\A[^\s]{1,30}\Z")
OWNER = st.from_regex(
    r"\A@[A-Za-z0-9][A-Za-z0-9-]{0,10}(\[bot\])?(/[A-Za-z0-9][A-Za-z0-9._-]{0,10})?\Z"
)
DETECTOR = st.builds(
    lambda name, rule: f"{name}:{rule}" if rule else name,
    st.sampled_from(DETECTORS),
    st.none() | st.from_regex(r"\A[a-z0-9-]{1,12}\Z"),
)
TIER_NAME = st.from_regex(r"\A[a-z][a-z0-9_-]{0,39}\Z")


def _optional(
    draw: st.DrawFn, key: str, strategy: st.SearchStrategy[Any], out: dict[str, Any]
) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


@st.composite
def requirements(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"approvals": draw(st.integers(0, 10))}
    if out["approvals"] and draw(st.booleans()):
        out["from"] = draw(st.just("code_owners") | st.lists(OWNER, min_size=1, max_size=3))
    _optional(draw, "gates", st.lists(st.sampled_from(GATES), max_size=2), out)
    return out


@st.composite
def tiers(draw: st.DrawFn, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "require": draw(requirements())}
    _optional(draw, "description", TEXT, out)
    _optional(draw, "paths", st.lists(GLOB, max_size=3), out)
    _optional(draw, "exclude", st.lists(GLOB, max_size=2), out)
    _optional(draw, "detectors", st.lists(DETECTOR, max_size=3), out)
    _optional(draw, "rollout", TEXT, out)
    return out


@st.composite
def deny_rules(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"reason": draw(TEXT.filter(bool))}
    paths = draw(st.lists(GLOB, max_size=2))
    detectors = draw(st.lists(DETECTOR, min_size=0 if paths else 1, max_size=2))
    if paths:
        out["paths"] = paths
    if detectors or not paths:
        out["detectors"] = detectors
    return out


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"version": 1}
    agents: dict[str, Any] = {}
    for key in ("bots", "co_authors"):
        _optional(draw, key, st.booleans(), agents)
    for key in ("logins", "exclude", "co_author_emails"):
        _optional(draw, key, st.lists(LOGIN_GLOB, max_size=3), agents)
    _optional(draw, "labels", st.lists(TEXT.filter(bool), max_size=2), agents)
    _optional(draw, "agents", st.just(agents), out)
    _optional(draw, "govern_humans", st.booleans(), out)
    deny = st.lists(deny_rules(), max_size=3)
    _optional(draw, "scope", st.builds(lambda rules: {"deny": rules}, deny), out)
    if draw(st.booleans()):
        names = draw(st.lists(TIER_NAME, min_size=1, max_size=5, unique=True))
        out["tiers"] = [draw(tiers(name)) for name in names]
        out["default_tier"] = draw(st.sampled_from(names))
        out["unseen_content_tier"] = draw(st.sampled_from(names))
    else:
        names = [tier.name for tier in default_policy().policy.tiers]
        _optional(draw, "default_tier", st.sampled_from(names), out)
    _optional(draw, "fallback_owners", st.lists(OWNER, max_size=3), out)
    return out


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_generated_policies_pass_the_parser_and_the_schema(data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    assert yaml.safe_load(text) == data
    both_accept(text)
