"""``gate verify``: check a signed merge-gate decision record.

    gate verify [FILE|-] (--jwks URL|FILE | --key PEM) [--expect-commit SHA]

The record is a DSSE envelope holding an in-toto Statement (:mod:`gate.statement`).
Keys come from a JWK Set (a file, or an http(s) URL such as the service's
``/.well-known/jwks.json``) or from one PEM file (public key, or private key whose public
half is used). Exit status: 0 the record is valid (a summary goes to stdout), 1 it is not
(the reason goes to stderr), 2 usage problems: unreadable file, keys that cannot be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.dsse import InvalidEnvelope, load_json_object
from gate.jwk import InvalidJWK, key_id, parse_jwks
from gate.statement import record_digest, verify_record
from webhooks.keys import KeyFileError, load_public_key

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
#: A JWK Set is small; anything larger is not one (and not worth holding in memory).
MAX_JWKS_BYTES = 1 << 20


#: A decision record of a 3000-file pull request is a few MB; far past that is not one.
MAX_RECORD_BYTES = 64 * 1024 * 1024


class UsageProblem(Exception):
    """Exit 2: the inputs could not be read, so nothing was verified."""


def fetch(url: str, *, limit: int, what: str, timeout: float = 10.0) -> bytes:
    """GET ``url`` over http(s), refusing a body over ``limit`` bytes."""
    import httpx  # imported here: only this path needs it

    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise UsageProblem(f"cannot fetch {url}: {exc}") from None
    if len(response.content) > limit:
        raise UsageProblem(f"{url}: response too large for {what}")
    return response.content


def fetch_jwks(url: str, *, timeout: float = 10.0) -> bytes:
    """GET a JWK Set over http(s)."""
    return fetch(url, limit=MAX_JWKS_BYTES, what="a JWK Set", timeout=timeout)


def load_keys(*, jwks: str | None, key: str | None) -> dict[str, Ed25519PublicKey]:
    """kid -> key from ``--jwks`` (file or URL) or ``--key`` (PEM)."""
    try:
        if key is not None:
            public = load_public_key(Path(key))
            return {key_id(public): public}
        assert jwks is not None
        if jwks.startswith(("http://", "https://")):
            return parse_jwks(fetch_jwks(jwks))
        return parse_jwks(Path(jwks).read_bytes())
    except (OSError, KeyFileError, InvalidJWK) as exc:
        raise UsageProblem(str(exc)) from None


def read_record(source: str) -> bytes:
    """The record from a file, stdin (``-``) or a URL (a details page's ``/record``)."""
    if source == "-":
        return sys.stdin.buffer.read()
    if source.startswith(("http://", "https://")):
        return fetch(source, limit=MAX_RECORD_BYTES, what="a decision record")
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise UsageProblem(f"{source}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:
    """Verify one record; see the module docstring for exit codes."""
    try:
        keys = load_keys(jwks=args.jwks, key=args.key)
        data = read_record(args.file)
    except UsageProblem as exc:
        print(f"gate verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        envelope = load_json_object(data)
        statement = verify_record(envelope, keys=keys, expect_commit=args.expect_commit)
    except InvalidEnvelope as exc:
        print(f"invalid: {exc.reason}", file=sys.stderr)
        return EXIT_INVALID
    print(json.dumps(summarize(statement, record_digest(envelope)), sort_keys=True))
    return EXIT_VALID


def summarize(statement: dict[str, object], digest: str) -> dict[str, object]:
    """The line printed for a valid record (shape checked by ``verify_record``)."""
    subjects = statement.get("subject")
    first = subjects[0] if isinstance(subjects, list) and subjects else {}
    digest_set = first.get("digest", {}) if isinstance(first, dict) else {}
    predicate = statement.get("predicate")
    return {
        "valid": True,
        "subject": first.get("name") if isinstance(first, dict) else None,
        "gitCommit": digest_set.get("gitCommit") if isinstance(digest_set, dict) else None,
        "conclusion": predicate.get("conclusion") if isinstance(predicate, dict) else None,
        "record_digest": digest,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE|URL",
        help="the record: a file, a URL ({details page}/record) or stdin (default)",
    )
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", metavar="URL|FILE", help="JWK Set with the verification keys")
    keys.add_argument("--key", metavar="PEM", help="one Ed25519 public (or private) key, PEM")
    parser.add_argument(
        "--expect-commit", metavar="SHA", help="fail unless the decision is about this head commit"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gate verify`` to the ``gate`` CLI."""
    parser = subparsers.add_parser(
        "verify",
        help="verify a signed decision record",
        description="Check a signed merge-gate decision record (DSSE + in-toto Statement).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
