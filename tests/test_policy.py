"""The policy file: strict validation with positions, defaults, schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gate.defaults import DEFAULT_POLICY, default_policy, load_policy
from gate.policy import InvalidPolicy, Policy, json_schema

ROOT = Path(__file__).resolve().parent.parent


def errors_of(text: str) -> list[str]:
    with pytest.raises(InvalidPolicy) as caught:
        load_policy(text)
    return [e.format("p.yml") for e in caught.value.errors]


def test_every_error_is_reported_with_line_and_column() -> None:
    text = (
        "version: 1\n"
        "tiers:\n"
        "  - name: low\n"
        '    paths: ["ok/**", "docs/["]\n'
        "    require: {approvals: x}\n"
        "    bogus: 1\n"
        "agents:\n"
        "  bots: true\n"
        "  bots: false\n"
    )
    assert errors_of(text) == [
        "p.yml:2:1: default_tier: 'medium' is not a tier (the built-in value); set default_tier",
        "p.yml:2:1: unseen_content_tier: 'medium' is not a tier (the built-in value); "
        "set unseen_content_tier",
        "p.yml:4:22: tiers.0.paths.1: bad glob 'docs/[': "
        "unterminated character class '[' at column 1",
        "p.yml:5:26: tiers.0.require.approvals: Input should be a valid integer",
        "p.yml:6:5: unknown key 'bogus' in tiers.0",
        "p.yml:9:3: duplicate key 'bots'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 2\n", "version"),
        ("version: 1\ngovern_humans: 'yes'\n", "govern_humans: Input should be a valid boolean"),
        ("version: 1\nunknown: 1\n", "unknown key 'unknown'"),
        ("version: 1\ndefault_tier: nope\n", "default_tier: 'nope' is not a tier"),
        ("version: 1\nfallback_owners: [alice]\n", "fallback_owners.0"),
        (
            "version: 1\ntiers: [{name: a, require: {approvals: 1}, detectors: [ai]}]\n"
            "default_tier: a\nunseen_content_tier: a\n",
            "unknown detector 'ai'",
        ),
        ("version: 1\ntiers: [{name: a, paths: ['!x'], require: {approvals: 0}}]\n", "negation"),
        (
            "version: 1\ntiers: [{name: a, paths: ['a**b'], require: {approvals: 0}}]\n",
            "whole path segment",
        ),
        ("[1, 2]\n", "must be a YAML mapping"),
        ("version: [\n", "not valid YAML"),
        ("tiers: []\n", "version: required key is missing"),
    ],
)
def test_invalid_policies_are_explained(text: str, expected: str) -> None:
    found = errors_of(text)
    assert any(expected in e for e in found), found
    assert all(re.match(r"^p\.yml:\d+:\d+: ", e) for e in found)


def test_missing_sections_take_the_defaults() -> None:
    loaded = load_policy("version: 1\nfallback_owners: ['@acme/sec']\n")
    assert loaded.policy.tiers == default_policy().policy.tiers
    assert loaded.policy.fallback_owners == ("@acme/sec",)


def test_no_file_means_the_builtin_policy() -> None:
    assert load_policy(None).policy == default_policy().policy
    assert load_policy(None).path.startswith("(built-in")


def test_reasons_can_cite_lines() -> None:
    loaded = load_policy("version: 1\nfallback_owners:\n  - '@acme/sec'\n", path="x.yml")
    assert loaded.cite("fallback_owners", 0) == "x.yml:3"


def test_digest_is_stable_and_changes_with_content() -> None:
    a = load_policy("version: 1\n")
    b = load_policy("# comment only changes\nversion: 1\n")
    c = load_policy("version: 1\ngovern_humans: true\n")
    assert a.digest == b.digest != c.digest


def test_shipped_json_schema_is_current() -> None:
    shipped = json.loads((ROOT / "gate/policy.schema.json").read_text())
    assert shipped == json.loads(json.dumps(json_schema()))


def test_readme_example_policy_is_valid() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- policy-example -->\n```yaml\n(.*?)```", readme, re.S)
    assert block, "README lost its policy example"
    loaded = load_policy(block.group(1))
    assert [t.name for t in loaded.policy.tiers][:2] == ["low", "medium"]


def test_default_policy_text_parses_strictly() -> None:
    assert load_policy(DEFAULT_POLICY).policy == default_policy().policy


def test_all_errors_at_once_each_at_its_own_line() -> None:
    # Field errors, validator errors on nested items and cross-references in one run;
    # before, the tier references were only checked once everything else was valid,
    # and then reported one per run at 1:1.
    text = (
        "version: 1\n"
        "tiers:\n"
        "  - name: a\n"
        '    paths: ["docs/["]\n'
        "    require: {approvals: 0, from: code_owners}\n"
        "  - name: a\n"
        "    require: {approvals: 1, from: []}\n"
        "scope:\n"
        "  deny:\n"
        "    - reason: nothing\n"
        "    - detectors: [secret]\n"
        "      reason: typo\n"
        "default_tier: nope\n"
        "unseen_content_tier: a\n"
    )
    assert errors_of(text) == [
        "p.yml:4:13: tiers.0.paths.0: bad glob 'docs/[': "
        "unterminated character class '[' at column 1",
        "p.yml:5:26: tiers.0.require: 'from' needs at least one approval",
        "p.yml:6:11: tiers.1.name: tier name 'a' is used twice",
        "p.yml:7:35: tiers.1.require: 'from' lists nobody",
        "p.yml:10:7: scope.deny.0: a deny rule needs paths or detectors",
        "p.yml:11:19: scope.deny.1.detectors.0: unknown detector 'secret'; "
        "known: secrets, dependencies, migrations, infra, auth, tests",
        "p.yml:13:15: default_tier: 'nope' is not a tier",
    ]


def test_an_unknown_detector_in_a_deny_rule_is_an_error() -> None:
    # A misspelt detector would otherwise deny nothing, silently.
    found = errors_of("version: 1\nscope:\n  deny:\n    - {detectors: [secret], reason: x}\n")
    assert found == [
        "p.yml:4:20: scope.deny.0.detectors.0: unknown detector 'secret'; "
        "known: secrets, dependencies, migrations, infra, auth, tests"
    ]


def test_a_key_spelt_like_a_type_name_is_located() -> None:
    found = errors_of("version: 1\nagents:\n  str: 1\n")
    assert found == ["p.yml:3:3: unknown key 'str' in agents"]


def test_policies_built_in_code_are_checked_too() -> None:
    data = default_policy().policy.model_dump(by_alias=True)
    index = len(data["tiers"])
    data["tiers"] = (*data["tiers"], data["tiers"][0])
    data["default_tier"] = "nope"
    with pytest.raises(
        ValueError,
        match=rf"tiers\.{index}\.name: tier name 'low' is used twice; "
        r"default_tier: 'nope' is not a tier",
    ):
        Policy.model_validate(data)


def test_gate_policy_validate_prints_every_error_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gate.cli import main

    bad = tmp_path / "merge-gate.yml"
    bad.write_text(
        "version: 1\n"
        "scope:\n"
        "  deny:\n"
        "    - {detectors: [secret], reason: typo}\n"
        "tiers:\n"
        "  - name: a\n"
        "    paths: ['x/[']\n"
        "    require: {approvals: 0}\n"
        "default_tier: b\n"
        "unseen_content_tier: a\n"
    )
    assert main(["policy", "validate", str(bad)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(": ", 1)[0].rsplit(":", 2)[1:] for line in lines] == [
        ["4", "20"],
        ["7", "13"],
        ["9", "15"],
    ]
