"""``gate keygen``: create or rotate the Ed25519 key that signs decisions.

    gate keygen [--out FILE] [--data-dir DIR] [--rotate]

- ``--out FILE``: write a new private key (PEM PKCS#8, 0600, never overwriting) to FILE,
  e.g. for ``GATE_SIGNING_KEY_FILE``.
- otherwise: make sure ``<data dir>/keys/signing.pem`` exists (creating it if not);
  with ``--rotate``, retire it to ``keys/retired/`` and make a new one active, and record
  a ``key_rotated`` entry in ``<data dir>/audit.sqlite3`` if that log exists.

Prints the key id and the public JWK Set (JSON) on stdout. Exit 0, 1 if a key could not
be written (e.g. FILE exists), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.jwk import build_jwks, key_id
from webhooks.audit_store import CHECKPOINT_FILE, SQLITE_FILE, FileCheckpointSink, SQLiteAuditLog
from webhooks.keys import (
    KeyFileError,
    Rotation,
    data_dir_from_env,
    load_keyring,
    rotate,
    write_private_key,
)


async def record_rotation(data_dir: Path, rotation: Rotation, *, origin: str | None) -> int | None:
    """Append ``key_rotated`` to the data dir's SQLite audit log, if there is one."""
    path = data_dir / SQLITE_FILE
    if not path.exists():
        return None
    log = await SQLiteAuditLog.open(
        path,
        keyring=rotation.keyring,
        origin=origin or _origin_of(data_dir),
        sink=FileCheckpointSink(data_dir / CHECKPOINT_FILE),
    )
    now = datetime.now(UTC)
    try:
        seq, _ = await log.append(
            "key_rotated", {"old_kid": rotation.old_kid, "new_kid": rotation.new_kid}, time=now
        )
    finally:
        await log.close(now)  # checkpoint with the new key, so it is vouched for at once
    return seq


def _origin_of(data_dir: Path) -> str:
    """The origin of the log's latest checkpoint, so rotation keeps signing the same log."""
    checkpoints = FileCheckpointSink(data_dir / CHECKPOINT_FILE).read()
    return checkpoints[-1].origin if checkpoints else "merge-gate/local"


def run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else data_dir_from_env()
    try:
        if args.out:
            if args.rotate:
                print("gate keygen: --rotate works on the data dir, not --out", file=sys.stderr)
                return 2
            key = Ed25519PrivateKey.generate()
            write_private_key(Path(args.out), key)
            public = [key.public_key()]
        elif args.rotate:
            rotation = rotate(data_dir)
            seq = asyncio.run(record_rotation(data_dir, rotation, origin=args.origin))
            if seq is not None:
                print(f"recorded key_rotated as audit entry {seq}", file=sys.stderr)
            public = list(rotation.keyring.verification_keys().values())
        else:
            public = list(load_keyring(data_dir=data_dir).verification_keys().values())
    except FileExistsError as exc:
        print(f"gate keygen: {exc.filename} exists; not overwriting a key", file=sys.stderr)
        return 1
    except (OSError, KeyFileError) as exc:
        print(f"gate keygen: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"kid": key_id(public[0]), "jwks": build_jwks(public)}, indent=2))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", metavar="FILE", help="write a new private key to FILE")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data dir (default: $GATE_DATA_DIR or ./.gate)"
    )
    parser.add_argument("--rotate", action="store_true", help="retire the active key")
    parser.add_argument(
        "--origin", help="checkpoint origin when recording a rotation (default: the log's)"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gate keygen`` to the ``gate`` CLI."""
    parser = subparsers.add_parser(
        "keygen",
        help="create or rotate the signing key",
        description="Create or rotate the Ed25519 key that signs decisions and checkpoints.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
