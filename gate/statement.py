"""A merge-gate decision as a signed in-toto Statement v1 in a DSSE envelope.

The Statement follows https://github.com/in-toto/attestation/blob/v1.0/spec/v1/statement.md:

- ``_type`` is ``https://in-toto.io/Statement/v1``;
- ``subject`` is one ResourceDescriptor naming the pull request,
  ``git+https://github.com/{owner}/{repo}/pull/{number}`` (the ``git+https`` scheme of
  SPDX download locations and in-toto's own git examples, plus GitHub's PR path), with
  ``{"gitCommit": head_sha}`` as its digest: the decision is about *that* head commit;
- ``predicateType`` is :data:`PREDICATE_TYPE`, ``https://merge-gate.dev/decision/v1``.

Why not SLSA's Verification Summary Attestation v1
(https://slsa.dev/spec/v1.0/verification_summary)? Its required fields are
``verifier.id``, ``timeVerified``, ``resourceUri``, ``policy`` (uri + digest),
``verificationResult`` (exactly ``"PASSED"`` or ``"FAILED"``) and ``verifiedLevels``
(SLSA track levels). A merge-gate decision has a three-way outcome (allowed / blocked /
needs approval), per-file risk tiers with reasons, and per-requirement approvers with
GitHub review ids. None of these has a VSA field: the outcome does not fit the two-valued
``verificationResult``, and ``verifiedLevels`` means SLSA levels. VSA lets producers add
URI-named extension fields, but consumers "MUST ignore unrecognized fields", so a VSA
consumer would read an approval-pending PR as FAILED and drop everything that says why.
A predicate of our own says exactly what was decided; a VSA can still be derived from it.

The predicate is built by the caller. It is expected to carry: the policy digest
(canonical policy digest, CODEOWNERS blob sha, base sha), per-file tiers and reasons,
requirements and what satisfied them (review ids, users), the conclusion, evaluation
time, delivery id, app id, installation id and ``gate.__version__``.

The payload is the RFC 8785 (JCS) canonical JSON of the Statement. JCS writes integers
as integers and ``json.loads`` reads them back as ``int``, so review and installation ids
round-trip exactly (JCS refuses integers beyond 2**53, which no GitHub id approaches).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gate import __version__
from gate.dsse import (
    PAYLOAD_TYPE_INTOTO,
    InvalidEnvelope,
    canonical_json,
    load_json_object,
    sign_envelope,
    verify_envelope,
)
from gate.result import Decision, DecisionKind

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://merge-gate.dev/decision/v1"
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def subject_name(*, repo: str, number: int) -> str:
    """The subject name identifying a pull request: ``git+https://github.com/o/r/pull/N``."""
    return f"git+https://github.com/{repo}/pull/{number}"


def commit_subject_name(*, repo: str, sha: str) -> str:
    """The subject name of a commit (a merge group's head): ``git+https://github.com/o/r@sha``."""
    return f"git+https://github.com/{repo}@{sha}"


def build_statement(
    *,
    repo: str,
    number: int,
    head_sha: str,
    predicate: Mapping[str, object],
    more_subjects: Sequence[tuple[str, str]] = (),
) -> dict[str, object]:
    """An in-toto Statement v1 about PR ``number`` of ``repo`` at ``head_sha``.

    ``number`` 0 names the commit itself (a merge group, or a commit whose pull
    requests are in ``more_subjects``: (subject name, commit) pairs).
    """
    if not _REPO.fullmatch(repo):
        raise ValueError(f"repo must be 'owner/name', got {repo!r}")
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ValueError("number must be a non-negative int")
    for sha in (head_sha, *(commit for _, commit in more_subjects)):
        if not _SHA.fullmatch(sha):
            raise ValueError("head_sha must be a lowercase hex git object id")
    first = (
        subject_name(repo=repo, number=number)
        if number
        else commit_subject_name(repo=repo, sha=head_sha)
    )
    subjects = dict.fromkeys([(first, head_sha), *more_subjects])
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"gitCommit": sha}} for name, sha in subjects],
        "predicateType": PREDICATE_TYPE,
        "predicate": dict(predicate),
    }


def _part(decision: Decision) -> dict[str, Any]:
    """What a decision (and each part of its tree) says, for the signed record."""
    tree = decision.to_dict()
    part: dict[str, Any] = {
        "kind": decision.kind.value,
        "pullRequest": decision.number or None,
        "headSha": decision.head_sha,
        "policy": {
            "path": decision.policy.path if decision.policy else None,
            "blob": decision.policy.blob if decision.policy else None,
            "digest": decision.policy.digest if decision.policy else None,
            "codeowners": decision.codeowners.path if decision.codeowners else None,
            "codeownersBlob": decision.codeowners.blob if decision.codeowners else None,
            "baseSha": decision.base_sha,
        },
        "conclusion": decision.outcome.value,
        "summary": decision.summary,
        "tier": decision.tier,
        "governance": {
            "governed": decision.governed,
            "agent": decision.agent,
            "author": decision.author,
            "reason": decision.governance,
        },
        "files": [
            {
                "path": f["path"],
                "previousPath": f["previous_path"],
                "tier": f["tier"],
                "denied": f["denied"],
                "reasons": f["reasons"],
                "findings": f["findings"],
            }
            for f in tree["files"]
        ],
        "requirements": [
            {
                "id": r["id"],
                "kind": r["kind"],
                "satisfied": r["satisfied"],
                "owners": r["owners"],
                "paths": r["paths"],
                "satisfiedBy": r["satisfied_by"],
                "explanation": r["explanation"],
            }
            for r in tree["requirements"]
        ],
        "notes": list(decision.notes),
        "parts": [_part(child) for child in decision.children],
    }
    if decision.delegation:
        part["delegation"] = [
            {"login": d.login, "source": d.source, "session": d.session, "logsUrl": d.logs_url}
            for d in decision.delegation
        ]
    if decision.override is not None:
        # A break-glass override is a record of its own kind: who, why, and what it overrode.
        part["override"] = True
        part["breakGlass"] = {
            "by": decision.override.by,
            "reason": decision.override.reason,
            "at": decision.override.at,
            "conclusionWithout": decision.override.without,
        }
    return part


def predicate(
    decision: Decision,
    *,
    evaluated_at: datetime,
    delivery_id: str,
    app_id: int,
    installation_id: int,
) -> dict[str, Any]:
    """The predicate of merge-gate's statement: the decision tree plus the edge's facts."""
    return {
        **_part(decision),
        "evaluatedAt": evaluated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "deliveryId": delivery_id,
        "appId": app_id,
        "installationId": installation_id,
        "version": __version__,
    }


def decision_statement(decision: Decision, *, predicate: Mapping[str, object]) -> dict[str, object]:
    """The statement about a decision: its pull request, or its commit and every pull request."""
    pulls = [p for p in decision.pulls if p.number]
    own = decision.number if decision.kind is DecisionKind.PULL else 0
    return build_statement(
        repo=decision.repo,
        number=own,
        head_sha=decision.head_sha,
        predicate=predicate,
        more_subjects=[(subject_name(repo=p.repo, number=p.number), p.head_sha) for p in pulls],
    )


def sign_decision(
    *, statement: Mapping[str, object], private_key: Ed25519PrivateKey, keyid: str
) -> dict[str, object]:
    """Sign a Statement into a DSSE envelope over its RFC 8785 canonical JSON."""
    payload = canonical_json(statement)
    return sign_envelope(
        payload=payload, payload_type=PAYLOAD_TYPE_INTOTO, private_key=private_key, keyid=keyid
    )


def verify_record(
    envelope: Mapping[str, object] | bytes | str,
    *,
    keys: Mapping[str, Ed25519PublicKey],
    expect_commit: str | None = None,
) -> dict[str, object]:
    """Verify a signed decision and return its Statement; raise :class:`InvalidEnvelope`.

    The signature is checked before the payload is parsed. ``expect_commit`` pins the
    head commit the decision must be about (a decision for another commit proves nothing
    about this one).
    """
    verified = verify_envelope(envelope, keys=keys)
    if verified.payload_type != PAYLOAD_TYPE_INTOTO:
        raise InvalidEnvelope(f"payloadType is {verified.payload_type!r}, not in-toto")
    statement = load_json_object(verified.payload)
    if statement.get("_type") != STATEMENT_TYPE:
        raise InvalidEnvelope("payload is not an in-toto Statement v1")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise InvalidEnvelope(f"predicateType is not {PREDICATE_TYPE}")
    if not isinstance(statement.get("predicate"), dict):
        raise InvalidEnvelope("predicate must be an object")
    commits = _subject_commits(statement.get("subject"))
    if expect_commit is not None and expect_commit.lower() not in commits:
        raise InvalidEnvelope(f"decision is about {', '.join(commits)}, not {expect_commit}")
    return statement


def _subject_commits(subject: object) -> list[str]:
    if not isinstance(subject, list) or not subject:
        raise InvalidEnvelope("subject must be a non-empty list")
    commits = []
    for item in subject:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidEnvelope("each subject needs a name")
        digest = item.get("digest")
        commit = digest.get("gitCommit") if isinstance(digest, dict) else None
        if not isinstance(commit, str):
            raise InvalidEnvelope("each subject needs a gitCommit digest")
        commits.append(commit.lower())
    return commits


def record_bytes(envelope: Mapping[str, object]) -> bytes:
    """The envelope as RFC 8785 canonical JSON: the form to store and publish records in.

    In this form every byte matters: JSON whitespace, which any parser ignores, is the
    only slack in a serialised envelope, and canonical JSON has none.
    """
    return canonical_json(envelope)


def record_digest(envelope: Mapping[str, object]) -> str:
    """``sha256:<hex>`` over the RFC 8785 canonical JSON of the envelope."""
    return "sha256:" + hashlib.sha256(record_bytes(envelope)).hexdigest()
