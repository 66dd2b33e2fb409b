"""The hook applies the organisation's policy as the merge gate does.

The merge gate reads the organisation's policy from ``OWNER/.github``; the hook from the
file ``$GATE_ORG_POLICY_FILE`` names. For a table of repository policies (none, its own,
its own with ``extend: org``) and changes, the hook's verdict on an agent's write is
compared with ``gate check``'s decision on a branch committing the same change under the
same organisation policy. Then every way the organisation's policy cannot be had (missing
file, a file others may write, one that does not parse, ``extend: org`` with none
configured) denies, in every agent's protocol; and the resident daemon answers exactly
as the process itself, with a changed organisation file seen on the next call.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import gate.cli
from gate.agents.protocols import AGENTS
from gate.decide import Config, parse_policy
from gate.defaults import load_policy
from gate.localrepo import LocalFacts
from tests.agent_events import builders, native, reason
from tests.test_agent_hooks import make_repo
from tests.test_hook_daemon import _client, _env, _running
from tests.test_hook_parity import gate_check
from webhooks.commands.hook import evaluate
from webhooks.commands.hook_client import ask, environment

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ORG = """\
version: 1
scope:
  deny:
    - paths: ["secrets/**"]
      reason: the organisation keeps secrets out of every tree
tiers:
  - name: docs
    paths: ["docs/**"]
    require: {approvals: 0}
  - name: code
    require: {approvals: 1}
    agent_edit: ask
  - name: infra
    paths: ["infra/**"]
    require: {approvals: 2}
    agent_edit: deny
default_tier: code
unseen_content_tier: code
"""
REPO = """\
version: 1
tiers:
  - name: low
    paths: ["docs/**", "infra/**", "secrets/**"]
    require: {approvals: 0}
  - name: medium
    require: {approvals: 1}
default_tier: medium
unseen_content_tier: medium
"""
EXTENDS = REPO + "extend: org\n"
KINDS = {"none": None, "own": REPO, "extends": EXTENDS}
ROWS = [
    ("docs/guide.md", "# Guide\n"),
    ("app/service.py", "def handler(event):\n    return event\n"),
    ("infra/main.tf", 'resource "aws_s3_bucket" "b" {\n  bucket = "x"\n}\n'),
    ("secrets/notes.txt", "nothing secret\n"),
    ("app/settings.py", 'GITHUB_TOKEN = "ghp_' + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + '"\n'),
]
RANK = {"allow": 0, "ask": 1, "deny": 2}


@pytest.fixture(scope="module")
def org_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("managed")
    directory.chmod(0o755)
    path = directory / "merge-gate.yml"
    path.write_text(ORG)
    path.chmod(0o644)
    return path


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    found = {}
    for kind, text in KINDS.items():
        files = {"app/service.py": "def handler(event):\n    pass\n"}
        if text is not None:
            files[".github/merge-gate.yml"] = text
        found[kind] = make_repo(tmp_path_factory.mktemp(kind) / "repo", files)
    return found


def merge_gate(
    repo: Path,
    path: str,
    content: str,
    *,
    org: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[str, Any]:
    """``gate check`` on a branch committing the change, with ``org`` as the organisation's
    policy (read as the service reads ``OWNER/.github``)."""

    class OrgFacts(LocalFacts):
        async def config(self, *, base_sha: str) -> Config:
            config = await super().config(base_sha=base_sha)
            return dataclasses.replace(
                config, org=parse_policy(org.read_text(), blob="org", path=str(org))
            )

    monkeypatch.setattr(gate.cli, "LocalFacts", OrgFacts)
    return gate_check(repo, path, content, capsys)


def the_file(decision: dict[str, Any], path: str) -> dict[str, Any]:
    (found,) = [f for f in decision["files"] if f["path"] == path]
    return dict(found)


def hook_write(
    repo: Path,
    path: str,
    content: str,
    *,
    state: Path,
    org: Path | None,
    agent: str = "claude-code",
) -> Any:
    event = builders(agent, str(repo))["write"](path, content)
    env = {"GATE_DATA_DIR": str(state)}
    if org is not None:
        env["GATE_ORG_POLICY_FILE"] = str(org)
    verdict, fields = evaluate(agent, json.dumps(event).encode(), base_ref="main", env=env, now=NOW)
    return verdict, fields


def expected_under(policy_text: str, tier: str) -> str:
    return load_policy(policy_text).policy.tier(tier).agent_edit


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("path", "content"), ROWS, ids=[r[0] for r in ROWS])
def test_hook_agrees_with_the_merge_gate_under_the_organisation_policy(
    kind: str,
    path: str,
    content: str,
    repos: dict[str, Path],
    org_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = repos[kind]
    gated = merge_gate(repo, path, content, org=org_file, monkeypatch=monkeypatch, capsys=capsys)
    verdict, fields = hook_write(repo, path, content, state=tmp_path, org=org_file)
    file = the_file(gated, path)
    if file["denied"]:
        assert verdict.decision == "deny"
        assert verdict.rule == file["reasons"][0]["rule"]
        assert verdict.source == file["reasons"][0]["source"]
        return
    if kind == "own":  # the organisation's policy is not read at all
        assert verdict.decision == expected_under(REPO, file["tier"])
        assert verdict.tier == file["tier"]
        assert "org_policy" not in fields
        return
    assert fields["org_policy"].startswith(f"{org_file}@sha256:")
    if kind == "none":  # the organisation's policy stands in
        assert verdict.decision == expected_under(ORG, file["tier"])
        assert verdict.tier == file["tier"]
        assert verdict.source.startswith(str(org_file))
        return
    # extend: org: the repository's tier (the floored decision's file), and the tier
    # the merge gate gives the same change under the organisation's policy alone.
    alone = merge_gate(
        repos["none"], path, content, org=org_file, monkeypatch=monkeypatch, capsys=capsys
    )
    org_tier = the_file(alone, path)["tier"]
    ours, theirs = expected_under(REPO, file["tier"]), expected_under(ORG, org_tier)
    assert verdict.decision == max(ours, theirs, key=RANK.__getitem__)
    if RANK[theirs] > RANK[ours]:
        assert verdict.tier == org_tier
        assert verdict.rule.startswith("tiers.")
        assert verdict.source.startswith(f"{org_file}:")
        assert gated["outcome"] != "pass"
    else:
        assert verdict.tier == file["tier"]


def test_the_table_shows_the_floor_tightening(
    repos: dict[str, Path], org_file: Path, tmp_path: Path
) -> None:
    """The cases the table is for: what the repository allows, the organisation's floor
    denies (or asks), and without ``extend: org`` it is not applied."""
    infra = ("infra/main.tf", ROWS[2][1])
    own, _ = hook_write(repos["own"], *infra, state=tmp_path, org=org_file)
    floored, _ = hook_write(repos["extends"], *infra, state=tmp_path, org=org_file)
    assert (own.decision, floored.decision) == ("allow", "deny")
    assert floored.rule == "tiers.infra.agent_edit"
    assert floored.source == f"{org_file}:16"
    code = ("app/service.py", ROWS[1][1])
    asked, _ = hook_write(repos["extends"], *code, state=tmp_path, org=org_file)
    assert asked.decision == "ask"
    secret = ("secrets/notes.txt", ROWS[3][1])
    denied, _ = hook_write(repos["extends"], *secret, state=tmp_path, org=org_file)
    assert (denied.decision, denied.rule) == ("deny", "scope.deny")
    assert str(org_file) in denied.source


# --- failing closed ------------------------------------------------------------------------


def _broken(kind: str, tmp_path: Path) -> str | None:
    """``$GATE_ORG_POLICY_FILE`` for each way the organisation's policy cannot be had."""
    directory = tmp_path / "managed"
    directory.mkdir(mode=0o755, exist_ok=True)
    path = directory / "merge-gate.yml"
    if kind == "unset":
        return None
    if kind == "missing":
        return str(path)
    if kind == "fifo":
        os.mkfifo(path)
        return str(path)
    if kind == "directory":
        return str(directory)
    path.write_text(ORG)
    if kind == "world-writable":
        path.chmod(0o666)
    elif kind == "group-writable":
        path.chmod(0o664)
    elif kind == "open-directory":
        path.chmod(0o644)
        directory.chmod(0o777)
    elif kind == "invalid":
        path.write_text("version: 1\ntiers: nope\n")
        path.chmod(0o644)
    elif kind == "relative":
        return "managed/merge-gate.yml"
    return str(path)


WHY = {
    "unset": "set GATE_ORG_POLICY_FILE",
    "missing": "cannot be opened",
    "fifo": "not a regular file",
    "directory": "not a regular file",
    "world-writable": "writable by others",
    "group-writable": "writable by others",
    "open-directory": "directory others may write",
    "invalid": "does not parse",
    "relative": "not an absolute path",
}


@pytest.fixture
def extends_repo(repos: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(repos["extends"])  # Windsurf's events carry no cwd
    return repos["extends"]


@pytest.mark.parametrize("kind", list(WHY))
def test_every_failure_denies_every_claude_code_action(
    kind: str, extends_repo: Path, tmp_path: Path
) -> None:
    org = _broken(kind, tmp_path)
    make = builders("claude-code", str(extends_repo))
    events = [
        make["write"]("docs/guide.md", "# Guide\n"),
        make["edit"]("app/service.py", "pass", "return 1"),
        make["read"]("app/service.py"),
        make["shell"]("ls -la"),
    ]
    env = {"GATE_DATA_DIR": str(tmp_path / "state")}
    if org is not None:
        env["GATE_ORG_POLICY_FILE"] = org
    for event in events:
        verdict, fields = evaluate(
            "claude-code", json.dumps(event).encode(), base_ref="main", env=env, now=NOW
        )
        answer = AGENTS["claude-code"].answer(verdict)
        assert native("claude-code", answer) == "deny", event
        assert WHY[kind] in reason("claude-code", answer)
        assert fields["rule"] == "hook.org_policy"


@pytest.mark.parametrize("agent", sorted(AGENTS))
@pytest.mark.parametrize("kind", ["unset", "missing", "world-writable", "invalid"])
def test_every_agent_is_denied_when_the_organisation_policy_cannot_be_had(
    agent: str, kind: str, extends_repo: Path, tmp_path: Path
) -> None:
    org = _broken(kind, tmp_path)
    env = {"GATE_DATA_DIR": str(tmp_path / "state")}
    if org is not None:
        env["GATE_ORG_POLICY_FILE"] = org
    make = builders(agent, str(extends_repo))
    for event in (make["write"]("docs/guide.md", "# Guide\n"), make["shell"]("ls")):
        verdict, _ = evaluate(agent, json.dumps(event).encode(), base_ref="main", env=env, now=NOW)
        answer = AGENTS[agent].answer(verdict)
        assert native(agent, answer) == "deny"
        assert WHY[kind] in reason(agent, answer)


def test_a_broken_file_denies_where_the_organisation_policy_stands_in(
    repos: dict[str, Path], tmp_path: Path
) -> None:
    org = _broken("world-writable", tmp_path)
    assert org is not None
    verdict, _ = hook_write(repos["none"], "docs/a.md", "a\n", state=tmp_path, org=Path(org))
    assert (verdict.decision, verdict.rule) == ("deny", "hook.org_policy")
    # Without extend: org the repository's own policy decides, as the merge gate's does.
    verdict, _ = hook_write(repos["own"], "docs/a.md", "a\n", state=tmp_path, org=Path(org))
    assert verdict.decision == "allow"
    # No organisation policy configured and none in the repository: the built-in policy.
    verdict, _ = hook_write(repos["none"], "docs/a.md", "a\n", state=tmp_path, org=None)
    assert verdict.decision == "allow"
    assert verdict.rule != "hook.org_policy"


# --- the cache and the daemon ----------------------------------------------------------------


def test_the_cache_keys_the_organisation_policy_by_its_exact_bytes(
    repos: dict[str, Path], tmp_path: Path
) -> None:
    directory = tmp_path / "managed"
    directory.mkdir(mode=0o755)
    org = directory / "merge-gate.yml"
    org.write_text(ORG)
    org.chmod(0o644)
    state = tmp_path / "state"
    infra = ("infra/main.tf", ROWS[2][1])
    first, _ = hook_write(repos["extends"], *infra, state=state, org=org)
    assert first.decision == "deny"
    org.write_text(ORG.replace("agent_edit: deny", "agent_edit: allow"))
    second, _ = hook_write(repos["extends"], *infra, state=state, org=org)
    assert second.decision == "allow"
    # Same text at another path: its own entry, citing its own path.
    other = directory / "other.yml"
    other.write_text(org.read_text())
    other.chmod(0o644)
    third, _ = hook_write(repos["none"], "docs/a.md", "a\n", state=state, org=other)
    assert third.source.startswith(str(other))
    assert len(list((state / "policy-cache").glob("*.json"))) >= 3


def test_the_daemon_answers_as_the_process_with_an_organisation_policy(
    repos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "managed"
    directory.mkdir(mode=0o755)
    org = directory / "merge-gate.yml"
    org.write_text(ORG)
    org.chmod(0o644)
    repo = repos["extends"]
    monkeypatch.chdir(repo)
    state = tmp_path / "state"
    env = _env(state, GATE_ORG_POLICY_FILE=str(org))
    make = builders("claude-code", str(repo))
    events = {
        "infra": make["write"]("infra/main.tf", ROWS[2][1]),
        "code": make["write"]("app/service.py", ROWS[1][1]),
        "docs": make["write"]("docs/guide.md", "# Guide\n"),
        "read": make["read"]("app/service.py"),
    }
    with _running(state, env, tmp_path / "daemon.log"):
        for rules in (ORG, ORG.replace("agent_edit: deny", "agent_edit: allow")):
            org.write_text(rules)
            for name, event in events.items():
                raw = json.dumps(event).encode()
                answered = ask("claude-code", raw, env=env)
                assert answered is not None, name  # the daemon answered
                here = _client(
                    state, raw, repo, GATE_ORG_POLICY_FILE=str(org), GATE_HOOK_DAEMON="0"
                )
                assert answered == (here.returncode, here.stdout, here.stderr), name
            infra = ask("claude-code", json.dumps(events["infra"]).encode(), env=env)
            assert infra is not None
            said = json.loads(infra[1])["hookSpecificOutput"]["permissionDecision"]
            assert said == ("deny" if rules == ORG else "allow")  # never stale
    # A client naming another file is not served by this daemon: the file is part of
    # the environment the daemon compares on every call.
    other = _env(state, GATE_ORG_POLICY_FILE=str(directory / "absent.yml"))
    assert environment(other) != environment(env)
    assert b"GATE_ORG_POLICY_FILE=" in environment(env)
