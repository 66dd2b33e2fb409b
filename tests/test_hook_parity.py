"""The hook says at write time what the merge gate will say at merge time.

For a table of paths and contents, the same change is judged twice under the same
(built-in) policy: by ``gate check`` on a branch that commits it, and by the hook on
an agent's Write of it. The hook's tier is the merge gate's tier, it denies exactly
what the merge gate denies (same rule), and otherwise answers the tier's
``agent_edit``. The classifier also gives identical results on a parsed policy and on
the hook's cached view of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gate import classify
from gate.agents.decision import Change, changed_file
from gate.agents.view import from_json, to_json, view_of
from gate.cli import main as gate_main
from gate.codeowners import CodeOwners
from gate.defaults import default_policy, load_policy
from gate.detectors import builtin
from tests.agent_events import builders
from tests.test_agent_hooks import git, make_repo
from webhooks.commands.hook import evaluate

PACKAGE = '{\n  "name": "app",\n  "dependencies": {\n    "express": "^4.19.0"\n  }\n}\n'
ROWS = [
    ("docs/guide.md", "# Guide\n\nHow to run it.\n"),
    ("app/service.py", "def handler(event):\n    return event\n"),
    ("app/auth/session.py", "TIMEOUT = 30\n"),
    ("db/migrations/0003_drop.sql", "DROP TABLE sessions;\n"),
    ("prisma/schema.prisma", "model User {\n  id Int @id\n}\n"),
    (".github/workflows/ci.yml", "on: push\njobs: {}\n"),
    ("Dockerfile", "FROM python:3.12-slim\nRUN pip install app\n"),
    ("infra/main.tf", 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n'),
    ("package.json", PACKAGE.replace('"^4.19.0"', '"^4.19.0",\n    "left-pad": "1.3.0"')),
    ("app/settings.py", 'GITHUB_TOKEN = "ghp_' + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + '"\n'),
    (".github/merge-gate.yml", "version: 1\n"),
    ("CODEOWNERS", "* @acme/everyone\n"),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(
        tmp_path_factory.mktemp("parity") / "repo",
        {"package.json": PACKAGE, "app/service.py": "def handler(event):\n    pass\n"},
    )


def merge_gate(repo: Path, path: str, content: str, capsys: pytest.CaptureFixture[str]) -> dict:
    """The merge gate's verdict on the one changed file."""
    decision = gate_check(repo, path, content, capsys)
    (found,) = [f for f in decision["files"] if f["path"] == path]
    return dict(found)


def gate_check(
    repo: Path, path: str, content: str, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """``gate check`` of a branch of ``repo`` committing ``content`` to ``path``, as JSON."""
    branch = f"agent/{abs(hash(path))}"
    git(repo, "checkout", "-q", "-B", branch, "main")
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    git(repo, "checkout", "-q", "main")
    capsys.readouterr()
    gate_main(
        [
            "check",
            "--repo",
            str(repo),
            "--base",
            "main",
            "--head",
            branch,
            "--author",
            "coder[bot]",
            "--format",
            "json",
        ]
    )
    return dict(json.loads(capsys.readouterr().out))


@pytest.mark.parametrize(("path", "content"), ROWS, ids=[r[0] for r in ROWS])
def test_hook_agrees_with_the_merge_gate(
    path: str, content: str, repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gated = merge_gate(repo, path, content, capsys)
    event = builders("claude-code", str(repo))["write"](path, content)
    verdict, _ = evaluate(
        "claude-code",
        json.dumps(event).encode(),
        base_ref="main",
        env={"GATE_DATA_DIR": str(tmp_path)},
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    policy = default_policy().policy
    if verdict.rule == "hook.control_surfaces":
        pytest.fail(f"{path} is not a control surface")
    assert verdict.tier == gated["tier"]
    if gated["denied"]:
        assert verdict.decision == "deny"
        assert verdict.rule == gated["reasons"][0]["rule"]
    else:
        assert verdict.decision == policy.tier(gated["tier"]).agent_edit
        assert verdict.rule == f"tiers.{gated['tier']}.agent_edit"


def test_the_table_covers_allow_ask_and_deny(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = default_policy().policy
    seen = set()
    for path, content in ROWS:
        gated = merge_gate(repo, path, content, capsys)
        seen.add("deny" if gated["denied"] else policy.tier(gated["tier"]).agent_edit)
    assert seen == {"allow", "ask", "deny"}


CUSTOM = """\
version: 1
scope:
  deny:
    - paths: ["secrets/**"]
      reason: no secrets in the tree
  deny_read: ["*.key"]
tiers:
  - name: low
    paths: ["docs/**"]
    exclude: ["docs/internal/**"]
    require: {approvals: 0}
  - name: medium
    require: {approvals: 1}
  - name: deps
    detectors: ["dependencies:new-package"]
    require: {approvals: 1}
    agent_edit: ask
default_tier: medium
unseen_content_tier: medium
"""


@pytest.mark.parametrize("text", [None, CUSTOM], ids=["builtin", "custom"])
def test_the_cached_view_classifies_exactly_like_the_policy(text: str | None) -> None:
    loaded = load_policy(text, blob="abc123")
    view = from_json(json.loads(json.dumps(to_json(view_of(loaded)))))
    detectors = builtin()
    changes = [Change(path=p, before=None, after=c) for p, c in ROWS] + [
        Change(path="docs/internal/x.md", before=None, after="x\n"),
        Change(path="secrets/a.txt", before="a\n", after=None),
        Change(path="package.json", before=PACKAGE, after=None, added="left-pad"),
        Change(path="b.py", before="x\n", after="y\n", previous_path="a.py"),
    ]
    for change in changes:
        file, contents = changed_file(change)
        args = {
            "codeowners": CodeOwners.empty(),
            "files": [file],
            "contents": contents,
            "detectors": detectors,
            "agent": True,
        }
        expected = classify.classify_files(policy=loaded, **args)
        assert classify.classify_files(policy=view, **args) == expected  # type: ignore[arg-type]
