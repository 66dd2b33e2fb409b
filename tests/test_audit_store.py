"""The audit log stores (webhooks.audit_store) on a real SQLite file and the real Redis."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from gate.auditlog import ANY_AGENT, verify_log
from gate.checkpoint import verify_checkpoint
from gate.merkle import MerkleTree, ProofError, leaf_hash, verify_consistency, verify_inclusion
from webhooks.audit_store import (
    CHECKPOINT_FILE,
    AuditLogError,
    FileCheckpointSink,
    RedisAuditLog,
    SQLiteAuditLog,
    default_origin,
    read_sqlite_entries,
)
from webhooks.keys import KeyRing, load_keyring, rotate

REDIS_URL = "redis://127.0.0.1:6379/0"
ORIGIN = default_origin(app_id=4242)
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

Opener = Callable[..., Awaitable[SQLiteAuditLog | RedisAuditLog]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def keyring(data_dir: Path) -> KeyRing:
    return load_keyring(data_dir=data_dir)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"merge-gate-test:{uuid.uuid4().hex}"
    yield prefix
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{{{prefix}}}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(params=["sqlite", "redis"])
async def open_log(
    request: pytest.FixtureRequest, data_dir: Path, keyring: KeyRing, redis_prefix: str
) -> AsyncIterator[Opener]:
    """Opens logs of one backend over one data dir; closes whatever it opened."""
    opened: list[SQLiteAuditLog | RedisAuditLog] = []

    async def opener(**overrides: object) -> SQLiteAuditLog | RedisAuditLog:
        options: dict[str, object] = {
            "keyring": keyring,
            "origin": ORIGIN,
            "sink": FileCheckpointSink(data_dir / CHECKPOINT_FILE),
            "checkpoint_every": 10,
        }
        options.update(overrides)
        log: SQLiteAuditLog | RedisAuditLog
        if request.param == "sqlite":
            log = await SQLiteAuditLog.open(data_dir / "audit.sqlite3", **options)  # type: ignore[arg-type]
        else:
            log = RedisAuditLog.from_url(REDIS_URL, prefix=redis_prefix, **options)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield opener
    for log in opened:
        await log.close()


def evaluation(pr: int, *, head: str = "h", conclusion: str = "allowed") -> dict[str, object]:
    return {
        "repo": "acme/widgets",
        "pr": pr,
        "head_sha": head,
        "author": "devin-ai-integration[bot]",
        "agent": True,
        "conclusion": conclusion,
        "files": [{"path": "db/migrate/1.rb", "tier": "high"}],
        "approvers": [{"user": "alice", "review_id": 7001}],
        "record_digest": "sha256:" + "ab" * 32,
        "delivery_id": f"d-{pr}",
    }


async def fill(log: SQLiteAuditLog | RedisAuditLog, n: int, *, start: int = 0) -> list[bytes]:
    leaves = []
    for i in range(start, start + n):
        seq, leaf = await log.append("evaluation", evaluation(i), time=T0 + timedelta(seconds=i))
        assert seq == i
        leaves.append(leaf)
    return leaves


async def test_append_entries_and_tree(open_log: Opener) -> None:
    log = await open_log()
    leaves = await fill(log, 25)
    assert await log.size() == 25
    entries = await log.entries(0, 25)
    assert [leaf_hash(e) for e in entries] == leaves
    assert await log.entries(5, 7) == entries[5:7]
    assert [e async for e in log.iter_entries(20)] == entries[20:]
    assert await log.root() == MerkleTree(leaves).root()
    assert await log.root(9) == MerkleTree(leaves[:9]).root()


async def test_checkpoints_every_n_entries_and_at_close(
    open_log: Opener, data_dir: Path, keyring: KeyRing
) -> None:
    log = await open_log()
    assert await log.latest_checkpoint() is None
    await fill(log, 25)
    latest = await log.latest_checkpoint()
    assert latest is not None
    assert latest.size == 20
    sink = FileCheckpointSink(data_dir / CHECKPOINT_FILE)
    assert [cp.size for cp in sink.read()] == [10, 20]
    await log.close(T0 + timedelta(hours=1))
    checkpoints = sink.read()
    assert [cp.size for cp in checkpoints] == [10, 20, 25]
    assert checkpoints[-1].time == "2025-06-01T13:00:00Z"
    for cp in checkpoints:
        verify_checkpoint(cp, keys=keyring.verification_keys(), origin=ORIGIN)
    log2 = await open_log()
    latest = await log2.latest_checkpoint()
    assert latest is not None
    assert latest.size == 25
    report = verify_log(
        [e async for e in log2.iter_entries()], checkpoints, keyring.verification_keys()
    )
    assert report.ok
    assert report.checkpoints_verified == 3


async def test_checkpoint_after_m_seconds(open_log: Opener, data_dir: Path) -> None:
    log = await open_log(checkpoint_every=1000, checkpoint_seconds=60)
    await log.append("error", {"message": "first"}, time=T0)  # starts the clock
    await log.append("error", {"message": "soon"}, time=T0 + timedelta(seconds=30))
    assert await log.maybe_checkpoint(T0 + timedelta(seconds=59)) is None
    cp = await log.maybe_checkpoint(T0 + timedelta(seconds=61))
    assert cp is not None
    assert cp.size == 2
    assert await log.maybe_checkpoint(T0 + timedelta(hours=1)) is None  # nothing new
    await log.append("error", {"message": "later"}, time=T0 + timedelta(hours=2))
    assert await log.maybe_checkpoint(T0 + timedelta(hours=2, seconds=59)) is None
    await log.append("error", {"message": "again"}, time=T0 + timedelta(hours=2, seconds=60))
    assert [c.size for c in FileCheckpointSink(data_dir / CHECKPOINT_FILE).read()] == [2, 4]


async def test_inclusion_and_consistency_proofs_between_checkpoints(open_log: Opener) -> None:
    log = await open_log(checkpoint_every=1000)
    leaves = await fill(log, 13)
    old = await log.checkpoint(T0)
    leaves += await fill(log, 20, start=13)
    new = await log.checkpoint(T0 + timedelta(minutes=5))
    proof = await log.consistency_proof(old.size, new.size)
    verify_consistency(old_size=13, new_size=33, old_root=old.root, new_root=new.root, proof=proof)
    for seq in (0, 12, 32):
        path = await log.inclusion_proof(seq, new.size)
        verify_inclusion(index=seq, size=33, leaf=leaves[seq], proof=path, root=new.root)
    # A forged tree (entry 5 rewritten) cannot prove consistency with the old checkpoint.
    forged = MerkleTree([*leaves[:5], leaf_hash(b"forged"), *leaves[6:]])
    with pytest.raises(ProofError):
        verify_consistency(
            old_size=13,
            new_size=33,
            old_root=old.root,
            new_root=forged.root(),
            proof=forged.consistency_proof(13),
        )


async def test_query_merged_by_agents(open_log: Opener) -> None:
    log = await open_log()
    await log.append(
        "evaluation", evaluation(1, head="a1", conclusion="blocked"), time=T0 - timedelta(days=30)
    )
    await log.append("evaluation", evaluation(1, head="a2"), time=T0 - timedelta(days=20))
    await log.append("evaluation", evaluation(2, head="b1"), time=T0 - timedelta(days=2))
    human = {**evaluation(3, head="c1"), "author": "bob", "agent": False}
    await log.append("evaluation", human, time=T0 - timedelta(days=2))
    pr_fields = {"repo": "acme/widgets", "merged": True, "merged_by": "alice"}
    await log.append(
        "merged", {**pr_fields, "pr": 1, "head_sha": "a2"}, time=T0 - timedelta(days=1)
    )
    await log.append(
        "merged", {**pr_fields, "pr": 3, "head_sha": "c1", "author": "bob", "agent": False}, time=T0
    )
    await log.append(
        "merged", {**pr_fields, "pr": 2, "head_sha": "b1"}, time=T0 - timedelta(days=9)
    )
    rows = await log.query(agent=ANY_AGENT, conclusion="merged", since=T0 - timedelta(days=7))
    assert [(r["pr"], r["kind"]) for r in rows] == [(1, "merged")]
    joined = rows[0]["evaluation"]
    assert isinstance(joined, dict)
    assert (joined["head_sha"], joined["files"], joined["approvers"]) == (
        "a2",
        [{"path": "db/migrate/1.rb", "tier": "high"}],
        [{"user": "alice", "review_id": 7001}],
    )
    assert [r["pr"] for r in await log.query(conclusion="merged")] == [1, 3, 2]
    assert [r["pr"] for r in await log.query(agent="bob")] == []  # bob is not an agent
    assert [r["pr"] for r in await log.query(conclusion="blocked")] == [1]
    assert [r["seq"] for r in await log.query(repo="acme/widgets", pr=3)] == [3, 5]
    assert len(await log.query(until=T0 - timedelta(days=10))) == 2


async def test_reopen_continues_the_same_log(
    open_log: Opener, keyring: KeyRing, data_dir: Path
) -> None:
    first = await open_log()
    await fill(first, 12)
    await first.close(T0)
    second = await open_log()
    await fill(second, 5, start=12)
    cp = await second.checkpoint(T0 + timedelta(minutes=1))
    assert cp.size == 17
    checkpoints = FileCheckpointSink(data_dir / CHECKPOINT_FILE).read()
    assert verify_log(
        [e async for e in second.iter_entries()], checkpoints, keyring.verification_keys()
    ).ok


async def test_rotation_keeps_old_checkpoints_verifiable(open_log: Opener, data_dir: Path) -> None:
    log = await open_log()
    await fill(log, 10)  # checkpoint of size 10 by the first key
    rotation = rotate(data_dir)
    log2 = await open_log(keyring=rotation.keyring)
    await log2.append(
        "key_rotated", {"old_kid": rotation.old_kid, "new_kid": rotation.new_kid}, time=T0
    )
    await fill(log2, 9, start=11)  # checkpoint of size 20 by the new key
    checkpoints = FileCheckpointSink(data_dir / CHECKPOINT_FILE).read()
    assert [cp.size for cp in checkpoints] == [10, 20]
    ring = load_keyring(data_dir=data_dir)
    assert set(ring.verification_keys()) == {rotation.old_kid, rotation.new_kid}
    assert verify_log(
        [e async for e in log2.iter_entries()], checkpoints, ring.verification_keys()
    ).ok
    # The old checkpoint does not verify with the new key alone.
    only_new = {rotation.new_kid: ring.active.public_key}
    assert not verify_log([e async for e in log2.iter_entries()], checkpoints, only_new).ok


async def test_read_only_log_cannot_sign(open_log: Opener) -> None:
    log = await open_log(keyring=None)
    await log.append("error", {"message": "x"}, time=T0)
    with pytest.raises(AuditLogError, match="without a signing key"):
        await log.checkpoint(T0)


# --- SQLite specifics ------------------------------------------------------------------


async def test_sqlite_refuses_to_checkpoint_over_a_tampered_log(
    data_dir: Path, keyring: KeyRing
) -> None:
    path = data_dir / "audit.sqlite3"
    sink = FileCheckpointSink(data_dir / CHECKPOINT_FILE)
    log = await SQLiteAuditLog.open(path, keyring=keyring, origin=ORIGIN, sink=sink)
    await fill(log, 5)
    await log.checkpoint(T0)
    await log.close()
    with sqlite3.connect(path) as con:
        con.execute("UPDATE audit_entries SET leaf = ? WHERE seq = 2", (leaf_hash(b"forged"),))
    con.close()
    log = await SQLiteAuditLog.open(path, keyring=keyring, origin=ORIGIN, sink=sink)
    try:
        await log.append("error", {"message": "after"}, time=T0)
        with pytest.raises(AuditLogError, match="no longer matches its checkpoint of size 5"):
            await log.checkpoint(T0)
    finally:
        await log.close()


async def test_sqlite_two_writers_stay_linear(data_dir: Path, keyring: KeyRing) -> None:
    path = data_dir / "audit.sqlite3"
    a = await SQLiteAuditLog.open(path, keyring=None, origin=ORIGIN)
    b = await SQLiteAuditLog.open(path, keyring=None, origin=ORIGIN)
    try:
        results = await asyncio.gather(
            *(
                log.append("error", {"writer": name, "i": i}, time=T0)
                for i in range(40)
                for name, log in (("a", a), ("b", b))
            )
        )
    finally:
        await a.close()
        await b.close()
    assert sorted(seq for seq, _ in results) == list(range(80))
    assert verify_log(read_sqlite_entries(path), [], {}).ok
    # Each handle's tree caught up with the other's appends.
    log = await SQLiteAuditLog.open(path, keyring=None, origin=ORIGIN, read_only=True)
    try:
        assert await log.root() == MerkleTree(leaf for _, leaf in sorted(results)).root()
    finally:
        await log.close()


async def test_sqlite_read_only_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await SQLiteAuditLog.open(
            tmp_path / "none.sqlite3", keyring=None, origin=ORIGIN, read_only=True
        )
    with pytest.raises(FileNotFoundError):
        list(read_sqlite_entries(tmp_path / "none.sqlite3"))


# --- Redis specifics -------------------------------------------------------------------


async def test_redis_replicas_append_one_linear_chain(redis_prefix: str, keyring: KeyRing) -> None:
    replicas = [
        RedisAuditLog.from_url(
            REDIS_URL, keyring=None, origin=ORIGIN, sink=None, prefix=redis_prefix
        )
        for _ in range(3)
    ]
    try:
        results = await asyncio.gather(
            *(
                replica.append("evaluation", evaluation(i), time=T0)
                for i in range(30)
                for replica in replicas
            )
        )
        assert sorted(seq for seq, _ in results) == list(range(90))
        entries = [e async for e in replicas[0].iter_entries()]
        assert len(entries) == 90
        assert verify_log(entries, [], {}).ok
        # Every replica's tree agrees, whichever appends it saw itself.
        roots = {await replica.root() for replica in replicas}
        assert roots == {MerkleTree(leaf_hash(e) for e in entries).root()}
    finally:
        for replica in replicas:
            await replica.close()


async def test_redis_keys_live_under_the_prefix(redis_prefix: str) -> None:
    log = RedisAuditLog.from_url(
        REDIS_URL, keyring=None, origin=ORIGIN, sink=None, prefix=redis_prefix
    )
    try:
        await log.append("error", {"message": "x"}, time=T0)
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = sorted([k async for k in client.scan_iter(match=f"{{{redis_prefix}}}:*")])
            head = await client.hgetall(f"{{{redis_prefix}}}:head")
        finally:
            await client.aclose()
        assert [k.decode().rsplit(":", 1)[1] for k in keys] == ["entries", "head", "leaves"]
        assert head[b"size"] == b"1"
        assert len(head[b"hash"]) == 64
        await log.delete_all()
        assert await log.size() == 0
    finally:
        await log.close()
