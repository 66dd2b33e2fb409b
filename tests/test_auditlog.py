"""Audit log entries, checkpoints and log verification (gate.auditlog, gate.checkpoint)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gate.auditlog import (
    ANY_AGENT,
    GENESIS_PREV,
    entry_hash,
    format_time,
    make_entry,
    parse_time,
    query_for,
    run_query,
    verify_log,
)
from gate.checkpoint import (
    Checkpoint,
    InvalidCheckpoint,
    key_id,
    open_note,
    parse_checkpoint,
    parse_checkpoints,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
    verify_checkpoint,
)
from gate.jwk import key_id as kid_of
from gate.merkle import EMPTY_ROOT, MerkleTree, leaf_hash

ORIGIN = "merge-gate/app-123"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

# golang.org/x/mod/sumdb/note documentation example (Ed25519 signed note, type 0x01).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def keys(key: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {kid_of(key.public_key()): key.public_key()}


def build_log(n: int) -> list[bytes]:
    entries, prev = [], GENESIS_PREV
    for seq in range(n):
        entry = make_entry(
            seq=seq,
            time=T0 + timedelta(minutes=seq),
            kind="evaluation",
            prev=prev,
            fields={"repo": "acme/widgets", "pr": seq % 5 + 1, "conclusion": "allowed"},
        )
        entries.append(entry)
        prev = entry_hash(entry)
    return entries


def checkpoint_of(entries: list[bytes], size: int, key: Ed25519PrivateKey) -> Checkpoint:
    root = MerkleTree(leaf_hash(e) for e in entries[:size]).root()
    cp = Checkpoint(ORIGIN, size, root, (f"time {format_time(T0)}",))
    return sign_checkpoint(cp, private_key=key)


def rewrite_chain(entries: list[bytes], start: int) -> list[bytes]:
    """What an attacker with database access does: recompute every later prev."""
    out = list(entries[:start])
    prev = entry_hash(out[-1]) if out else GENESIS_PREV
    for raw in entries[start:]:
        obj = json.loads(raw)
        fields = {k: v for k, v in obj.items() if k not in ("seq", "time", "kind", "prev")}
        entry = make_entry(
            seq=obj["seq"], time=obj["time"], kind=obj["kind"], prev=prev, fields=fields
        )
        out.append(entry)
        prev = entry_hash(entry)
    return out


# --- entries ---------------------------------------------------------------------------


def test_entry_is_canonical_json_with_chain_fields() -> None:
    entry = make_entry(
        seq=0,
        time=T0,
        kind="merged",
        prev=GENESIS_PREV,
        fields={"pr": 7, "repo": "a/b", "merged": True},
    )
    assert entry == (
        b'{"kind":"merged","merged":true,"pr":7,"prev":"' + GENESIS_PREV.encode() + b'",'
        b'"repo":"a/b","seq":0,"time":"2025-06-01T12:00:00Z"}'
    )
    assert entry_hash(entry) == hashlib.sha256(entry).hexdigest()
    for kind in ("evaluation", "merged", "closed", "key_rotated", "dead_letter", "error"):
        make_entry(seq=1, time=T0, kind=kind, prev=entry_hash(entry), fields={})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq": -1},
        {"seq": True},
        {"kind": "bogus"},
        {"prev": "0" * 63},
        {"seq": 1, "prev": GENESIS_PREV},  # only entry 0 may point at nothing
        {"time": "2025-06-01 12:00:00"},
        {"time": datetime(2025, 6, 1)},  # naive
        {"fields": {"seq": 3}},
    ],
)
def test_make_entry_validates(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "seq": 0,
        "time": T0,
        "kind": "error",
        "prev": GENESIS_PREV,
        "fields": {},
    }
    args.update(kwargs)
    with pytest.raises(ValueError):  # noqa: PT011
        make_entry(**args)  # type: ignore[arg-type]


def test_time_format_roundtrip() -> None:
    moment = datetime(2025, 6, 1, 14, 0, 5, 999, tzinfo=UTC).astimezone()
    assert format_time(moment) == "2025-06-01T14:00:05Z"
    assert parse_time("2025-06-01T14:00:05Z") == moment.replace(microsecond=0)


# --- verify_log ------------------------------------------------------------------------


def test_an_intact_log_verifies(key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]) -> None:
    entries = build_log(30)
    cps = [checkpoint_of(entries, size, key) for size in (0, 10, 20, 30)]
    report = verify_log(entries, cps, keys, origin=ORIGIN)
    assert report.ok
    assert report.first_bad_seq is None
    assert report.reason is None
    assert report.size == 30
    assert report.checkpoints_verified == 4
    assert report.root == MerkleTree(leaf_hash(e) for e in entries).root()
    assert report.latest_checkpoint is not None
    assert report.latest_checkpoint.size == 30
    assert verify_log([], [], keys).ok
    assert verify_log([], [], keys).root == EMPTY_ROOT


@pytest.mark.parametrize("victim", [0, 7, 28])
def test_an_altered_entry_is_named(
    victim: int, key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(30)
    cps = [checkpoint_of(entries, 20, key)]
    entries[victim] = entries[victim].replace(b'"allowed"', b'"blocked"')
    report = verify_log(entries, cps, keys)
    assert not report.ok
    assert report.first_bad_seq == victim
    assert f"entry {victim} " in (report.reason or "")


def test_an_altered_last_entry_is_caught_by_the_checkpoint(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(30)
    cps = [checkpoint_of(entries, 29, key), checkpoint_of(entries, 30, key)]
    entries[29] = entries[29].replace(b'"allowed"', b'"blocked"')
    report = verify_log(entries, cps, keys)
    assert (report.ok, report.first_bad_seq) == (False, 29)
    assert "checkpoint of size 30" in (report.reason or "")


def test_a_deleted_entry_is_named(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(30)
    del entries[12]
    report = verify_log(entries, [checkpoint_of(build_log(30), 30, key)], keys)
    assert (report.ok, report.first_bad_seq) == (False, 12)
    assert "entry 12 is missing" in (report.reason or "")


def test_a_truncated_log_is_caught_by_a_larger_checkpoint(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(30)
    cps = [checkpoint_of(entries, 10, key), checkpoint_of(entries, 30, key)]
    report = verify_log(entries[:25], cps, keys)
    assert (report.ok, report.first_bad_seq, report.size) == (False, 25, 25)
    assert "entries 25..29 were removed" in (report.reason or "")
    # Without a checkpoint past the cut, truncation cannot be seen: that is the point of them.
    assert verify_log(entries[:25], cps[:1], keys).ok


def test_a_rewritten_chain_is_caught_by_checkpoints(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(30)
    cps = [checkpoint_of(entries, size, key) for size in (10, 20, 30)]
    entries[14] = entries[14].replace(b'"allowed"', b'"blocked"')
    forged = rewrite_chain(entries, 14)
    report = verify_log(forged, cps, keys)
    # The chain is consistent again; the checkpoint of size 20 narrows it to 10..19.
    assert (report.ok, report.first_bad_seq) == (False, 10)
    assert "entries 10..19 do not match" in (report.reason or "")


def test_a_reordered_or_duplicated_entry(keys: dict[str, Ed25519PublicKey]) -> None:
    entries = build_log(10)
    swapped = [*entries[:3], entries[4], entries[3], *entries[5:]]
    assert verify_log(swapped, [], keys).first_bad_seq == 3
    duplicated = [*entries[:5], entries[4], *entries[5:]]
    report = verify_log(duplicated, [], keys)
    assert report.first_bad_seq == 5
    assert "repeats" in (report.reason or "")


def test_garbage_entries(keys: dict[str, Ed25519PublicKey]) -> None:
    entries = build_log(5)
    assert verify_log([*entries[:2], b"\xff{"], [], keys).first_bad_seq == 2
    assert verify_log([*entries[:2], b"[]"], [], keys).first_bad_seq == 2
    bad_genesis = entries[0].replace(GENESIS_PREV.encode(), b"1" * 64)
    assert verify_log([bad_genesis], [], keys).first_bad_seq == 0


def test_forged_or_foreign_checkpoints_are_refused(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(10)
    stranger = Ed25519PrivateKey.generate()
    forged = checkpoint_of(entries, 10, stranger)
    report = verify_log(entries, [forged], keys)
    assert not report.ok
    assert report.first_bad_seq is None
    assert "no signature by a trusted key" in (report.reason or "")
    other_origin = sign_checkpoint(Checkpoint("someone/else", 10, forged.root), private_key=key)
    assert not verify_log(entries, [other_origin], keys, origin=ORIGIN).ok
    # Two valid checkpoints of one size with different roots: the log forked.
    fork = sign_checkpoint(Checkpoint(ORIGIN, 10, b"\x00" * 32), private_key=key)
    report = verify_log(entries, [checkpoint_of(entries, 10, key), fork], keys)
    assert not report.ok
    assert "disagree" in (report.reason or "")


def test_an_entry_after_a_vouched_entry_is_blamed_for_a_bad_prev(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    entries = build_log(10)
    cps = [checkpoint_of(entries, 5, key)]
    obj = json.loads(entries[5])
    obj["prev"] = "ab" * 32
    entries[5] = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    report = verify_log(entries, cps, keys)
    assert report.first_bad_seq == 5  # entry 4 is vouched for by the checkpoint of size 5


# --- checkpoints and signed notes ------------------------------------------------------


def test_go_sumdb_note_vector() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])[1:]  # base64 may contain "+"
    private = Ed25519PrivateKey.from_private_bytes(seed)
    assert verifier_key(name="PeterNeumann", public_key=private.public_key()) == GO_VKEY
    assert key_id(name="PeterNeumann", public_key=private.public_key()).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, name="PeterNeumann", private_key=private) == GO_NOTE
    name, public = parse_verifier_key(GO_VKEY)
    assert open_note(GO_NOTE, name=name, keys=[public]) == GO_TEXT
    with pytest.raises(InvalidCheckpoint):
        open_note(GO_NOTE.replace("problem is", "problem was"), name=name, keys=[public])
    with pytest.raises(InvalidCheckpoint, match="no signature by a trusted key"):
        open_note(GO_NOTE, name="EnochRoot", keys=[public])


def test_checkpoint_note_format(key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]) -> None:
    root = hashlib.sha256(b"root").digest()
    cp = sign_checkpoint(
        Checkpoint(ORIGIN, 1042, root, ("time 2025-06-01T12:00:00Z",)), private_key=key
    )
    note = cp.note()
    text, sig_line = note.split("\n\n")
    assert text == f"{ORIGIN}\n1042\n{base64.b64encode(root).decode()}\ntime 2025-06-01T12:00:00Z"
    assert sig_line.startswith(f"\u2014 {ORIGIN} ")
    assert sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    expected_id = hashlib.sha256(
        ORIGIN.encode() + b"\n\x01" + key.public_key().public_bytes_raw()
    ).digest()[:4]
    assert blob[:4] == expected_id
    assert len(blob) == 68
    key.public_key().verify(blob[4:], (text + "\n").encode())
    parsed = verify_checkpoint(note, keys=keys, origin=ORIGIN)
    assert (parsed.size, parsed.root, parsed.time) == (1042, root, "2025-06-01T12:00:00Z")


def test_checkpoint_verification_rules(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    cp = sign_checkpoint(Checkpoint(ORIGIN, 3, EMPTY_ROOT), private_key=key)
    # A witness's (unknown) signature is ignored; a rotated-in key adds a line.
    witness = sign_checkpoint(
        cp, private_key=Ed25519PrivateKey.generate(), name="witness.example/w1"
    )
    assert verify_checkpoint(witness.note(), keys=keys).size == 3
    # A known key's bad signature rejects the whole note.
    tampered = witness.note().replace(f"{ORIGIN}\n3\n", f"{ORIGIN}\n4\n")
    with pytest.raises(InvalidCheckpoint, match="fails"):
        verify_checkpoint(tampered, keys=keys)
    retired, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old_cp = sign_checkpoint(Checkpoint(ORIGIN, 1, EMPTY_ROOT), private_key=retired)
    ring = {"new": new.public_key(), "old": retired.public_key()}
    assert verify_checkpoint(old_cp, keys=ring).size == 1


@pytest.mark.parametrize(
    "note",
    [
        "o\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",  # no signatures
        "o\n01\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n— o AAAAAAA=\n",
        "o\n1\nAAAA\n\n— o AAAAAAA=\n",  # root not 32 bytes
        "o o\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n— o AAAAAAA=\n",
        "o\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n- o AAAAAAA=\n",
        "o\n1\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n\n— o AA\x01AAAA=\n",
    ],
)
def test_malformed_checkpoints(note: str) -> None:
    with pytest.raises(InvalidCheckpoint):
        parse_checkpoint(note)


def test_checkpoint_file_of_several_notes(key: Ed25519PrivateKey) -> None:
    entries = build_log(4)
    cps = [checkpoint_of(entries, n, key) for n in (1, 2, 4)]
    two_sigs = sign_checkpoint(cps[2], private_key=Ed25519PrivateKey.generate(), name="w")
    text = cps[0].note() + "\n" + cps[1].note() + two_sigs.note()
    parsed = parse_checkpoints(text)
    assert [cp.size for cp in parsed] == [1, 2, 4]
    assert len(parsed[2].signatures) == 2
    assert parse_checkpoints("") == []


# --- the audit query -------------------------------------------------------------------


def query_log() -> list[bytes]:
    rows: list[tuple[str, dict[str, object]]] = [
        (
            "evaluation",
            {
                "repo": "a/b",
                "pr": 1,
                "head_sha": "h1",
                "author": "devin[bot]",
                "agent": True,
                "conclusion": "blocked",
                "files": [{"path": "x.py", "tier": "low"}],
                "approvers": [],
            },
        ),
        (
            "evaluation",
            {
                "repo": "a/b",
                "pr": 1,
                "head_sha": "h2",
                "author": "devin[bot]",
                "agent": True,
                "conclusion": "allowed",
                "files": [{"path": "db/m.sql", "tier": "high"}],
                "approvers": [{"user": "alice", "review_id": 11}],
            },
        ),
        (
            "evaluation",
            {
                "repo": "a/b",
                "pr": 2,
                "head_sha": "h3",
                "author": "bob",
                "agent": False,
                "conclusion": "allowed",
                "files": [],
                "approvers": [],
            },
        ),
        (
            "merged",
            {
                "repo": "a/b",
                "pr": 2,
                "head_sha": "h3",
                "author": "bob",
                "agent": False,
                "merged": True,
            },
        ),
        (
            "merged",
            {"repo": "a/b", "pr": 1, "head_sha": "h2", "merged": True, "merged_by": "alice"},
        ),
        ("error", {"repo": "a/b", "pr": 1, "message": "boom"}),
    ]
    entries, prev = [], GENESIS_PREV
    for seq, (kind, fields) in enumerate(rows):
        entry = make_entry(
            seq=seq, time=T0 + timedelta(days=seq), kind=kind, prev=prev, fields=fields
        )
        entries.append(entry)
        prev = entry_hash(entry)
    return entries


def test_query_merged_by_agents_joins_files_tiers_and_approvers() -> None:
    rows = run_query(query_log(), query_for(agent=ANY_AGENT, conclusion="merged", since=T0))
    assert len(rows) == 1
    merged = rows[0]
    assert (merged["kind"], merged["pr"], merged["merged_by"]) == ("merged", 1, "alice")
    evaluation = merged["evaluation"]
    assert isinstance(evaluation, dict)
    assert evaluation["head_sha"] == "h2"
    assert evaluation["files"] == [{"path": "db/m.sql", "tier": "high"}]
    assert evaluation["approvers"] == [{"user": "alice", "review_id": 11}]


def test_query_filters() -> None:
    log = query_log()
    assert [r["seq"] for r in run_query(log, query_for())] == [0, 1, 2, 3, 4, 5]
    assert [r["seq"] for r in run_query(log, query_for(conclusion="allowed"))] == [1, 2]
    assert [r["seq"] for r in run_query(log, query_for(agent="devin[bot]"))] == [0, 1, 4]
    assert [r["seq"] for r in run_query(log, query_for(pr=2))] == [2, 3]
    assert [r["seq"] for r in run_query(log, query_for(since=T0 + timedelta(days=3)))] == [3, 4, 5]
    assert [r["seq"] for r in run_query(log, query_for(until=T0 + timedelta(days=1)))] == [0]
    assert [r["seq"] for r in run_query(log, query_for(conclusion="merged"))] == [3, 4]
    assert run_query(log, query_for(repo="other/repo")) == []
