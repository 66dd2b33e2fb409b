"""DSSE envelopes, JWKs and signed decision Statements (gate.dsse, gate.jwk, gate.statement)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey  # type: ignore[attr-defined]

import gate
from gate.dsse import (
    PAYLOAD_TYPE_INTOTO,
    InvalidEnvelope,
    b64decode,
    pae,
    sign_envelope,
    verify_envelope,
)
from gate.jwk import InvalidJWK, build_jwks, from_jwk, key_id, parse_jwks, thumbprint, to_jwk
from gate.statement import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    build_statement,
    record_bytes,
    record_digest,
    sign_decision,
    verify_record,
)

HEAD = "0123456789abcdef0123456789abcdef01234567"
# RFC 8037 appendix A.1/A.2 example key (public part) and its RFC 7638 thumbprint (A.3).
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def keys(key: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {key_id(key.public_key()): key.public_key()}


def predicate() -> dict[str, object]:
    return {
        "policy": {
            "digest": {"sha256": "ab" * 32},
            "codeownersBlob": "cd" * 20,
            "baseSha": "ef" * 20,
        },
        "files": [{"path": "db/migrate/1_add.rb", "tier": "high", "reasons": ["migration"]}],
        "requirements": [
            {"name": "code-owner", "satisfiedBy": [{"user": "alice", "reviewId": 2_000_000_001}]}
        ],
        "conclusion": "allowed",
        "evaluatedAt": "2025-06-01T12:00:00Z",
        "deliveryId": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "appId": 123456,
        "installationId": 9_007_199_254_740_991,  # 2**53 - 1: the largest JCS integer
        "mergeGateVersion": gate.__version__,
    }


def signed(key: Ed25519PrivateKey) -> dict[str, object]:
    statement = build_statement(
        repo="acme/widgets", number=42, head_sha=HEAD, predicate=predicate()
    )
    return sign_decision(statement=statement, private_key=key, keyid=key_id(key.public_key()))


# --- PAE and base64 --------------------------------------------------------------------


def test_pae_matches_the_dsse_protocol_test_vector() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert pae("t\u00e9", b"\xff") == b"DSSEv1 3 t\xc3\xa9 1 \xff"


@pytest.mark.parametrize("text", ["aGk", "aGk=", "-_8", "-_8=", "+/8=", "+/8"])
def test_b64decode_accepts_standard_and_urlsafe_with_or_without_padding(text: str) -> None:
    assert b64decode(text) in (b"hi", b"\xfb\xff")


@pytest.mark.parametrize("text", ["aGl=", "aG k=", "aGk==", "a", "-+/8", "aGk=\n", "aé=="])
def test_b64decode_rejects_non_canonical_or_malformed(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError
        b64decode(text)


# --- sign / verify ---------------------------------------------------------------------


def test_roundtrip_and_keyid(key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]) -> None:
    kid = next(iter(keys))
    env = sign_envelope(payload=b"{}", payload_type="x", private_key=key, keyid=kid)
    assert env["signatures"] == [{"keyid": kid, "sig": env["signatures"][0]["sig"]}]  # type: ignore[index]
    verified = verify_envelope(env, keys=keys)
    assert (verified.payload, verified.payload_type, verified.keyid) == (b"{}", "x", kid)


def test_verifies_with_any_of_several_keys(key: Ed25519PrivateKey) -> None:
    others = {f"other{i}": Ed25519PrivateKey.generate().public_key() for i in range(3)}
    mine = key_id(key.public_key())
    env = sign_envelope(payload=b"p", payload_type="t", private_key=key, keyid=mine)
    assert verify_envelope(env, keys={**others, mine: key.public_key()}).keyid == mine
    # A keyid narrows the keys tried to that one: an unknown keyid matches no key.
    with pytest.raises(InvalidEnvelope, match="no signature verifies"):
        verify_envelope(env, keys={**others, "renamed": key.public_key()})
    # Without a keyid, every trusted key is tried.
    env["signatures"] = [{"sig": env["signatures"][0]["sig"]}]  # type: ignore[index]
    assert verify_envelope(env, keys={**others, "renamed": key.public_key()}).keyid == "renamed"
    with pytest.raises(InvalidEnvelope, match="no signature verifies"):
        verify_envelope(env, keys=others)


def test_accepts_urlsafe_unpadded_encodings(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    payload = bytes(range(250, 256)) * 7
    kid = next(iter(keys))
    env = sign_envelope(payload=payload, payload_type="t", private_key=key, keyid=kid)
    sig = base64.b64decode(env["signatures"][0]["sig"])  # type: ignore[index]
    env2 = {
        "payload": base64.urlsafe_b64encode(payload).decode().rstrip("="),
        "payloadType": "t",
        "signatures": [{"keyid": kid, "sig": base64.urlsafe_b64encode(sig).decode().rstrip("=")}],
    }
    assert verify_envelope(json.dumps(env2), keys=keys).payload == payload


def test_signature_is_checked_before_the_payload_is_parsed(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    # An unsigned (forged) payload that is not even JSON must fail on the signature.
    env = signed(key)
    env["payload"] = base64.b64encode(b"\x00not json").decode()
    with pytest.raises(InvalidEnvelope, match="no signature verifies"):
        verify_record(env, keys=keys)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e.pop("payload"), "payload and payloadType"),
        (lambda e: e.update(signatures=[]), "non-empty list"),
        (lambda e: e.update(signatures=[{"sig": "AA=="}] * 17), "more than 16"),
        (lambda e: e.update(signatures=[{"keyid": "k"}]), "string 'sig'"),
        (lambda e: e.update(payloadType=""), "payload and payloadType"),
        (lambda e: e.update(payload="%%%"), "payload: "),
        (lambda e: e["signatures"][0].update(jeyid="k"), "only 'keyid' and 'sig'"),
        (lambda e: e["signatures"][0].update(keyid=7), "keyid must be a string"),
    ],
)
def test_malformed_envelopes_say_why(
    key: Ed25519PrivateKey,
    keys: dict[str, Ed25519PublicKey],
    mutate: Callable[[dict[str, object]], object],
    reason: str,
) -> None:
    env = sign_envelope(payload=b"p", payload_type="t", private_key=key, keyid=next(iter(keys)))
    mutate(env)
    with pytest.raises(InvalidEnvelope, match=reason) as info:
        verify_envelope(env, keys=keys)
    assert reason.strip() in info.value.reason


@pytest.mark.parametrize("text", ['{"payload": 1, "payload": 2}', "[1]", "{", '{"a": NaN}'])
def test_json_that_is_not_one_plain_object_is_refused(
    text: str, keys: dict[str, Ed25519PublicKey]
) -> None:
    with pytest.raises(InvalidEnvelope):
        verify_envelope(text, keys=keys)


# --- interoperability with securesystemslib (both ways) --------------------------------


def test_our_envelope_verifies_with_securesystemslib(key: Ed25519PrivateKey) -> None:
    kid = key_id(key.public_key())
    env = signed(key)
    sslib_key = SSlibKey.from_crypto(key.public_key(), keyid=kid)
    envelope = Envelope.from_dict(json.loads(json.dumps(env)))
    assert envelope.verify([sslib_key], 1) == {kid: sslib_key}
    assert json.loads(envelope.payload)["predicateType"] == PREDICATE_TYPE
    # ... and securesystemslib rejects it once the payload changes.
    envelope.payload = envelope.payload.replace(b"allowed", b"blocked")
    with pytest.raises(VerificationError):
        envelope.verify([sslib_key], 1)


def test_securesystemslib_envelope_verifies_with_ours(key: Ed25519PrivateKey) -> None:
    kid = key_id(key.public_key())  # we publish the RFC 7638 thumbprint as the kid
    signer = CryptoSigner(key, SSlibKey.from_crypto(key.public_key(), keyid=kid))
    statement = build_statement(repo="acme/widgets", number=7, head_sha=HEAD, predicate=predicate())
    envelope = Envelope(json.dumps(statement).encode(), PAYLOAD_TYPE_INTOTO, {})
    envelope.sign(signer)
    wire = json.dumps(envelope.to_dict())
    assert json.loads(wire)["signatures"][0]["keyid"] == kid
    assert verify_record(wire, keys={kid: key.public_key()}, expect_commit=HEAD) == statement
    # securesystemslib's own default keyid works too, given that kid for the key.
    default = CryptoSigner(key)
    envelope = Envelope(json.dumps(statement).encode(), PAYLOAD_TYPE_INTOTO, {})
    envelope.sign(default)
    sslib_kid = default.public_key.keyid
    assert (
        verify_envelope(json.dumps(envelope.to_dict()), keys={sslib_kid: key.public_key()}).keyid
        == sslib_kid
    )


# --- tampering: flip any byte ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_flipping_any_byte_of_payload_or_signature_fails(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey], data: st.DataObject
) -> None:
    env = signed(key)
    payload = bytearray(base64.b64decode(env["payload"]))  # type: ignore[arg-type]
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))  # type: ignore[index]
    target = data.draw(st.sampled_from(["payload", "sig"]))
    buffer = payload if target == "payload" else sig
    position = data.draw(st.integers(0, len(buffer) - 1))
    buffer[position] ^= data.draw(st.integers(1, 255))
    forged = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": env["payloadType"],
        "signatures": [{"keyid": next(iter(keys)), "sig": base64.b64encode(sig).decode()}],
    }
    with pytest.raises(InvalidEnvelope):
        verify_record(forged, keys=keys)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_flipping_any_byte_of_the_serialized_record_fails(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey], data: st.DataObject
) -> None:
    wire = bytearray(record_bytes(signed(key)))  # canonical: no whitespace to vary
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidEnvelope):
        verify_record(bytes(wire), keys=keys)


# --- JWK -------------------------------------------------------------------------------


def test_rfc8037_a3_thumbprint() -> None:
    assert thumbprint(x=RFC8037_X) == RFC8037_THUMBPRINT
    kid, public = from_jwk({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X})
    assert kid == RFC8037_THUMBPRINT == key_id(public)
    # The RFC's private key (A.1) derives the same public key.
    seed = base64.urlsafe_b64decode(RFC8037_D + "=")
    assert key_id(Ed25519PrivateKey.from_private_bytes(seed).public_key()) == RFC8037_THUMBPRINT


def test_thumbprint_is_sha256_of_the_rfc7638_canonical_members() -> None:
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"%s"}' % RFC8037_X  # noqa: UP031
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert thumbprint(x=RFC8037_X) == expected.decode()


def test_jwk_and_jwks_roundtrip(key: Ed25519PrivateKey) -> None:
    jwk = to_jwk(key.public_key())
    assert jwk["kty"] == "OKP"
    assert jwk["crv"] == "Ed25519"
    assert "=" not in jwk["x"]
    assert (jwk["alg"], jwk["use"], jwk["kid"]) == ("EdDSA", "sig", key_id(key.public_key()))
    other = Ed25519PrivateKey.generate().public_key()
    doc = build_jwks([key.public_key(), other])
    parsed = parse_jwks(json.dumps({"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"}, *doc["keys"]]}))
    assert list(parsed) == [key_id(key.public_key()), key_id(other)]


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X + "="},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X[:-2]},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "d": RFC8037_D},
        {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "alg": "ES256"},
        {"kty": "OKP", "crv": "X25519", "x": RFC8037_X},
    ],
)
def test_bad_jwks_are_refused(jwk: dict[str, str]) -> None:
    with pytest.raises(InvalidJWK):
        from_jwk(jwk)


def test_jwks_without_usable_keys_or_with_duplicate_kids() -> None:
    with pytest.raises(InvalidJWK, match="no Ed25519"):
        parse_jwks({"keys": []})
    member = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    with pytest.raises(InvalidJWK, match="duplicate"):
        parse_jwks({"keys": [member, member]})


# --- Statement -------------------------------------------------------------------------


def test_statement_shape_and_integers_stay_integers(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    env = signed(key)
    statement = verify_record(env, keys=keys, expect_commit=HEAD.upper())
    assert statement["_type"] == STATEMENT_TYPE
    assert statement["subject"] == [
        {"name": "git+https://github.com/acme/widgets/pull/42", "digest": {"gitCommit": HEAD}}
    ]
    got = statement["predicate"]
    assert got == predicate()
    assert isinstance(got, dict)
    assert type(got["appId"]) is int
    assert type(got["installationId"]) is int
    assert got["installationId"] == 2**53 - 1
    review_id = got["requirements"][0]["satisfiedBy"][0]["reviewId"]
    assert type(review_id) is int
    assert review_id == 2_000_000_001
    # The payload is canonical JSON: no whitespace, sorted keys, ints without ".0".
    payload = base64.b64decode(env["payload"])  # type: ignore[arg-type]
    assert b'"appId":123456,' in payload
    assert b" " not in payload.split(b'"evaluatedAt"')[0]


def test_expect_commit_must_match(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    with pytest.raises(InvalidEnvelope, match="not ffff"):
        verify_record(signed(key), keys=keys, expect_commit="f" * 40)


def test_wrong_payload_type_or_predicate_is_refused(
    key: Ed25519PrivateKey, keys: dict[str, Ed25519PublicKey]
) -> None:
    other = sign_envelope(
        payload=b"{}", payload_type="text/plain", private_key=key, keyid=next(iter(keys))
    )
    with pytest.raises(InvalidEnvelope, match="payloadType"):
        verify_record(other, keys=keys)
    vsa = json.dumps(
        {"_type": STATEMENT_TYPE, "predicateType": "https://slsa.dev/verification_summary/v1"}
    )
    env = sign_envelope(
        payload=vsa.encode(),
        payload_type=PAYLOAD_TYPE_INTOTO,
        private_key=key,
        keyid=next(iter(keys)),
    )
    with pytest.raises(InvalidEnvelope, match="predicateType"):
        verify_record(env, keys=keys)


@pytest.mark.parametrize(
    ("repo", "number", "head"),
    [("acme", 1, HEAD), ("acme/w", -1, HEAD), ("acme/w", True, HEAD), ("acme/w", 1, "XYZ")],
)
def test_build_statement_validates(repo: str, number: int, head: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        build_statement(repo=repo, number=number, head_sha=head, predicate={})


def test_record_digest_is_over_the_canonical_envelope(key: Ed25519PrivateKey) -> None:
    env = signed(key)
    reordered = json.loads(json.dumps(env, indent=3, sort_keys=True))
    digest = record_digest(env)
    assert digest == record_digest(reordered)
    assert digest.startswith("sha256:")
    assert len(digest) == 7 + 64
    canonical = json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
    assert digest == "sha256:" + hashlib.sha256(canonical).hexdigest()
