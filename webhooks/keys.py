"""The Ed25519 key ring that signs decisions and checkpoints.

Layout under the data dir (``$GATE_DATA_DIR``, default ``./.gate``)::

    keys/                  0700
      signing.pem          0600  the active private key, PEM PKCS#8
      retired/<kid>.pem    0644  public keys (PEM SubjectPublicKeyInfo) of earlier keys

``$GATE_SIGNING_KEY_FILE`` (a PEM PKCS#8 file, e.g. a mounted secret) replaces
``keys/signing.pem`` when set; it is never generated or rotated by us. Otherwise the key
is generated on first start: written to a temporary 0600 file created with ``O_EXCL``,
fsynced, then hard-linked into place, so two replicas starting at once end up with one
key and nobody ever reads a half-written file.

Key ids are RFC 7638 JWK thumbprints (:func:`gate.jwk.key_id`). ``GET
/.well-known/jwks.json`` serves :meth:`KeyRing.jwks`: the active key first, then every
retired key, so a record signed before a rotation still verifies. :func:`rotate` retires
the active key (its public half goes to ``retired/``) and atomically replaces it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from gate.jwk import build_jwks, key_id

DATA_DIR_ENV = "GATE_DATA_DIR"
KEY_FILE_ENV = "GATE_SIGNING_KEY_FILE"
DEFAULT_DATA_DIR = Path(".gate")


class KeyFileError(Exception):
    """A key file that is missing, unreadable or not an Ed25519 key."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The active signing key and the retired public keys that still verify."""

    active: SigningKey
    retired: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    def verification_keys(self) -> dict[str, Ed25519PublicKey]:
        """kid -> public key: the active key and every retired one."""
        return {self.active.kid: self.active.public_key, **self.retired}

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set for ``GET /.well-known/jwks.json`` (active key first)."""
        return build_jwks(self.verification_keys().values())


class Rotation(NamedTuple):
    old_kid: str
    new_kid: str
    keyring: KeyRing


def data_dir_from_env(env: Mapping[str, str] = os.environ) -> Path:
    return Path(env.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def _keys_dir(data_dir: Path) -> Path:
    return data_dir / "keys"


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM PKCS#8 file."""
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: cannot load a private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file holding a public or a private key."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    try:
        key = load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(f"{path}: cannot load a public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return key


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with ``data`` all at once; FileExistsError if it exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)  # atomic, and fails if another process got there first
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (a key lost on power failure is a new key)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a new 0600 PEM PKCS#8 key file; refuses to overwrite an existing one."""
    _write_new(path, private_pem(key), mode=0o600)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[Path]:
    """Serialise key generation and rotation between processes sharing the data dir."""
    keys = _keys_dir(data_dir)
    keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    (keys / "retired").mkdir(exist_ok=True, mode=0o700)
    fd = os.open(keys / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield keys
    finally:
        os.close(fd)


def load_retired(data_dir: Path) -> dict[str, Ed25519PublicKey]:
    """kid -> key for every ``keys/retired/*.pem`` (kid recomputed, not trusted)."""
    retired: dict[str, Ed25519PublicKey] = {}
    directory = _keys_dir(data_dir) / "retired"
    if directory.is_dir():
        for path in sorted(directory.glob("*.pem")):
            key = load_public_key(path)
            retired[key_id(key)] = key
    return retired


def load_keyring(*, data_dir: Path, key_file: Path | None = None) -> KeyRing:
    """The key ring; generates ``keys/signing.pem`` on first start if no ``key_file``."""
    if key_file is not None:
        private = load_private_key(key_file)
    else:
        path = _keys_dir(data_dir) / "signing.pem"
        if not path.exists():
            with _locked(data_dir):
                if not path.exists():
                    write_private_key(path, Ed25519PrivateKey.generate())
        private = load_private_key(path)
    active = SigningKey(private_key=private, kid=key_id(private.public_key()))
    retired = {kid: key for kid, key in load_retired(data_dir).items() if kid != active.kid}
    return KeyRing(active=active, retired=retired)


def keyring_from_env(env: Mapping[str, str] = os.environ) -> KeyRing:
    """The service's key ring: ``$GATE_SIGNING_KEY_FILE`` or the data dir's own key."""
    key_file = env.get(KEY_FILE_ENV)
    return load_keyring(
        data_dir=data_dir_from_env(env), key_file=Path(key_file) if key_file else None
    )


def load_verification_keys(data_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Public keys only (active + retired), never generating anything: for verifiers."""
    keys = load_retired(data_dir)
    path = _keys_dir(data_dir) / "signing.pem"
    if path.exists():
        public = load_private_key(path).public_key()
        keys = {key_id(public): public, **keys}
    return keys


def rotate(data_dir: Path) -> Rotation:
    """Retire the data dir's active key and make a new one active (atomically).

    The caller records a ``key_rotated`` audit entry with the two kids.
    """
    with _locked(data_dir) as keys:
        path = keys / "signing.pem"
        if not path.exists():
            raise KeyFileError(f"{path}: no active key to rotate")
        old = load_private_key(path)
        old_kid = key_id(old.public_key())
        with contextlib.suppress(FileExistsError):  # retired by an interrupted rotation
            _write_new(
                keys / "retired" / f"{old_kid}.pem", public_pem(old.public_key()), mode=0o644
            )
        new = Ed25519PrivateKey.generate()
        tmp = keys / f".signing.{secrets.token_hex(8)}.pem"
        write_private_key(tmp, new)
        os.replace(tmp, path)  # readers see the old key or the new one, never neither
        _fsync_dir(keys)
    ring = load_keyring(data_dir=data_dir)
    return Rotation(old_kid=old_kid, new_kid=ring.active.kid, keyring=ring)
