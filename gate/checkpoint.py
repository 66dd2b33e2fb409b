"""Signed tree heads as C2SP checkpoints in Ed25519 signed notes.

Format (https://c2sp.org/tlog-checkpoint and https://c2sp.org/signed-note)::

    merge-gate/app-123456            <- origin: the log's identity
    1042                             <- tree size, ASCII decimal, no leading zeros
    3Wnaeq... (base64 of 32 bytes)   <- RFC 9162 root hash of the first 1042 entries
    time 2025-06-01T12:00:00Z        <- extension line (ours; see below)
                                     <- blank line ends the note text
    — merge-gate/app-123456 AAAAAB...  <- em dash, space, key name, space,
                                          base64(4-byte key ID || 64-byte Ed25519 sig)

- The note text (origin through the last extension line, with its final newline) is
  what Ed25519 (RFC 8032) signs.
- Key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4], big-endian,
  0x01 being signed-note's Ed25519 signature type.
- The key name is the origin, as tlog-checkpoint recommends. merge-gate's origin is
  ``merge-gate/<host or app-<id>>``: schema-less, no spaces, no '+', naming one log.
- Verifiers ignore signatures by unknown keys (so a key rotation adds a line, and old
  checkpoints still verify with the retired key), reject the note if a known key's
  signature fails, and need at least one known key's signature to verify.

The ``time`` extension line: tlog-checkpoint calls extension lines opaque and NOT
RECOMMENDED because log monitors cannot audit them (and ML-DSA cosignatures do not
cover them). We still write one: our Ed25519 signature covers the whole note text, the
auditor of this log is ``gate audit verify`` (which reads it), and a signed time tells
it when the log last vouched for itself, so a log that stopped checkpointing shows. It
is never used to decide whether entries are genuine; sizes and roots decide that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gate.jwk import raw_public_key

ED25519_TYPE = b"\x01"
SIG_PREFIX = "— "  # em dash U+2014, space
MAX_SIGNATURES = 16  # signed-note: verifiers MUST accept at least 16
_SIZE = re.compile(r"0|[1-9][0-9]*")
_TIME_PREFIX = "time "


class InvalidCheckpoint(ValueError):
    """A checkpoint that is malformed or not signed by a trusted key."""


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: key name, 4-byte key ID, and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: origin, size, root, extension lines, and signatures over its text."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = field(default=(), compare=False)

    @property
    def time(self) -> str | None:
        """The value of our ``time`` extension line, if there is one."""
        for line in self.extensions:
            if line.startswith(_TIME_PREFIX):
                return line[len(_TIME_PREFIX) :]
        return None

    def text(self) -> str:
        """The note text the signatures cover (ends in a newline)."""
        root = base64.b64encode(self.root).decode("ascii")
        return "".join(
            f"{line}\n" for line in (self.origin, str(self.size), root, *self.extensions)
        )

    def note(self) -> str:
        """The whole signed note: text, blank line, signature lines."""
        return self.text() + "\n" + "".join(sig.line() for sig in self.signatures)


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" for ch in name):
        raise InvalidCheckpoint(
            f"key name/origin {name!r} must be non-empty, without spaces or '+'"
        )


def key_id(*, name: str, public_key: Ed25519PublicKey) -> bytes:
    """signed-note key ID: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(
        name.encode() + b"\n" + ED25519_TYPE + raw_public_key(public_key)
    ).digest()[:4]


def verifier_key(*, name: str, public_key: Ed25519PublicKey) -> str:
    """The ``name+hexkeyid+base64(0x01||key)`` verifier key string Go's sumdb/note reads."""
    _check_name(name)
    blob = base64.b64encode(ED25519_TYPE + raw_public_key(public_key)).decode("ascii")
    return f"{name}+{key_id(name=name, public_key=public_key).hex()}+{blob}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """Parse a ``name+hexkeyid+base64(0x01||key)`` verifier key; checks the key ID."""
    name, _, rest = text.partition("+")
    hex_id, _, blob = rest.partition("+")
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error:
        raise InvalidCheckpoint("verifier key is not base64") from None
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise InvalidCheckpoint("verifier key is not an Ed25519 signed-note key")
    _check_name(name)
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name=name, public_key=key).hex() != hex_id:
        raise InvalidCheckpoint("verifier key ID does not match its key")
    return name, key


def sign_checkpoint(
    checkpoint: Checkpoint, *, private_key: Ed25519PrivateKey, name: str | None = None
) -> Checkpoint:
    """Add an Ed25519 signature line by ``name`` (default: the origin)."""
    name = checkpoint.origin if name is None else name
    _check_name(name)
    _check_text(checkpoint)
    signature = NoteSignature(
        name=name,
        key_id=key_id(name=name, public_key=private_key.public_key()),
        signature=private_key.sign(checkpoint.text().encode("utf-8")),
    )
    return replace(checkpoint, signatures=(*checkpoint.signatures, signature))


def _check_text(checkpoint: Checkpoint) -> None:
    _check_name(checkpoint.origin)
    if checkpoint.size < 0 or len(checkpoint.root) != 32:
        raise InvalidCheckpoint("size must be >= 0 and root 32 bytes")
    for line in checkpoint.extensions:
        if not line or "\n" in line:
            raise InvalidCheckpoint("extension lines must be non-empty single lines")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in checkpoint.text()):
        raise InvalidCheckpoint("signed notes must not contain control characters")


def parse_checkpoint(note: str) -> Checkpoint:
    """Parse a signed checkpoint note; the signatures are *not* verified here."""
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise InvalidCheckpoint("signed notes must not contain control characters")
    split = note.rfind("\n\n")  # the text ends at the note's last blank line
    if split < 0 or not note.endswith("\n"):
        raise InvalidCheckpoint("not a signed note: no blank line before signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or not all(lines):
        raise InvalidCheckpoint("checkpoint text needs origin, size and root lines")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.fullmatch(size_text):
        raise InvalidCheckpoint("tree size must be decimal without leading zeros")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise InvalidCheckpoint("root hash is not base64") from None
    signatures = [_parse_signature(line) for line in sig_block.split("\n")[:-1]]
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise InvalidCheckpoint(f"a signed note needs 1 to {MAX_SIGNATURES} signatures")
    checkpoint = Checkpoint(origin, int(size_text), root, tuple(extensions), tuple(signatures))
    _check_text(checkpoint)
    if checkpoint.text() != text:  # e.g. non-canonical base64 in the root line
        raise InvalidCheckpoint("checkpoint text is not in canonical form")
    return checkpoint


def _parse_signature(line: str) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise InvalidCheckpoint("signature lines start with an em dash and a space")
    name, _, blob = line[len(SIG_PREFIX) :].partition(" ")
    _check_name(name)
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error:
        raise InvalidCheckpoint("signature is not base64") from None
    if len(raw) < 5:
        raise InvalidCheckpoint("signature too short")
    return NoteSignature(name=name, key_id=raw[:4], signature=raw[4:])


def parse_checkpoints(text: str) -> list[Checkpoint]:
    """Parse a file of signed notes written one after another (blank lines between ok)."""
    notes: list[str] = []
    current: list[str] = []
    in_signatures = False
    for line in text.splitlines(keepends=True):
        if in_signatures and not line.startswith(SIG_PREFIX):
            notes.append("".join(current))
            current, in_signatures = [], False
            if line == "\n":
                continue
        if current and current[-1] == "\n" and line.startswith(SIG_PREFIX):
            in_signatures = True
        current.append(line)
    if current:
        notes.append("".join(current))
    return [parse_checkpoint(note) for note in notes]


def sign_note(text: str, *, name: str, private_key: Ed25519PrivateKey) -> str:
    """A signed note of ``text`` (which must end in a newline) with one Ed25519 signature."""
    _check_name(name)
    if not text.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise InvalidCheckpoint("note text must end in a newline and hold no control characters")
    signature = NoteSignature(
        name=name,
        key_id=key_id(name=name, public_key=private_key.public_key()),
        signature=private_key.sign(text.encode("utf-8")),
    )
    return text + "\n" + signature.line()


def open_note(note: str, *, name: str, keys: Iterable[Ed25519PublicKey]) -> str:
    """Verify a signed note's signatures by ``name`` with trusted ``keys``; return its text."""
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise InvalidCheckpoint("not a signed note: no blank line before signatures")
    text = note[: split + 1]
    signatures = [_parse_signature(line) for line in note[split + 2 :].split("\n")[:-1]]
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise InvalidCheckpoint(f"a signed note needs 1 to {MAX_SIGNATURES} signatures")
    _verify_signatures(text, signatures, name=name, keys=list(keys))
    return text


def _verify_signatures(
    text: str, signatures: Iterable[NoteSignature], *, name: str, keys: list[Ed25519PublicKey]
) -> None:
    """signed-note rules: ignore unknown keys, reject any failing known key, need one."""
    message = text.encode("utf-8")
    verified = 0
    for sig in signatures:
        if sig.name != name:
            continue  # another key name (a witness, say): unknown to us, so ignored
        for key in keys:
            if key_id(name=name, public_key=key) != sig.key_id:
                continue
            try:
                key.verify(sig.signature, message)
            except InvalidSignature:
                raise InvalidCheckpoint(
                    f"signature by known key {sig.key_id.hex()} fails"
                ) from None
            verified += 1
    if not verified:
        raise InvalidCheckpoint("no signature by a trusted key")


def verify_checkpoint(
    checkpoint: Checkpoint | str,
    *,
    keys: Mapping[str, Ed25519PublicKey] | Iterable[Ed25519PublicKey],
    origin: str | None = None,
) -> Checkpoint:
    """Verify a checkpoint per signed-note's rules; returns it parsed.

    ``keys`` are trusted Ed25519 public keys (a kid -> key mapping or any iterable);
    each signs with the checkpoint's origin as key name. ``origin``, when given, must
    match: a checkpoint of another log says nothing about this one.
    """
    cp = parse_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
    if origin is not None and cp.origin != origin:
        raise InvalidCheckpoint(f"checkpoint origin is {cp.origin!r}, expected {origin!r}")
    _check_text(cp)
    trusted = list(keys.values()) if isinstance(keys, Mapping) else list(keys)
    _verify_signatures(cp.text(), cp.signatures, name=cp.origin, keys=trusted)
    return cp
