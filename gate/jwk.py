"""Ed25519 public keys as JSON Web Keys, named by their RFC 7638 thumbprint.

- RFC 8037 §2: an Ed25519 key is ``{"kty": "OKP", "crv": "Ed25519", "x": <base64url>}``
  with ``x`` the 32-byte public key, base64url without padding (RFC 7515 §2).
- RFC 7638 §3: the thumbprint is SHA-256 over the required members (``crv``, ``kty``,
  ``x`` for OKP, RFC 8037 §2) in lexicographic order with no whitespace, base64url
  encoded. It is the key id (``kid``) everywhere in merge-gate: a verifier can recompute
  it from the key, so a kid cannot silently point at another key in our own sets.
- RFC 7517 §5: a JWK Set is ``{"keys": [...]}``; members with a ``kty``/``crv`` we do
  not understand are skipped, as §5 recommends.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gate.dsse import InvalidEnvelope, load_json_object


class InvalidJWK(ValueError):
    """A JWK or JWK Set that is not a well-formed Ed25519 public key (set)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64url_decode(text: str) -> bytes:
    # RFC 7515 §2: base64url with all trailing '=' omitted; anything else is malformed.
    if "=" in text or not text.isascii():
        raise InvalidJWK("x must be base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidJWK("x is not base64url") from None
    if _b64url(data) != text:
        raise InvalidJWK("x is not canonical base64url")
    return data


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """The 32-byte RFC 8032 encoding of an Ed25519 public key."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def thumbprint(*, x: str) -> str:
    """RFC 7638 thumbprint of the Ed25519 OKP key whose ``x`` member is given."""
    canonical = rfc8785.dumps({"crv": "Ed25519", "kty": "OKP", "x": x})
    return _b64url(hashlib.sha256(canonical).digest())


def key_id(public_key: Ed25519PublicKey) -> str:
    """merge-gate's key id for a key: its RFC 7638 JWK thumbprint."""
    return thumbprint(x=_b64url(raw_public_key(public_key)))


def to_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The public JWK (RFC 8037) for signature verification, ``kid`` = thumbprint."""
    x = _b64url(raw_public_key(public_key))
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "kid": thumbprint(x=x),
        "alg": "EdDSA",
        "use": "sig",
    }


def from_jwk(jwk: Mapping[str, object]) -> tuple[str, Ed25519PublicKey]:
    """Parse an Ed25519 public JWK; returns (kid, key), kid defaulting to the thumbprint."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidJWK("not an OKP Ed25519 key")
    if "d" in jwk:
        raise InvalidJWK("JWK holds private key material ('d'); publish public keys only")
    if jwk.get("alg", "EdDSA") != "EdDSA" or jwk.get("use", "sig") != "sig":
        raise InvalidJWK("Ed25519 JWK must have alg EdDSA and use sig when present")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise InvalidJWK("x must be a string")
    raw = _b64url_decode(x)
    if len(raw) != 32:
        raise InvalidJWK("x must encode 32 bytes")
    kid = jwk.get("kid", thumbprint(x=x))
    if not isinstance(kid, str) or not kid:
        raise InvalidJWK("kid must be a non-empty string")
    return kid, Ed25519PublicKey.from_public_bytes(raw)


def build_jwks(keys: Iterable[Ed25519PublicKey]) -> dict[str, list[dict[str, str]]]:
    """A JWK Set (RFC 7517 §5) of the given public keys, in the order given."""
    return {"keys": [to_jwk(key) for key in keys]}


def parse_jwks(document: Mapping[str, object] | bytes | str) -> dict[str, Ed25519PublicKey]:
    """kid -> key for every Ed25519 key in a JWK Set; other key types are skipped."""
    try:
        doc = load_json_object(document) if isinstance(document, bytes | str) else document
    except InvalidEnvelope as exc:
        raise InvalidJWK(f"JWK Set: {exc.reason}") from None
    members = doc.get("keys")
    if not isinstance(members, list):
        raise InvalidJWK("JWK Set needs a 'keys' array")
    result: dict[str, Ed25519PublicKey] = {}
    for member in members:
        if not isinstance(member, Mapping):
            raise InvalidJWK("JWK Set members must be objects")
        if member.get("kty") != "OKP" or member.get("crv") != "Ed25519":
            continue
        kid, key = from_jwk(member)
        if kid in result:
            raise InvalidJWK(f"duplicate kid {kid!r}")
        result[kid] = key
    if not result:
        raise InvalidJWK("JWK Set has no Ed25519 keys")
    return result
