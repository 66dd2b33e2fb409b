"""The built-in policy on the changes an agent could use to widen its own reach."""

from __future__ import annotations

import pytest

from gate.defaults import default_policy
from gate.detectors import builtin
from gate.detectors.infra import is_gitlink
from gate.model import FileStatus
from gate.result import Outcome
from tests.factories import QUIET, changed, decide, pull

POLICY = default_policy()
RULES = POLICY.policy
OLD_SHA = "1" * 40
NEW_SHA = "2" * 40


def tier_of(path: str, *, patch: str | None = "auto", detectors: object = None) -> str:
    decision = decide(POLICY, pull([changed(path, patch=patch)]), detectors=detectors)  # type: ignore[arg-type]
    return decision.files[0].tier


@pytest.mark.parametrize(
    "path",
    [
        "AGENTS.md",
        "services/api/AGENTS.md",
        "CLAUDE.md",
        "web/CLAUDE.md",
        "GEMINI.md",
        ".claude/settings.json",
        ".claude/commands/deploy.md",
        "tools/.claude/hooks/pre.sh",
        ".codex/config.toml",
        ".gemini/settings.json",
        ".cursor/rules/style.mdc",
        "app/.cursor/rules/x.mdc",
        ".cursorrules",
        ".windsurf/rules/a.md",
        ".clinerules",
        ".clinerules/base.md",
        ".github/hooks/pre-push.json",
        ".github/copilot-instructions.md",
        ".github/copilot/setup.yml",
        ".github/instructions/python.instructions.md",
        ".mcp.json",
        ".vscode/mcp.json",
        "docs/AGENTS.md",
        "tests/CLAUDE.md",
    ],
)
def test_agent_control_surfaces_need_code_owners_above_medium(path: str) -> None:
    tier = tier_of(path)
    assert tier == "agent-config"
    assert RULES.rank(tier) > RULES.rank("medium")
    assert RULES.tier(tier).require.from_ == "code_owners"


@pytest.mark.parametrize("path", ["docs/agents.md", "src/claude.py", "app/mcp.json", "README.md"])
def test_look_alikes_are_not_agent_control_surfaces(path: str) -> None:
    assert tier_of(path) != "agent-config"


@pytest.mark.parametrize(
    "path", [".github/actions/setup/action.yml", ".github/actions/build/run.sh"]
)
def test_repository_actions_are_denied_for_agents(path: str) -> None:
    decision = decide(POLICY, pull([changed(path)]))
    assert decision.outcome is Outcome.DENIED
    assert decision.files[0].denied


def gitlink(old: str | None, new: str | None) -> str:
    lines = [f"-Subproject commit {old}"] if old else []
    lines += [f"+Subproject commit {new}"] if new else []
    return f"@@ -{int(bool(old))} +{int(bool(new))} @@\n" + "\n".join(lines)


@pytest.mark.parametrize(
    ("patch", "status"),
    [
        (gitlink(OLD_SHA, NEW_SHA), FileStatus.MODIFIED),
        (gitlink(None, NEW_SHA), FileStatus.ADDED),
        (gitlink(OLD_SHA, None), FileStatus.REMOVED),
        (gitlink(OLD_SHA, "3" * 64), FileStatus.MODIFIED),  # SHA-256 repositories
    ],
)
def test_a_submodule_change_is_infra_with_a_reason(patch: str, status: FileStatus) -> None:
    file = changed("vendor/lib", patch=patch, status=status)
    decision = decide(POLICY, pull([file]), detectors=builtin())  # type: ignore[arg-type]
    result = decision.files[0]
    assert result.tier == "infra"
    assert any(
        r.rule == "tiers.infra.detectors" and "submodule" in r.detail for r in result.reasons
    )
    # Without content detection the same file would be plain application logic.
    assert decide(POLICY, pull([file]), detectors=QUIET).files[0].tier == "medium"


def test_gitmodules_is_infra() -> None:
    assert tier_of(".gitmodules", detectors=builtin()) == "infra"


@pytest.mark.parametrize(
    "patch",
    [
        "@@ -0,0 +1,2 @@\n+Subproject commit " + NEW_SHA + "\n+print('hi')",
        "@@ -0,0 +1 @@\n+Subproject commit main",
        "@@ -1 +1 @@\n-x\n+y",
        None,
    ],
)
def test_only_gitlink_lines_make_a_gitlink(patch: str | None) -> None:
    assert not is_gitlink(patch)
