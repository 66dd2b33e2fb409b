"""A file GitHub lists without a patch (binary, or a diff too large to show).

Every content detector reads its whole head text instead; when that text is
not there either, the file takes the highest tier its path could need.
"""

from __future__ import annotations

import pytest

from gate.codeowners import CodeOwners
from gate.defaults import default_policy, load_policy
from gate.detectors import builtin
from gate.engine import needs
from gate.model import ChangedFile, Contents, FileStatus
from gate.result import Outcome
from tests.factories import decide, pull

POLICY = default_policy()


def hidden(path: str, status: FileStatus = FileStatus.MODIFIED) -> ChangedFile:
    """What GitHub lists for a file whose diff it does not show: no patch."""
    return ChangedFile(path=path, status=status, patch=None, additions=5000, deletions=10)


@pytest.mark.parametrize(
    ("path", "head", "tier", "rule"),
    [
        ("scripts/cleanup.py", 'db.execute("DROP TABLE users")\n', "migrations", "migrations"),
        ("deploy/app.yaml", "apiVersion: v1\nkind: Secret\n", "infra", "infra"),
        ("requirements.txt", "requests==2.32.0\nevil-pkg==1.0\n", "dependencies", "dependencies"),
    ],
)
def test_every_content_detector_reads_the_head_text(
    path: str, head: str, tier: str, rule: str
) -> None:
    file = hidden(path)
    detectors = builtin()
    wanted = needs(
        policy=POLICY, codeowners=CodeOwners.empty(), pull=pull([file]), detectors=detectors
    )
    assert ("head", path) in wanted.contents
    texts: dict[tuple[str, str], str | None] = {("head", path): head}
    if path == "requirements.txt":
        texts["base", path] = "requests==2.32.0\n"
    decision = decide(
        POLICY,
        pull([file]),
        detectors=detectors,  # type: ignore[arg-type]
        contents=Contents(texts=texts),
    )
    result = decision.files[0]
    assert result.tier == tier
    assert any(f.detector == rule for f in result.findings)
    assert not any(r.rule == "unseen_content_tier" for r in result.reasons)


def test_a_secret_in_a_hidden_file_denies() -> None:
    file = hidden("assets/data.bin")
    text = "x = 1\naws = AKIAQYLPMN5HHHFPZAM2\n"
    decision = decide(
        POLICY,
        pull([file]),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=Contents(texts={("head", file.path): text}),
    )
    assert decision.outcome is Outcome.DENIED


POLICY_WITH_EXCLUDE = load_policy(
    """\
version: 1
tiers:
  - name: low
    paths: ["*.md", "docs/**"]
    require: {approvals: 0}
  - name: medium
    require: {approvals: 1}
  - name: high
    paths: ["**/auth/**"]
    exclude: ["**/auth/README.md"]
    require: {approvals: 1, from: code_owners}
default_tier: medium
unseen_content_tier: medium
"""
)


@pytest.mark.parametrize(
    ("contents", "why"),
    [
        (Contents(), "not inspected"),
        (
            Contents(texts={("head", "app/auth/README.md"): None}),
            "not inspected",
        ),
        (
            Contents(
                texts={("head", "app/auth/README.md"): None},
                too_large=frozenset({("head", "app/auth/README.md")}),
            ),
            "too large",
        ),
    ],
)
def test_unreadable_content_takes_the_highest_tier_its_path_could_need(
    contents: Contents, why: str
) -> None:
    # Excluded from 'high' as a README, but nobody saw what it holds.
    decision = decide(
        POLICY_WITH_EXCLUDE,
        pull([hidden("app/auth/README.md")]),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=contents,
    )
    result = decision.files[0]
    assert result.tier == "high"
    reason = next(r for r in result.reasons if r.rule == "unseen_content_tier")
    assert why in reason.detail
    assert "'high'" in reason.detail


def test_unreadable_content_is_at_least_the_unseen_content_tier() -> None:
    decision = decide(POLICY, pull([hidden("docs/diagram.png")]), contents=Contents())
    result = decision.files[0]
    assert result.tier == POLICY.policy.unseen_content_tier
    assert any(r.rule == "unseen_content_tier" for r in result.reasons)


def test_a_readable_hidden_file_keeps_its_path_tier() -> None:
    file = hidden("docs/diagram.png")
    decision = decide(
        POLICY,
        pull([file]),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=Contents(texts={("head", file.path): "\x89PNG\x00\x00 picture"}),
    )
    assert decision.files[0].tier == "low"
