"""``gate trace`` end to end: decisions and merges written by a running service,
traced from its audit log, records and checkpoints, and tampering reported.

Real HTTP in (webhooks), the fake GitHub out; the trace runs as the ``gate`` CLI
over the service's own data dir, while the service runs.
"""

from __future__ import annotations

import io
import json
import random
import sqlite3
import string
import uuid
from pathlib import Path

import pytest

from gate.trace import fingerprint
from tests.fakegithub.models import PRFile
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env
from tests.world import World, patch, sha
from webhooks.main import main

AGENT = "devin-ai-integration[bot]"


def secret_key(seed: int) -> str:
    rng = random.Random(seed)
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))


def gate(
    svc: RunningService,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str = "",
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, str]:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = main([*args, "--data-dir", svc.env["GATE_DATA_DIR"]])
    out, err = capsys.readouterr()
    return code, out, err


def checkpoint(svc: RunningService) -> None:
    svc.call(lambda s: s.audit.checkpoint(s.clock()))


def merge(world: World, number: int, *, head: str, merge_sha: str, by: str = "sec1") -> None:
    world.fake.merge(world.repo, number, by=by, merge_commit_sha=merge_sha)
    response = world.deliver("pull_request", "closed", number=number, head_sha=head)
    assert response.status_code == 202
    world.settle()


def leak_and_merge(world: World, *, seed: int) -> tuple[str, int, int]:
    """An agent PR leaking a key (denied) and an approved, merged one; (key, denied, merged)."""
    key = secret_key(seed)
    leak = f'@@ -1,1 +1,2 @@\n import os\n+AWS_ACCESS_KEY_ID = "{key}"'
    denied, merged = seed * 10 + 1, seed * 10 + 2
    world.open(denied, [PRFile("app/config.py", patch=leak)], head=sha(denied))
    world.run(sha(denied), "failure")
    world.open(merged, [PRFile("app/auth/login.py", patch=patch())], head=sha(merged))
    world.run(sha(merged), "action_required")
    world.fake.add_review(world.repo, merged, user="sec1", commit_id=sha(merged))
    world.deliver("pull_request_review", "submitted", number=merged, head_sha=sha(merged))
    world.run(sha(merged), "success")
    merge(world, merged, head=sha(merged), merge_sha=sha(merged + 5000))
    return key, denied, merged


def test_trace_by_fingerprint_agent_and_approver_with_verified_records(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key, denied, merged = leak_and_merge(world, seed=7)
    checkpoint(world.svc)
    redacted = f"{key[:4]}…{fingerprint(key)}"

    code, out, err = gate(world.svc, capsys, "trace", "--secret", redacted, "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(r["kind"], r["pr"]) for r in rows} == {("evaluation", denied)}
    assert rows[0]["conclusion"] == "denied"
    assert rows[0]["agent"] == AGENT
    assert rows[0]["record"] == rows[0]["inclusion"] == rows[0]["chain"] == "verified"
    assert key not in out

    # The raw secret on stdin finds the same rows and is never printed.
    code, out2, _ = gate(
        world.svc, capsys, "trace", "--secret", "-", "--format", "jsonl",
        stdin=key + "\n", monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    assert out2 == out
    assert key not in out2

    code, out, err = gate(
        world.svc, capsys, "trace", "--agent", AGENT, "--pr", f"{world.repo}#{merged}",
        "--format", "jsonl",
    )  # fmt: skip
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    kinds = [r["kind"] for r in rows]
    assert kinds[-1] == "merged"
    assert "evaluation" in kinds
    merged_row = rows[-1]
    assert merged_row["merge_commit_sha"] == sha(merged + 5000)
    assert [a["user"] for a in merged_row["approvals"]] == ["sec1"]
    assert merged_row["approvals"][0]["at"]  # when the approval was given
    assert all(r["verified"] for r in rows)

    code, out, _ = gate(world.svc, capsys, "trace", "--approver", "sec1", "--format", "jsonl")
    assert {json.loads(line)["pr"] for line in out.splitlines()} >= {merged}
    assert denied not in {json.loads(line)["pr"] for line in out.splitlines()}

    code, out, _ = gate(world.svc, capsys, "trace", "--path", "app/auth/**", "--format", "markdown")
    assert code == 0
    assert out.startswith("### Trace: path app/auth/\\*\\*")
    assert f"\\#{merged}" in out
    assert f"\\#{denied}" not in out


def test_a_tampered_entry_is_reported_failing_not_shown_as_fine(
    fake_github_server: FakeGitHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = settings_env(fake_github_server, tmp_path)
    with running(env) as svc:
        world = World(fake_github_server, svc)
        _, denied, merged = leak_and_merge(world, seed=8)
        checkpoint(svc)
        # Someone with database access rewrites the merged PR's evaluation to read
        # "allowed by nobody": the chain, the checkpoint and the record disagree.
        con = sqlite3.connect(tmp_path / "audit.sqlite3")
        seq, raw = con.execute(
            "SELECT seq, entry FROM audit_entries WHERE kind = 'evaluation' AND pr = ? "
            "ORDER BY seq DESC LIMIT 1",
            (merged,),
        ).fetchone()
        entry = json.loads(raw)
        entry["approvers"], entry["approvals"] = ["nobody"], [{"user": "nobody", "at": ""}]
        forged = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
        con.execute("UPDATE audit_entries SET entry = ? WHERE seq = ?", (forged, seq))
        con.commit()
        con.close()

        code, out, err = gate(svc, capsys, "trace", "--approver", "nobody", "--format", "jsonl")
        assert code == 1
        rows = [json.loads(line) for line in out.splitlines()]
        # The forged evaluation, and the merge joined to it: both fail, neither is shown fine.
        assert [(r["kind"], r["chain"]) for r in rows] == [
            ("evaluation", "FAILED"),
            ("merged", "FAILED"),
        ]
        assert rows[0]["inclusion"] == "FAILED"
        assert rows[0]["verified"] is False
        assert "this entry was altered" in rows[0]["problems"]
        assert "FAIL verification" in err

        code, out, _ = gate(svc, capsys, "trace", "--pr", f"{world.repo}#{denied}")
        assert code == 1  # the chain is broken: the whole trace says so
        assert "chain BROKEN" in out


def test_trace_reads_a_redis_deployment_with_the_services_settings(
    fake_github_server: FakeGitHub,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import redis

    prefix = f"mg-trace-{uuid.uuid4().hex[:8]}"
    url = "redis://127.0.0.1:6379/0"
    env = settings_env(fake_github_server, tmp_path, GATE_REDIS_URL=url, GATE_REDIS_PREFIX=prefix)
    try:
        with running(env) as svc:
            world = World(fake_github_server, svc)
            _, denied, merged = leak_and_merge(world, seed=9)
            checkpoint(svc)
            # The operator's shell has the service's settings: trace needs no flags for them.
            monkeypatch.setenv("GATE_REDIS_URL", url)
            monkeypatch.setenv("GATE_REDIS_PREFIX", prefix)
            code, out, err = gate(svc, capsys, "trace", "--agent", AGENT, "--format", "jsonl")
            assert code == 0, err
            rows = [json.loads(line) for line in out.splitlines()]
            assert {r["pr"] for r in rows} == {denied, merged}
            assert all(r["verified"] for r in rows)
            assert {r["kind"] for r in rows} >= {"evaluation", "merged", "review_requested"}
    finally:
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(f"*{prefix}*"))
        if keys:
            client.delete(*keys)


def test_trace_shows_the_agents_own_hook_events(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from webhooks import agent_tokens

    token, _ = world.svc.call(
        lambda s: agent_tokens.issue(s.store, agent=AGENT, now=datetime.now(UTC))
    )
    event = {
        "decision": "deny",
        "session": "s-hook-1",
        "tool": "Write",
        "repo": world.repo,
        "paths": [".github/workflows/release.yml"],
        "reason": "CI workflows are outside an agent's scope",
    }
    answer = world.svc.http.post(
        f"{world.svc.url}/api/agent-events",
        json={"events": [event]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    checkpoint(world.svc)
    code, out, err = gate(world.svc, capsys, "trace", "--session", "s-hook-1", "--format", "jsonl")
    assert code == 0, err
    [row] = [json.loads(line) for line in out.splitlines()]
    assert (row["kind"], row["conclusion"], row["agent"]) == ("agent_action", "deny", AGENT)
    assert row["verified"] is True
    code, out, _ = gate(
        world.svc, capsys, "trace", "--path", ".github/workflows/**", "--format", "jsonl"
    )
    assert "s-hook-1" in out
