"""DSSE v1 envelopes signed with Ed25519, written by hand on ``cryptography``.

Implements the Dead Simple Signing Envelope protocol and its JSON envelope:
https://github.com/secure-systems-lab/dsse/blob/v1.0.0/protocol.md and
https://github.com/secure-systems-lab/dsse/blob/v1.0.0/envelope.md

- The signature covers ``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``
  (LEN in ASCII decimal), never the JSON, so the envelope's serialisation does not matter.
- Verification checks a signature over PAE *before* anything parses the payload: the
  payload is only handed back once a trusted key has signed it.
- ``keyid`` is an unauthenticated hint that "may only be used to narrow the selection of
  possible keys to try" (protocol.md). We narrow: a signature with a keyid is checked with
  the trusted key of that id only (an unknown id matches no key); one without a keyid is
  tried against every trusted key. Narrowing never accepts more than trying every key
  would, and it means an envelope whose keyid was changed no longer verifies. Signature
  objects with members other than ``keyid`` and ``sig`` are refused for the same reason.
- Base64 may be standard or URL-safe (RFC 4648 §4/§5), with or without padding, as the
  envelope spec allows, but must be canonical so one envelope has one meaning.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: The payloadType of an in-toto Statement (in-toto attestation spec, envelope.md).
PAYLOAD_TYPE_INTOTO = "application/vnd.in-toto+json"
#: More signatures than this is not an envelope we wrote; refuse before doing work.
MAX_SIGNATURES = 16
_URL_TO_STD = str.maketrans("-_", "+/")


class InvalidEnvelope(ValueError):
    """The envelope is malformed or no trusted key signed it; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    """A payload some trusted key signed, and the key id (in ``keys``) that did."""

    payload_type: str
    payload: bytes
    keyid: str


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 Pre-Authentication Encoding (protocol.md); LEN counts bytes."""
    encoded_type = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(encoded_type), encoded_type, len(payload), payload)


def b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not; reject non-canonical input."""
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if not text.isascii() or (padding and (padding > 2 or len(text) % 4)):
        raise ValueError("malformed base64")
    urlsafe = "-" in body or "_" in body
    if urlsafe and ("+" in body or "/" in body):
        raise ValueError("base64 mixes the standard and URL-safe alphabets")
    standard = body.translate(_URL_TO_STD)
    try:
        data = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"malformed base64: {exc}") from None
    # Non-zero trailing bits decode to the same bytes; refusing them keeps encodings unique.
    if base64.b64encode(data).decode("ascii").rstrip("=") != standard:
        raise ValueError("non-canonical base64")
    return data


def b64encode(data: bytes) -> str:
    """Standard, padded base64: what DSSE implementations emit by default."""
    return base64.b64encode(data).decode("ascii")


def sign_envelope(
    *, payload: bytes, payload_type: str, private_key: Ed25519PrivateKey, keyid: str
) -> dict[str, object]:
    """Sign ``payload`` into a one-signature DSSE envelope (a JSON-ready dict)."""
    signature = private_key.sign(pae(payload_type, payload))
    return {
        "payload": b64encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": keyid, "sig": b64encode(signature)}],
    }


def verify_envelope(
    envelope: Mapping[str, object] | bytes | str, *, keys: Mapping[str, Ed25519PublicKey]
) -> Verified:
    """Return the payload once a signature by one of ``keys`` (kid -> key) verifies."""
    env = load_json_object(envelope) if isinstance(envelope, bytes | str) else envelope
    payload_b64, payload_type, signatures = (
        env.get("payload"),
        env.get("payloadType"),
        env.get("signatures"),
    )
    if not isinstance(payload_b64, str) or not isinstance(payload_type, str) or not payload_type:
        raise InvalidEnvelope("payload and payloadType must be non-empty strings")
    if not isinstance(signatures, list) or not signatures:
        raise InvalidEnvelope("signatures must be a non-empty list")
    if len(signatures) > MAX_SIGNATURES:
        raise InvalidEnvelope(f"more than {MAX_SIGNATURES} signatures")
    if not keys:
        raise InvalidEnvelope("no verification keys")
    try:
        payload = b64decode(payload_b64)
    except ValueError as exc:
        raise InvalidEnvelope(f"payload: {exc}") from None
    message = pae(payload_type, payload)
    for entry in signatures:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("sig"), str):
            raise InvalidEnvelope("each signature needs a string 'sig'")
        if not set(entry) <= {"keyid", "sig"}:
            # Else a renamed "keyid" would silently widen the keys tried (see above).
            raise InvalidEnvelope("a signature has only 'keyid' and 'sig' members")
        hint = entry.get("keyid")
        try:
            signature = b64decode(entry["sig"])
        except ValueError as exc:
            raise InvalidEnvelope(f"sig: {exc}") from None
        if hint is not None and not isinstance(hint, str):
            raise InvalidEnvelope("keyid must be a string")
        candidates = list(keys) if not hint else [hint] if hint in keys else []
        for kid in candidates:
            try:
                keys[kid].verify(signature, message)
            except InvalidSignature:
                continue
            return Verified(payload_type=payload_type, payload=payload, keyid=kid)
    raise InvalidEnvelope(f"no signature verifies with a trusted key (trusted: {', '.join(keys)})")


def canonical_json(value: object) -> bytes:
    """RFC 8785 (JCS) canonical JSON; ints stay ints, floats must be finite."""
    return rfc8785.dumps(cast(Any, value))


def load_json_object(data: bytes | str) -> dict[str, object]:
    """Parse one JSON object; refuse duplicate names (RFC 8259 §4 leaves them open) and NaN."""

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        result = dict(pairs)
        if len(result) != len(pairs):
            raise InvalidEnvelope("duplicate member name in JSON object")
        return result

    def no_constants(name: str) -> object:
        raise InvalidEnvelope(f"{name} is not JSON")

    try:
        value = json.loads(data, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidEnvelope(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidEnvelope("not a JSON object")
    return value
