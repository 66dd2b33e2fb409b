"""GitHub App authentication as GitHub does it: RS256 JWTs and installation tokens.

- https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
- https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app

Both the RSA key pair and the installation tokens live per *process*, not per
fake: githubkit caches JWTs and installation tokens in a process-wide cache
keyed only by app and installation id (not by base URL), so a token a client
got from one test's fake must still be honoured by the next test's fake.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass
from functools import cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

#: GitHub refuses a JWT whose ``exp`` is more than ten minutes ahead.
JWT_MAX_LIFETIME_S = 600
#: Clock drift the fake forgives (GitHub advises setting ``iat`` 60 s back).
CLOCK_SKEW_S = 60


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


@cache
def key_pair() -> KeyPair:
    """One RSA key per process: generating one costs ~0.1 s."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        # GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY") app keys.
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private.decode(), public.decode())


class AuthError(Exception):
    """Answered as 401 with GitHub's message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def make_jwt(app_id: int | str, private_pem: str, *, lifetime_s: int = 540) -> str:
    """A JWT the way GitHub's docs (and githubkit) build one: ``iat`` 60 s back."""
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now - 60 + lifetime_s, "iss": str(app_id)}
    return jwt.encode(claims, private_pem, algorithm="RS256")


def verify_jwt(token: str, public_keys: dict[str, str]) -> str:
    """The issuer (app id or client id) of a valid JWT, else :class:`AuthError`.

    ``public_keys`` maps every accepted issuer string to its PEM public key.
    """
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthError("A JSON web token could not be decoded") from exc
    if header.get("alg") != "RS256":
        raise AuthError("A JSON web token could not be decoded")
    issuer = str(unverified.get("iss", ""))
    key = public_keys.get(issuer)
    if key is None:
        raise AuthError(f"Integration not found: 'iss' claim {issuer!r} is unknown")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"]},
            leeway=CLOCK_SKEW_S,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError(
            "'Expiration time' claim ('exp') must be a numeric value representing"
            " the future time at which the assertion expires"
        ) from exc
    except jwt.PyJWTError as exc:
        raise AuthError("A JSON web token could not be decoded") from exc
    if int(claims["exp"]) > time.time() + JWT_MAX_LIFETIME_S + CLOCK_SKEW_S:
        raise AuthError(
            "'Expiration time' claim ('exp') is too far in the future (at most 10 minutes from now)"
        )
    return issuer


@dataclass(frozen=True)
class InstallationToken:
    token: str
    installation_id: int
    expires_at: float
    #: Repository names the token was narrowed to, or ``None`` for all of the installation's.
    repositories: tuple[str, ...] | None
    permissions: dict[str, str]

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


_tokens: dict[str, InstallationToken] = {}
_tokens_lock = threading.Lock()
_ALPHABET = string.ascii_letters + string.digits


def issue_token(
    installation_id: int,
    lifetime_s: float,
    repositories: tuple[str, ...] | None = None,
    permissions: dict[str, str] | None = None,
) -> InstallationToken:
    # GitHub's installation tokens are "ghs_" and 36 alphanumerics.
    value = "ghs_" + "".join(secrets.choice(_ALPHABET) for _ in range(36))
    tok = InstallationToken(
        value, installation_id, time.time() + lifetime_s, repositories, dict(permissions or {})
    )
    with _tokens_lock:
        _tokens[value] = tok
    return tok


def lookup_token(value: str) -> InstallationToken | None:
    with _tokens_lock:
        return _tokens.get(value)


def all_tokens() -> list[str]:
    with _tokens_lock:
        return list(_tokens)
