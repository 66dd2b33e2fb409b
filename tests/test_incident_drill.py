"""The incident drill of docs/incident-drill.md, end to end against the fake GitHub.

An agent's pull request leaking a key is denied; another agent pull request is
approved and merged. Then, as the runbook says: trace by the key's fingerprint
(the raw key on stdin) finds the first; trace by agent finds both with their
approvers; ``gate audit verify`` passes; ``gate revert`` opens the revert of the
merged one with the operator's token, and refuses what it must. The machine time
of the whole drill is printed (goal: under a minute).
"""

from __future__ import annotations

import io
import json
import random
import string
import time

import pytest

from tests.fakegithub.models import PRFile
from tests.world import World, patch, sha
from webhooks.main import main

AGENT = "devin-ai-integration[bot]"


def gate(capsys: pytest.CaptureFixture[str], data_dir: str, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--data-dir", data_dir])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_incident_drill(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.perf_counter()
    data_dir = world.svc.env["GATE_DATA_DIR"]
    rng = random.Random(99)
    key = "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))

    # The incident: an agent leaks a key (denied); another agent change is merged.
    leak = f'@@ -1,1 +1,2 @@\n import os\n+AWS_ACCESS_KEY_ID = "{key}"'
    world.open(71, [PRFile("app/settings.py", patch=leak)], head=sha(7101))
    world.run(sha(7101), "failure")
    world.open(72, [PRFile("app/auth/session.py", patch=patch(3))], head=sha(7201))
    world.fake.add_review(world.repo, 72, user="sec1", commit_id=sha(7201))
    world.deliver("pull_request_review", "submitted", number=72, head_sha=sha(7201))
    world.run(sha(7201), "success")
    world.fake.merge(world.repo, 72, by="sec1", merge_commit_sha=sha(7299))
    world.deliver("pull_request", "closed", number=72, head_sha=sha(7201))
    world.settle()
    world.svc.call(lambda s: s.audit.checkpoint(s.clock()))  # the service's periodic checkpoint
    drill = time.perf_counter()

    # 1. Which pull requests carried the key? (the raw key on stdin, never stored)
    monkeypatch.setattr("sys.stdin", io.StringIO(key + "\n"))
    code, out, err = gate(capsys, data_dir, "trace", "--secret", "-", "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["pr"], r["conclusion"], r["verified"]) for r in rows] == [(71, "denied", True)]
    assert key not in out

    # 2. Everything the agent did, with who approved and when.
    code, out, err = gate(capsys, data_dir, "trace", "--agent", AGENT, "--format", "jsonl")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines() if json.loads(line)["repo"] == world.repo]
    assert {r["pr"] for r in rows} == {71, 72}
    merged = next(r for r in rows if r["kind"] == "merged")
    assert merged["pr"] == 72
    assert merged["merge_commit_sha"] == sha(7299)
    assert [a["user"] for a in merged["approvals"]] == ["sec1"]
    assert all(r["verified"] for r in rows)
    code, ticket, _ = gate(capsys, data_dir, "trace", "--agent", AGENT, "--format", "markdown")
    assert ticket.startswith("### Trace: agent devin-ai-integration\\[bot\\]")

    # 3. Was the record tampered with?
    code, out, err = gate(capsys, data_dir, "audit", "verify")
    assert code == 0, err
    assert out.startswith("ok: ")

    # 4. Revert, with the operator's token (not the App's).
    world.fake.set_permission(world.repo, "oncall-lead", "write")
    monkeypatch.setenv("GITHUB_TOKEN", world.fake.add_user_token("oncall-lead"))
    api = ["--api-url", world.fake.base_url, "--public-url", "https://gate.example"]
    code, out, err = gate(
        capsys, data_dir, "revert", f"{world.repo}#72", "--reason", "incident 7", *api
    )
    assert code == 0, err
    revert_url = out.strip()
    number = int(revert_url.rsplit("/", 1)[1])
    revert = world.fake.pull(world.repo, number)
    assert revert.draft is True
    assert revert.author == "oncall-lead"
    assert f"Reverts {world.repo}#72" in (revert.body or "")
    assert "https://gate.example/decisions/" in (revert.body or "")
    assert f"gate trace --pr {world.repo}#72" in (revert.body or "")
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\nincident drill: {elapsed:.2f} s of machine time "
            f"({time.perf_counter() - drill:.2f} s for the runbook's commands)"
        )
    assert elapsed < 60

    code, out, _ = gate(capsys, data_dir, "trace", "--pr", f"{world.repo}#72", "--format", "jsonl")
    reverts = [
        json.loads(line) for line in out.splitlines() if json.loads(line)["kind"] == "revert"
    ]
    assert len(reverts) == 1

    # Refused: a pull request that was never merged, and a token that cannot write.
    code, _, err = gate(capsys, data_dir, "revert", f"{world.repo}#71", *api)
    assert code == 1
    assert "is not merged" in err
    monkeypatch.setenv("GITHUB_TOKEN", world.fake.add_user_token("reader"))
    world.fake.set_permission(world.repo, "reader", "read")
    code, _, err = gate(capsys, data_dir, "revert", f"{world.repo}#72", *api)
    assert code == 1
    assert "cannot write" in err
    monkeypatch.delenv("GITHUB_TOKEN")
    code, _, err = gate(capsys, data_dir, "revert", f"{world.repo}#72", *api)
    assert code == 2
    assert "GITHUB_TOKEN" in err
