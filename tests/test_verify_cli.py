"""``gate verify``, ``gate keygen`` and ``gate audit`` (webhooks.commands.*).

Each is run in-process through ``run()`` and as a real subprocess of
``python -m webhooks`` (the ``gate`` console script).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.jwk import build_jwks, key_id
from gate.statement import build_statement, record_digest, sign_decision
from webhooks.audit_store import CHECKPOINT_FILE, FileCheckpointSink, SQLiteAuditLog
from webhooks.commands import audit, keygen, verify
from webhooks.keys import load_keyring, private_pem, public_pem

ROOT = Path(__file__).resolve().parent.parent
HEAD = "89abcdef0123456789abcdef0123456789abcdef"
ORIGIN = "merge-gate/test"
NOW = datetime.now(UTC).replace(microsecond=0)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gate")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (verify, keygen, audit):
        module.register(sub)
    return parser.parse_args(argv)


def gate(*argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m webhooks ...`` as a real process (the ``gate`` console script)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GATE_DATA_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "webhooks", *argv],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def files(tmp_path: Path, key: Ed25519PrivateKey) -> dict[str, Path]:
    statement = build_statement(
        repo="acme/widgets",
        number=5,
        head_sha=HEAD,
        predicate={"conclusion": "allowed", "installationId": 99, "files": []},
    )
    envelope = sign_decision(statement=statement, private_key=key, keyid=key_id(key.public_key()))
    paths = {
        "record": tmp_path / "record.json",
        "jwks": tmp_path / "jwks.json",
        "pub": tmp_path / "key.pub.pem",
        "priv": tmp_path / "key.pem",
        "other": tmp_path / "other.pem",
    }
    paths["record"].write_text(json.dumps(envelope))
    paths["jwks"].write_text(
        json.dumps(build_jwks([Ed25519PrivateKey.generate().public_key(), key.public_key()]))
    )
    paths["pub"].write_bytes(public_pem(key.public_key()))
    paths["priv"].write_bytes(private_pem(key))
    paths["other"].write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    return paths


@pytest.fixture
def jwks_url(key: Ed25519PrivateKey) -> Iterator[str]:
    """A loopback HTTP server serving the JWK Set, as the service's /.well-known would."""
    body = json.dumps(build_jwks([key.public_key()])).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- gate verify, in process -----------------------------------------------------------


def test_valid_record_with_jwks_file(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(
        "verify", str(files["record"]), "--jwks", str(files["jwks"]), "--expect-commit", HEAD
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True
    assert out["gitCommit"] == HEAD
    assert out["conclusion"] == "allowed"
    assert out["subject"] == "git+https://github.com/acme/widgets/pull/5"
    assert out["record_digest"] == record_digest(json.loads(files["record"].read_text()))


@pytest.mark.parametrize("pem", ["pub", "priv"])
def test_valid_record_with_one_pem_key(files: dict[str, Path], pem: str) -> None:
    args = parse("verify", str(files["record"]), "--key", str(files[pem]))
    assert verify.run(args) == 0


def test_valid_record_with_jwks_url(files: dict[str, Path], jwks_url: str) -> None:
    args = parse("verify", str(files["record"]), "--jwks", f"{jwks_url}/.well-known/jwks.json")
    assert verify.run(args) == 0
    missing = parse("verify", str(files["record"]), "--jwks", f"{jwks_url}/nope")
    assert verify.run(missing) == 2


def test_invalid_records_exit_1_with_reason(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify.run(parse("verify", str(files["record"]), "--key", str(files["other"]))) == 1
    assert "no signature verifies" in capsys.readouterr().err
    wrong_commit = parse(
        "verify", str(files["record"]), "--key", str(files["pub"]), "--expect-commit", "0" * 40
    )
    assert verify.run(wrong_commit) == 1
    assert "not 0000" in capsys.readouterr().err
    files["record"].write_text(
        files["record"].read_text().replace('"payload": "', '"payload": "AAAA')
    )
    assert verify.run(parse("verify", str(files["record"]), "--key", str(files["pub"]))) == 1
    files["record"].write_text("not json")
    assert verify.run(parse("verify", str(files["record"]), "--key", str(files["pub"]))) == 1
    assert "invalid: not JSON" in capsys.readouterr().err


def test_usage_errors_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    assert (
        verify.run(parse("verify", str(tmp_path / "missing.json"), "--key", str(files["pub"]))) == 2
    )
    assert (
        verify.run(parse("verify", str(files["record"]), "--key", str(tmp_path / "nokey.pem"))) == 2
    )
    assert verify.run(parse("verify", str(files["record"]), "--jwks", str(files["record"]))) == 2
    with pytest.raises(SystemExit) as exited:
        parse("verify", str(files["record"]))  # neither --jwks nor --key
    assert exited.value.code == 2


# --- gate verify, as a real process ----------------------------------------------------


def test_subprocess_gate_verify(files: dict[str, Path], jwks_url: str) -> None:
    ok = gate("verify", str(files["record"]), "--jwks", str(files["jwks"]), "--expect-commit", HEAD)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["valid"] is True
    from_stdin = gate(
        "verify",
        "-",
        "--jwks",
        f"{jwks_url}/.well-known/jwks.json",
        stdin=files["record"].read_bytes(),
    )
    assert from_stdin.returncode == 0, from_stdin.stderr
    bad = gate("verify", str(files["record"]), "--key", str(files["other"]))
    assert bad.returncode == 1
    assert "no signature verifies" in bad.stderr
    missing = gate("verify", str(files["record"]) + ".nope", "--key", str(files["pub"]))
    assert missing.returncode == 2
    usage = gate("verify", str(files["record"]))
    assert usage.returncode == 2
    assert "--jwks" in usage.stderr


# --- gate keygen -----------------------------------------------------------------------


def test_keygen_out_and_data_dir_and_rotate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "signing.pem"
    assert keygen.run(parse("keygen", "--out", str(out))) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (out.stat().st_mode & 0o777) == 0o600
    assert printed["kid"] == printed["jwks"]["keys"][0]["kid"]
    assert keygen.run(parse("keygen", "--out", str(out))) == 1  # never overwrites
    assert "exists" in capsys.readouterr().err

    data = tmp_path / "data"
    assert keygen.run(parse("keygen", "--data-dir", str(data))) == 0
    first = json.loads(capsys.readouterr().out)["kid"]
    assert (data / "keys" / "signing.pem").stat().st_mode & 0o777 == 0o600
    assert keygen.run(parse("keygen", "--data-dir", str(data))) == 0  # idempotent
    assert json.loads(capsys.readouterr().out)["kid"] == first
    assert keygen.run(parse("keygen", "--data-dir", str(data), "--rotate")) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["kid"] != first
    assert [k["kid"] for k in rotated["jwks"]["keys"]] == [rotated["kid"], first]
    assert (data / "keys" / "retired" / f"{first}.pem").exists()


def test_keygen_rotate_records_the_rotation_in_the_audit_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ring = load_keyring(data_dir=data)
    fill_log(data, 3)  # 3 evaluations and 1 merged: entries 0..3
    result = gate("keygen", "--data-dir", str(data), "--rotate")
    assert result.returncode == 0, result.stderr
    assert "recorded key_rotated as audit entry 4" in result.stderr
    new_kid = json.loads(result.stdout)["kid"]
    with sqlite3.connect(data / "audit.sqlite3") as con:
        (entry,) = con.execute("SELECT entry FROM audit_entries WHERE seq = 4").fetchone()
    con.close()
    assert json.loads(entry)["kind"] == "key_rotated"
    assert json.loads(entry)["old_kid"] == ring.active.kid
    assert json.loads(entry)["new_kid"] == new_kid
    verified = gate("audit", "verify", "--data-dir", str(data))
    assert verified.returncode == 0, verified.stderr
    assert "ok: 5 entries" in verified.stdout
    assert "2 checkpoint(s) verified" in verified.stdout


# --- gate audit verify -----------------------------------------------------------------


def fill_log(data: Path, n: int, *, every: int = 1000) -> None:
    """n evaluation entries in <data>/audit.sqlite3, checkpoint at the end."""
    import asyncio

    async def go() -> None:
        log = await SQLiteAuditLog.open(
            data / "audit.sqlite3",
            keyring=load_keyring(data_dir=data),
            origin=ORIGIN,
            sink=FileCheckpointSink(data / CHECKPOINT_FILE),
            checkpoint_every=every,
            checkpoint_seconds=10**9,  # only count-based checkpoints: deterministic
        )
        try:
            for i in range(n):
                agent = i % 2 == 0
                await log.append(
                    "evaluation",
                    {
                        "repo": "acme/widgets",
                        "pr": i,
                        "head_sha": f"{i:040x}",
                        "author": "devin[bot]" if agent else "bob",
                        "agent": agent,
                        "conclusion": "allowed",
                        "files": [{"path": f"src/{i}.py", "tier": "medium"}],
                        "approvers": [{"user": "alice", "review_id": 100 + i}],
                        "record_digest": "sha256:" + "00" * 32,
                        "delivery_id": f"d{i}",
                    },
                    time=NOW - timedelta(days=10) + timedelta(hours=i),
                )
                if i % 3 == 0:
                    await log.append(
                        "merged",
                        {
                            "repo": "acme/widgets",
                            "pr": i,
                            "head_sha": f"{i:040x}",
                            "merged": True,
                            "merged_by": "alice",
                            "author": "devin[bot]" if agent else "bob",
                            "agent": agent,
                        },
                        time=NOW - timedelta(days=10) + timedelta(hours=i, minutes=30),
                    )
        finally:
            await log.close(NOW)

    asyncio.run(go())


def tamper(data: Path, sql: str, *params: object) -> None:
    con = sqlite3.connect(data / "audit.sqlite3")
    try:
        with con:
            con.execute(sql, params)
    finally:
        con.close()


def audit_verify(data: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = audit.run(parse("audit", "verify", "--data-dir", str(data), *extra))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_audit_verify_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    fill_log(data, 30, every=10)
    code, output = audit_verify(data, capsys)
    assert code == 0, output
    assert "ok: 40 entries" in output
    assert "4 checkpoint(s) verified" in output


def test_audit_verify_names_an_altered_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    fill_log(data, 20, every=10)
    tamper(
        data, "UPDATE audit_entries SET entry = replace(entry, 'allowed', 'blocked') WHERE seq = 7"
    )
    code, output = audit_verify(data, capsys)
    assert code == 1
    assert "first bad entry: seq 7" in output


def test_audit_verify_names_a_deleted_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    fill_log(data, 20, every=10)
    tamper(data, "DELETE FROM audit_entries WHERE seq = 11")
    code, output = audit_verify(data, capsys)
    assert code == 1
    assert "first bad entry: seq 11" in output
    assert "missing" in output


def test_audit_verify_names_truncation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    fill_log(data, 20, every=1000)  # one checkpoint, of all 27 entries, at close
    tamper(data, "DELETE FROM audit_entries WHERE seq >= 22")
    code, output = audit_verify(data, capsys)
    assert code == 1
    assert "first bad entry: seq 22" in output
    assert "removed" in output


def test_audit_verify_subprocess_and_usage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fill_log(data, 5)
    tamper(
        data, "UPDATE audit_entries SET entry = replace(entry, 'alice', 'mallory') WHERE seq = 2"
    )
    result = gate("audit", "verify", "--data-dir", str(data))
    assert result.returncode == 1
    assert "first bad entry: seq 2" in result.stderr
    nothing = gate("audit", "verify", "--data-dir", str(tmp_path / "empty"))
    assert nothing.returncode == 2


def test_audit_verify_with_explicit_keys_and_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    fill_log(data, 5)
    ring = load_keyring(data_dir=data)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(ring.jwks()))
    code, _ = audit_verify(
        data,
        capsys,
        "--jwks",
        str(jwks),
        "--checkpoints",
        str(data / CHECKPOINT_FILE),
        "--origin",
        ORIGIN,
    )
    assert code == 0
    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    code, output = audit_verify(data, capsys, "--key", str(stranger))
    assert code == 1
    assert "no signature by a trusted key" in output
    code, output = audit_verify(data, capsys, "--origin", "merge-gate/elsewhere")
    assert code == 1


def test_audit_verify_on_redis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio
    import uuid

    import redis as sync_redis

    from webhooks.audit_store import RedisAuditLog

    data = tmp_path / "data"
    prefix = f"merge-gate-test:{uuid.uuid4().hex}"

    async def fill() -> None:
        log = RedisAuditLog.from_url(
            "redis://127.0.0.1:6379/0",
            keyring=load_keyring(data_dir=data),
            origin=ORIGIN,
            sink=FileCheckpointSink(data / CHECKPOINT_FILE),
            prefix=prefix,
            checkpoint_every=5,
        )
        try:
            for i in range(12):
                await log.append("error", {"message": f"m{i}"}, time=NOW)
        finally:
            await log.close(NOW)

    client = sync_redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        asyncio.run(fill())
        source = ("--redis-url", "redis://127.0.0.1:6379/0", "--redis-prefix", prefix)
        code, output = audit_verify(data, capsys, *source)
        assert code == 0, output
        assert "ok: 12 entries" in output
        assert "3 checkpoint(s)" in output
        entries_key = f"{{{prefix}}}:entries"

        def edit(old: str, new: str) -> None:
            raw = client.lindex(entries_key, 6)
            assert isinstance(raw, bytes)
            client.lset(entries_key, 6, raw.decode().replace(old, new))

        edit("m6", "m9")
        code, output = audit_verify(data, capsys, *source)
        assert code == 1
        assert "first bad entry: seq 6" in output
        client.ltrim(entries_key, 0, 8)  # truncate to 9 entries, below the checkpoints of 10 and 12
        edit("m9", "m6")
        code, output = audit_verify(data, capsys, *source)
        assert code == 1
        assert "first bad entry: seq 9" in output
    finally:
        client.delete(*(f"{{{prefix}}}:{name}" for name in ("head", "entries", "leaves")))
        client.close()


# --- gate audit (query) ----------------------------------------------------------------


def test_audit_query_merged_by_agents_last_7_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    fill_log(data, 200)  # evaluations an hour apart from 10 days ago; every 3rd PR merged
    args = parse(
        "audit",
        "--agent",
        "--conclusion",
        "merged",
        "--since",
        "7d",
        "--format",
        "jsonl",
        "--data-dir",
        str(data),
    )
    assert audit.run(args) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows
    assert all(r["kind"] == "merged" and r["agent"] is True for r in rows)
    assert all(r["pr"] % 6 == 0 for r in rows)  # merged (every 3rd) and by the agent (even)
    since = (NOW - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(r["time"] >= since for r in rows)
    first = rows[0]["evaluation"]
    assert first["files"] == [{"path": f"src/{rows[0]['pr']}.py", "tier": "medium"}]
    assert first["approvers"] == [{"user": "alice", "review_id": 100 + rows[0]["pr"]}]
    # The same as one command in a real process, as a table.
    table = gate(
        "audit", "--agent", "--conclusion", "merged", "--since", "7d", "--data-dir", str(data)
    )
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "TIME",
        "KIND",
        "PULL",
        "REQUEST",
        "AUTHOR",
        "CONCLUSION",
        "APPROVERS",
        "FILES",
    ]
    assert len(lines) == len(rows) + 1
    assert "merged (allowed)" in lines[1]
    assert "alice" in lines[1]
    assert "[medium]" in lines[1]


def test_audit_query_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit.run(parse("audit", "--data-dir", str(tmp_path / "nothing"))) == 2
    data = tmp_path / "data"
    fill_log(data, 2)
    assert audit.run(parse("audit", "--since", "yesterday-ish", "--data-dir", str(data))) == 2
    assert "neither like 7d" in capsys.readouterr().err
    assert (
        audit.run(parse("audit", "--pr", "1", "--data-dir", str(data), "--until", "2999-01-01"))
        == 0
    )
    assert "acme/widgets#1" in capsys.readouterr().out


def test_parse_when() -> None:
    now = datetime(2025, 6, 8, tzinfo=UTC)
    assert audit.parse_when("7d", now=now) == datetime(2025, 6, 1, tzinfo=UTC)
    assert audit.parse_when("12h", now=now) == datetime(2025, 6, 7, 12, tzinfo=UTC)
    assert audit.parse_when("2w", now=now) == datetime(2025, 5, 25, tzinfo=UTC)
    assert audit.parse_when("2025-06-01", now=now) == datetime(2025, 6, 1, tzinfo=UTC)
    assert audit.parse_when("2025-06-01T02:00:00+02:00", now=now) == datetime(
        2025, 6, 1, tzinfo=UTC
    )
