"""gate.trace, pure: what a trace matches and how each row verifies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate import trace
from gate.auditlog import GENESIS_PREV, entry_hash, make_entry
from gate.checkpoint import Checkpoint, sign_checkpoint
from gate.merkle import leaf_hash, root_hash

KEY = Ed25519PrivateKey.generate()
KEYS = {"k": KEY.public_key()}
WHEN = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def log(*fields: tuple[str, dict[str, object]]) -> list[bytes]:
    entries: list[bytes] = []
    prev = GENESIS_PREV
    for seq, (kind, values) in enumerate(fields):
        entry = make_entry(seq=seq, time=WHEN, kind=kind, prev=prev, fields=values)
        entries.append(entry)
        prev = entry_hash(entry)
    return entries


def checkpoint(entries: list[bytes], *, key: Ed25519PrivateKey = KEY) -> Checkpoint:
    head = Checkpoint("merge-gate/test", len(entries), root_hash(leaf_hash(e) for e in entries))
    return sign_checkpoint(head, private_key=key)


EVALUATION = {
    "repo": "acme/app",
    "pr": 7,
    "head_sha": "a" * 40,
    "author": "devin-ai-integration[bot]",
    "agent": True,
    "conclusion": "needs_approval",
    "files": [{"path": "package.json", "tier": "dependencies"}],
    "approvers": [],
    "findings": [
        {
            "path": "package.json",
            "detector": "dependencies",
            "rule": "new-package",
            "message": "new npm package left-pad@^1.3.0",
        }
    ],
}
#: An agent-side hook event, as the service logs forwarded ``gate hook`` decisions.
HOOK = {
    "agent": True,
    "author": "devin-ai-integration[bot]",
    "decision": "deny",
    "session": "s-42",
    "repo": "acme/app",
    "paths": [".github/workflows/ci.yml"],
}


def rows(
    query: trace.TraceQuery, entries: list[bytes], cps: list[Checkpoint]
) -> list[trace.TraceRow]:
    found, _ = trace.scan(entries, query, checkpoints=cps, keys=KEYS).rows({})
    return found


def test_package_session_and_path_reach_decisions_and_hook_events() -> None:
    entries = log(("evaluation", EVALUATION), ("agent_action", HOOK))
    cps = [checkpoint(entries)]
    assert [r.seq for r in rows(trace.TraceQuery.of(package="left-pad"), entries, cps)] == [0]
    assert rows(trace.TraceQuery.of(package="left"), entries, cps) == []
    assert [r.seq for r in rows(trace.TraceQuery.of(session="s-42"), entries, cps)] == [1]
    workflows = trace.TraceQuery.of(path=".github/workflows/**")
    assert [r.seq for r in rows(workflows, entries, cps)] == [1]
    agent = trace.TraceQuery.of(agent="DEVIN-AI-INTEGRATION[bot]")
    found = rows(agent, entries, cps)
    assert [(r.seq, r.verified) for r in found] == [(0, True), (1, True)]
    assert trace.conclusion(found[1].entry) == "deny"


def test_an_uncheckpointed_entry_is_unverified_and_a_forged_checkpoint_counts_for_nothing() -> None:
    entries = log(("evaluation", EVALUATION), ("agent_action", HOOK))
    forged = checkpoint(entries, key=Ed25519PrivateKey.generate())
    found, summary = trace.scan(
        entries, trace.TraceQuery.of(), checkpoints=[checkpoint(entries[:1]), forged], keys=KEYS
    ).rows({})
    assert [(r.inclusion, r.verified, r.failed) for r in found] == [
        (trace.Check.VERIFIED, True, False),
        (trace.Check.UNAVAILABLE, False, False),
    ]
    assert "1 checkpoint(s) REJECTED" in summary


def test_a_record_that_is_not_the_one_the_log_names_fails() -> None:
    entries = log(("evaluation", {**EVALUATION, "record_digest": "sha256:" + "0" * 64}))
    scan = trace.scan(entries, trace.TraceQuery.of(), checkpoints=[checkpoint(entries)], keys=KEYS)
    [row], _ = scan.rows(
        {"sha256:" + "0" * 64: {"payload": "", "payloadType": "x", "signatures": []}}
    )
    assert row.record is trace.Check.FAILED
    assert row.failed


def test_fingerprints() -> None:
    assert trace.parse_fingerprint("AKIA…sha256:0123456789AB") == "sha256:0123456789ab"
    assert trace.fingerprint("hunter2") == trace.parse_fingerprint(
        "hunt…" + trace.fingerprint("hunter2")
    )
    with pytest.raises(ValueError, match="fingerprint"):
        trace.parse_fingerprint("AKIA1234")
