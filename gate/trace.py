"""The incident trace: which decisions, merges and agent actions touched something.

``gate trace`` answers an incident review's questions from the audit log alone:
which agent did it, in which pull requests and commits, who approved and when, on
whose behalf the agent worked, and whether each record is what was signed. Every
row says whether it verifies, three ways:

- **chain**: the entry is before the first entry :class:`gate.auditlog.LogVerifier`
  rejects (hash chain and seq numbers);
- **inclusion**: an RFC 9162 inclusion proof of the entry's bytes, computed from the
  log as read, leads to the root of a signed checkpoint covering it
  (https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3); an entry altered after a
  checkpoint signed it cannot do that;
- **record**: the decision's DSSE envelope verifies against the service's keys, its
  RFC 8785 digest is the ``record_digest`` the entry names, and it is about the
  entry's head commit.

A row that fails any of them is shown as failing, never silently. Pure: the caller
reads the entries, checkpoints, keys and envelopes.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import re2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gate.auditlog import LogVerifier, parse_entry
from gate.checkpoint import Checkpoint, InvalidCheckpoint, verify_checkpoint
from gate.dsse import InvalidEnvelope
from gate.globs import GlobSet
from gate.merkle import MerkleTree, ProofError, leaf_hash, verify_inclusion
from gate.statement import record_digest, verify_record

#: ``sha256:`` and the first 12 hex digits of a secret's SHA-256, as check runs show it.
_FINGERPRINT = re2.compile(r"sha256:([0-9a-f]{12})")
#: Kinds about one pull request that are joined to its latest evaluation.
_JOINED = frozenset(
    {"merged", "closed", "override", "revert", "review_requested", "rollout_confirmed"}
)
#: What separates a package name from a version or the words around it in a message.
_PACKAGE_SPLIT = re2.compile(r"[\s,;:()\[\]'\"`<>=!~^@]+")


def fingerprint(secret: str) -> str:
    """``sha256:<12 hex>`` of a raw secret: the part of its redacted form that identifies it.

    Same digest as :func:`gate.detectors.secrets.redact`; the secret is not kept.
    """
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()[:12]


def parse_fingerprint(text: str) -> str:
    """The ``sha256:<12 hex>`` inside a redacted form (``AKIA…sha256:0123456789ab``)."""
    found = _FINGERPRINT.search(text.strip().lower())
    if found is None:
        raise ValueError(f"{text!r} has no sha256:<12 hex> fingerprint")
    return f"sha256:{found.group(1)}"


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Filters of ``gate trace``; every given filter must match (``None``: any)."""

    fingerprint: str | None = None
    path: str | None = None
    package: str | None = None
    agent: str | None = None
    session: str | None = None
    approver: str | None = None
    repo: str | None = None
    pr: int | None = None
    #: Inclusive lower bound, in :func:`gate.auditlog.format_time` form.
    since: str | None = None
    _glob: GlobSet | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, *, path: str | None = None, **filters: object) -> TraceQuery:
        glob = GlobSet.compile([path]) if path else None
        return cls(path=path, _glob=glob, **filters)  # type: ignore[arg-type]

    def matches(self, row: Mapping[str, object]) -> bool:
        time = row.get("time")
        if self.since and (not isinstance(time, str) or time < self.since):
            return False
        if self.repo is not None and row.get("repo") != self.repo:
            return False
        if self.pr is not None and row.get("pr") != self.pr:
            return False
        if self.agent is not None:
            author = _joined(row, "author")
            if _joined(row, "agent") is not True or not _same(author, self.agent):
                return False
        if self.session is not None and self.session not in _sessions(row):
            return False
        if self.approver is not None and not any(
            _same(a, self.approver) for a in approver_logins(row)
        ):
            return False
        if self._glob is not None and not any(self._glob.matches(p) for p in _paths(row)):
            return False
        findings = _list(_joined(row, "findings"))
        if self.fingerprint is not None and not any(
            self.fingerprint in str(f.get("message", "")) for f in findings
        ):
            return False
        return self.package is None or any(
            _names_package(f, self.package.lower()) for f in findings
        )


def _same(login: object, wanted: str) -> bool:
    return isinstance(login, str) and login.lower() == wanted.lower()


def _list(value: object) -> list[dict[str, object]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _joined(row: Mapping[str, object], name: str) -> object:
    """A row's field, or the field of the evaluation a pull request's event was joined to."""
    if name in row:
        return row[name]
    evaluation = row.get("evaluation")
    return evaluation.get(name) if isinstance(evaluation, dict) else None


def _paths(row: Mapping[str, object]) -> list[str]:
    paths = [str(f.get("path")) for f in _list(_joined(row, "files"))]
    more = row.get("paths")  # an agent's action names the paths it touched
    if isinstance(more, list):
        paths += [str(p) for p in more]
    return paths


def _sessions(row: Mapping[str, object]) -> set[str]:
    found = {str(s) for s in (row.get("session"),) if s}
    for item in _list(_joined(row, "delegation")):
        if item.get("session"):
            found.add(str(item["session"]))
    return found


def _names_package(finding: Mapping[str, object], name: str) -> bool:
    if finding.get("detector") != "dependencies":
        return False
    words = _PACKAGE_SPLIT.split(str(finding.get("message", "")).lower())
    return name in words


def approver_logins(row: Mapping[str, object]) -> list[str]:
    approvers = _joined(row, "approvers")
    return [str(a) for a in approvers] if isinstance(approvers, list) else []


def approvals(row: Mapping[str, object]) -> list[tuple[str, str]]:
    """(login, approved at) of a row; the time is empty when the log predates it."""
    timed = {str(a.get("user")): str(a.get("at") or "") for a in _list(_joined(row, "approvals"))}
    return [(login, timed.get(login, "")) for login in approver_logins(row)]


def delegates(row: Mapping[str, object]) -> list[str]:
    """The humans on whose behalf the agent worked, as recorded with the decision."""
    return sorted({str(d.get("login")) for d in _list(_joined(row, "delegation"))})


class Check(enum.StrEnum):
    VERIFIED = "verified"
    FAILED = "FAILED"
    #: Not checkpointed yet, or the signed record is no longer kept.
    UNAVAILABLE = "unavailable"
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True, slots=True)
class TraceRow:
    seq: int
    entry: dict[str, object]
    chain: Check
    inclusion: Check
    record: Check
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return Check.FAILED in (self.chain, self.inclusion, self.record)

    @property
    def verified(self) -> bool:
        """Every check that applies passed (an uncheckpointed entry is not yet verified)."""
        checks = (self.chain, self.inclusion, self.record)
        return all(c in (Check.VERIFIED, Check.NOT_APPLICABLE) for c in checks)

    def to_json(self) -> dict[str, object]:
        e = self.entry
        return {
            "seq": self.seq,
            "time": e.get("time"),
            "kind": e.get("kind"),
            "repo": e.get("repo"),
            "pr": e.get("pr"),
            "head_sha": e.get("head_sha"),
            "merge_commit_sha": e.get("merge_commit_sha"),
            "conclusion": conclusion(e),
            "agent": _joined(e, "author"),
            "session": e.get("session"),
            "approvals": [{"user": u, "at": at} for u, at in approvals(e)],
            "delegates": delegates(e),
            "override": e.get("by") if e.get("kind") == "override" else None,
            "record_digest": e.get("record_digest") or _joined(e, "record_digest"),
            "chain": self.chain.value,
            "inclusion": self.inclusion.value,
            "record": self.record.value,
            "verified": self.verified,
            "problems": list(self.problems),
        }


def conclusion(entry: Mapping[str, object]) -> str:
    kind = entry.get("kind")
    if kind == "evaluation":
        return str(entry.get("conclusion") or "")
    if kind == "agent_action":
        return str(entry.get("decision") or "")
    if kind == "override":
        return "overridden"
    return str(kind or "")


@dataclass
class TraceScan:
    """Feed the log's entries in order; rows that match are kept with their bytes."""

    query: TraceQuery
    checkpoints: Sequence[Checkpoint]
    keys: Mapping[str, Ed25519PublicKey]
    origin: str | None = None
    _verifier: LogVerifier = field(init=False)
    _tree: MerkleTree = field(init=False)
    _matched: list[tuple[int, bytes, dict[str, object]]] = field(default_factory=list)
    _latest: dict[tuple[object, object], dict[str, object]] = field(default_factory=dict)
    _unreadable: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The chain is checked without checkpoints (each is checked on its own below),
        # so one bad checkpoint does not hide where the chain breaks.
        self._verifier = LogVerifier((), self.keys, origin=self.origin)
        self._tree = MerkleTree()

    def feed(self, raw: bytes) -> None:
        seq = self._tree.size
        self._tree.append(leaf_hash(raw))
        self._verifier.feed(raw)
        try:
            entry = parse_entry(raw)
        except ValueError:
            self._unreadable.append(seq)
            return
        kind = entry.get("kind")
        pull = (entry.get("repo"), entry.get("pr"))
        row: dict[str, object] = entry
        if kind == "evaluation":
            self._latest[pull] = entry
        elif kind in _JOINED:
            row = {**entry, "evaluation": self._latest.get(pull)}
        if self.query.matches(row):
            self._matched.append((seq, raw, row))

    @property
    def matched(self) -> list[dict[str, object]]:
        """The entries that matched so far (joined to their pull request's evaluation)."""
        return [row for _, _, row in self._matched]

    def rows(self, records: Mapping[str, Mapping[str, object]]) -> tuple[list[TraceRow], str]:
        """The matched rows, verified; and a line about the log as a whole.

        ``records``: decision envelopes by ``record_digest`` (the ones still kept).
        """
        report = self._verifier.finish()
        bad = report.first_bad_seq if not report.ok else None
        valid = self._valid_checkpoints()
        out = [
            self._row(seq, raw, row, bad=bad, valid=valid, records=records)
            for seq, raw, row in self._matched
        ]
        size = self._tree.size
        if report.ok:
            summary = f"log: {size} entries, chain intact"
        else:
            summary = f"log: {size} entries, chain BROKEN at seq {bad}: {report.reason}"
        covered = max((cp.size for cp in valid), default=0)
        summary += f"; {len(valid)} valid checkpoint(s), the latest covering {covered}"
        rejected = len(self.checkpoints) - len(valid)
        if rejected:
            summary += f"; {rejected} checkpoint(s) REJECTED"
        return out, summary

    def _valid_checkpoints(self) -> list[Checkpoint]:
        valid = []
        for cp in self.checkpoints:
            try:
                verify_checkpoint(cp, keys=self.keys, origin=self.origin)
            except InvalidCheckpoint:
                continue
            if cp.size <= self._tree.size:
                valid.append(cp)
        return sorted(valid, key=lambda cp: cp.size)

    def _row(
        self,
        seq: int,
        raw: bytes,
        row: dict[str, object],
        *,
        bad: int | None,
        valid: Sequence[Checkpoint],
        records: Mapping[str, Mapping[str, object]],
    ) -> TraceRow:
        problems: list[str] = []
        chain = Check.VERIFIED
        if bad is not None and seq >= bad:
            chain = Check.FAILED
            broken = f"the chain breaks before it (seq {bad})"
            problems.append("this entry was altered" if seq == bad else broken)
        inclusion = Check.UNAVAILABLE
        covering = next((cp for cp in valid if cp.size > seq), None)
        if covering is not None:
            try:
                verify_inclusion(
                    index=seq,
                    size=covering.size,
                    leaf=leaf_hash(raw),
                    proof=self._tree.inclusion_proof(seq, covering.size),
                    root=covering.root,
                )
                inclusion = Check.VERIFIED
            except ProofError:
                inclusion = Check.FAILED
                problems.append(f"not in the signed checkpoint of size {covering.size}")
        else:
            problems.append("no signed checkpoint covers it yet")
        record, why = self._record(row, records)
        if why:
            problems.append(why)
        return TraceRow(seq, row, chain, inclusion, record, tuple(problems))

    def _record(
        self, row: Mapping[str, object], records: Mapping[str, Mapping[str, object]]
    ) -> tuple[Check, str]:
        digest = row.get("record_digest")
        if not isinstance(digest, str):
            return Check.NOT_APPLICABLE, ""
        envelope = records.get(digest)
        if envelope is None:
            return Check.UNAVAILABLE, "the signed record is no longer kept"
        if record_digest(envelope) != digest:
            return Check.FAILED, "the kept record does not have the digest the log names"
        head = row.get("head_sha")
        try:
            verify_record(envelope, keys=self.keys, expect_commit=str(head) if head else None)
        except InvalidEnvelope as error:
            return Check.FAILED, f"the record does not verify: {error}"
        return Check.VERIFIED, ""


def scan(
    entries: Iterable[bytes],
    query: TraceQuery,
    *,
    checkpoints: Sequence[Checkpoint],
    keys: Mapping[str, Ed25519PublicKey],
) -> TraceScan:
    """Scan ``entries`` in seq order (then call :meth:`TraceScan.rows`)."""
    traced = TraceScan(query, checkpoints, keys)
    for raw in entries:
        traced.feed(raw)
    return traced


# --- output ---------------------------------------------------------------------------------


def _status(row: TraceRow) -> str:
    if row.failed:
        return "FAILED"
    return "verified" if row.verified else "unverified"


def _cells(row: TraceRow) -> list[str]:
    e = row.to_json()
    pr = f"{e['repo']}#{e['pr']}" if e.get("repo") and e.get("pr") else str(e.get("repo") or "")
    sha = str(e.get("merge_commit_sha") or e.get("head_sha") or "")[:12]
    who = ", ".join(f"{a['user']}@{a['at'] or '?'}" for a in _list(e["approvals"]))
    agent = str(e.get("agent") or "")
    if e.get("session"):
        agent += f" ({e['session']})"
    digest = str(e.get("record_digest") or "")
    return [
        str(e.get("time") or ""),
        str(e.get("kind") or ""),
        pr,
        sha,
        str(e.get("conclusion") or ""),
        agent,
        who,
        ", ".join(str(d) for d in delegates(row.entry)) or str(e.get("override") or ""),
        digest[:19],
        _status(row),
    ]


_HEADER = [
    "TIME",
    "KIND",
    "PULL REQUEST",
    "SHA",
    "CONCLUSION",
    "AGENT",
    "APPROVED BY (AT)",
    "ON BEHALF OF",
    "RECORD",
    "VERIFIES",
]


def table(rows: Sequence[TraceRow], summary: str) -> str:
    lines = [_HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADER))]
    text = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    text += [f"  seq {r.seq}: {'; '.join(r.problems)}" for r in rows if r.failed]
    return "\n".join([*text, summary]) + "\n"


def jsonl(rows: Sequence[TraceRow]) -> str:
    return "".join(json.dumps(r.to_json(), sort_keys=True) + "\n" for r in rows)


def _md(text: str) -> str:
    """A table cell: no pipes, no mentions, no markup from the log's text."""
    escaped: str = re2.sub(r"([\\`*_\[\]|<>#~$!])", r"\\\1", text)
    return escaped.replace("@", "@\u200b").replace("\n", " ")


def markdown(rows: Sequence[TraceRow], summary: str, *, title: str) -> str:
    """For the incident ticket: a table, then what failed verification."""
    out = [f"### Trace: {_md(title)}", "", f"{len(rows)} event(s). {_md(summary)}.", ""]
    out.append("| " + " | ".join(h.title() for h in _HEADER) + " |")
    out.append("|" + "---|" * len(_HEADER))
    out += ["| " + " | ".join(_md(c) for c in _cells(r)) + " |" for r in rows]
    failed = [r for r in rows if r.failed]
    if failed:
        out += ["", "**Failing verification:**", ""]
        out += [f"- seq {r.seq}: {_md('; '.join(r.problems))}" for r in failed]
    return "\n".join(out) + "\n"
