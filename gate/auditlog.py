"""The tamper-evident audit log: entries, their verification, and the audit query.

An entry is one RFC 8785 (JCS) canonical JSON object::

    {"kind": "evaluation", "prev": "<hex>", "seq": 7, "time": "2025-06-01T12:00:00Z", ...}

- ``seq`` counts from 0 and equals the entry's leaf index in the Merkle tree;
- ``prev`` is the hex SHA-256 of the previous entry's bytes (64 zeros for entry 0), a
  hash chain that pins every entry to the one before it;
- ``time`` is UTC, ``YYYY-MM-DDTHH:MM:SSZ`` (RFC 3339, fixed width, so comparing the
  strings compares the times);
- ``kind`` is one of :data:`KINDS`; the other members are the kind's fields.

Each entry's bytes are also a leaf of an RFC 9162 Merkle tree (see :mod:`gate.merkle`)
whose heads are published as signed checkpoints (see :mod:`gate.checkpoint`). The chain
names the exact entry that was altered or removed; the checkpoints catch what the chain
alone cannot: a truncated tail, or a rewrite that recomputed every later ``prev``.

Evaluation entries carry at least ``repo``, ``pr``, ``head_sha``, ``author``, ``agent``
(bool), ``conclusion``, ``files`` ([{"path", "tier"}]), ``approvers``, ``record_digest``
and ``delivery_id``. When a PR closes merged the service appends a ``merged`` entry with
``repo``, ``pr``, ``head_sha``, ``author``, ``merged`` (true) and ``merged_by`` (``agent``
is optional: the join takes it from the evaluation); a PR closed unmerged gets ``closed``.
An ``override`` entry records a break-glass request when it arrives (``status``
``requested``) and once it took effect (``applied``, with the record digest and the
review issue); ``revert`` records a revert pull request ``gate revert`` opened.
Evaluation entries also carry ``approvals`` (who and when), redacted detector
``findings``, the ``decision_id`` of the signed record and, when set, ``delegation``
and ``override``; ``gate trace`` (:mod:`gate.trace`) reads all of them.
The audit query joins each ``merged`` entry to the last evaluation of that PR (of the
same head if there is one) before it, so "every PR an agent merged in the last 7 days,
with files, tiers and approvers" is ``AuditQuery(agent=ANY_AGENT, conclusion="merged",
since=...)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import rfc8785

from gate.merkle import CompactRange, leaf_hash

if TYPE_CHECKING:  # verification imports them when it runs: appending needs neither
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from gate.checkpoint import Checkpoint

GENESIS_PREV = "0" * 64
KINDS = frozenset(
    {
        "evaluation",
        "secret_cleared",
        "review_requested",
        "rollout_confirmed",
        "delivery_rejected",
        "error",
        "key_rotated",
        "dead_letter",
        "merged",
        "closed",
        # A break-glass override of a decision, by whom and why.
        "override",
        # A revert pull request opened for a merged pull request.
        "revert",
        # An agent's tool call judged by ``gate hook`` (allow, ask or deny).
        "agent_action",
    }
)
RESERVED = frozenset({"seq", "time", "kind", "prev"})
#: ``AuditQuery.agent`` value meaning "authored by any agent".
ANY_AGENT = "*"
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def format_time(moment: datetime) -> str:
    """The entry time format: UTC, whole seconds, ``Z``."""
    if moment.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`."""
    if not _TIME.fullmatch(text):
        raise ValueError(f"time {text!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def make_entry(
    *, seq: int, time: datetime | str, kind: str, prev: str, fields: Mapping[str, object]
) -> bytes:
    """The canonical bytes of entry ``seq``; ``prev`` is :func:`entry_hash` of the last."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError("seq must be a non-negative int")
    when = format_time(time) if isinstance(time, datetime) else time
    if not _TIME.fullmatch(when):
        raise ValueError(f"time {when!r} is not YYYY-MM-DDTHH:MM:SSZ")
    if kind not in KINDS:
        raise ValueError(f"unknown entry kind {kind!r}")
    if not _HEX64.fullmatch(prev) or (seq == 0) != (prev == GENESIS_PREV):
        raise ValueError("prev must be the previous entry's hex SHA-256 (zeros for seq 0)")
    clash = RESERVED.intersection(fields)
    if clash:
        raise ValueError(f"fields may not set {sorted(clash)}")
    entry = {**fields, "seq": seq, "time": when, "kind": kind, "prev": prev}
    return rfc8785.dumps(cast(Any, entry))  # RFC 8785, as gate.dsse.canonical_json


def entry_hash(entry: bytes) -> str:
    """Hex SHA-256 of an entry: the ``prev`` of the entry after it."""
    return hashlib.sha256(entry).hexdigest()


def parse_entry(entry: bytes) -> dict[str, object]:
    """The JSON object of an entry (no verification: see :func:`verify_log`)."""
    value = json.loads(entry)
    if not isinstance(value, dict):
        raise ValueError("entry is not a JSON object")
    return value


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify_log` found; ``first_bad_seq`` names the first suspect entry."""

    ok: bool
    #: Entries read and accepted (all of them when ``ok``).
    size: int
    #: RFC 9162 root of those entries.
    root: bytes
    first_bad_seq: int | None = None
    reason: str | None = None
    #: Checkpoints whose signature and root matched the log.
    checkpoints_verified: int = 0
    latest_checkpoint: Checkpoint | None = None


class LogVerifier:
    """Incremental :func:`verify_log`: ``feed`` entries in order, then ``finish``.

    Memory is O(number of checkpoints + log2 n), so a million-entry log streams through.
    """

    def __init__(
        self,
        checkpoints: Iterable[Checkpoint],
        keys: Mapping[str, Ed25519PublicKey],
        *,
        origin: str | None = None,
    ) -> None:
        from gate.checkpoint import InvalidCheckpoint, verify_checkpoint

        self._size = 0
        self._prev = GENESIS_PREV
        self._compact = CompactRange()
        self._failure: tuple[int | None, str] | None = None
        self._verified = 0
        self._latest: Checkpoint | None = None
        self._good_size = 0  # entries below this are vouched for by a matching checkpoint
        self._pending: list[Checkpoint] = []
        by_size: dict[int, Checkpoint] = {}
        for number, cp in enumerate(checkpoints):
            try:
                verify_checkpoint(cp, keys=keys, origin=origin)
            except InvalidCheckpoint as exc:
                self._failure = (None, f"checkpoint #{number} (size {cp.size}) is not valid: {exc}")
                return
            seen = by_size.setdefault(cp.size, cp)
            if seen.root != cp.root:
                self._failure = (None, f"two signed checkpoints of size {cp.size} disagree")
                return
        self._pending = sorted(by_size.values(), key=lambda cp: cp.size, reverse=True)
        self._check_checkpoints()

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def feed(self, entry: bytes) -> bool:
        """Check the next entry; returns False once the log is known bad (stop feeding)."""
        if self._failure is not None:
            return False
        i = self._size
        try:
            obj = json.loads(entry)
        except (UnicodeDecodeError, json.JSONDecodeError):
            obj = None
        if not isinstance(obj, dict):
            return self._fail(i, f"entry {i} is not a JSON object")
        seq = obj.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int):
            return self._fail(i, f"entry at position {i} has no integer seq")
        if seq > i:
            return self._fail(i, f"entry {i} is missing: the entry in its place has seq {seq}")
        if seq < i:
            return self._fail(i, f"seq {seq} repeats or goes backwards at position {i}")
        if obj.get("prev") != self._prev:
            if i == 0:
                return self._fail(0, "entry 0 must have prev of 64 zeros")
            if self._good_size >= i:  # a checkpoint vouches for entry i-1: i's prev is wrong
                return self._fail(i, f"entry {i}'s prev does not match entry {i - 1}")
            return self._fail(
                i - 1, f"entry {i - 1} does not hash to entry {i}'s prev: it was altered"
            )
        if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("time"), str):
            return self._fail(i, f"entry {i} lacks a kind or time")
        self._prev = hashlib.sha256(entry).hexdigest()
        self._compact.append(leaf_hash(entry))
        self._size = i + 1
        return self._check_checkpoints()

    def finish(self) -> VerifyReport:
        """The report; a checkpoint larger than the log means entries were cut off."""
        if self._failure is None and self._pending:
            cp = self._pending[-1]
            self._fail(
                self._size,
                f"log has {self._size} entries but a signed checkpoint has {cp.size}: "
                f"entries {self._size}..{cp.size - 1} were removed",
            )
        bad, reason = self._failure if self._failure else (None, None)
        return VerifyReport(
            ok=self._failure is None,
            size=self._size,
            root=self._compact.root(),
            first_bad_seq=bad,
            reason=reason,
            checkpoints_verified=self._verified,
            latest_checkpoint=self._latest,
        )

    def _check_checkpoints(self) -> bool:
        while self._pending and self._pending[-1].size == self._size:
            cp = self._pending.pop()
            if cp.root != self._compact.root():
                return self._fail(
                    self._good_size,
                    f"entries {self._good_size}..{self._size - 1} do not match the signed "
                    f"checkpoint of size {self._size}: one of them was altered or removed",
                )
            self._good_size = self._size
            self._verified += 1
            self._latest = cp
        return True

    def _fail(self, seq: int | None, reason: str) -> bool:
        self._failure = (seq, reason)
        return False


def verify_log(
    entries: Iterable[bytes],
    checkpoints: Iterable[Checkpoint],
    keys: Mapping[str, Ed25519PublicKey],
    *,
    origin: str | None = None,
) -> VerifyReport:
    """Check the chain, the seq numbers and the tree against signed checkpoints."""
    verifier = LogVerifier(checkpoints, keys, origin=origin)
    for entry in entries:
        if not verifier.feed(entry):
            break
    return verifier.finish()


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``gate audit``; ``None`` means "any"."""

    #: An author login whose entries have ``agent: true``, or :data:`ANY_AGENT`.
    agent: str | None = None
    repo: str | None = None
    pr: int | None = None
    #: Inclusive / exclusive bounds, in :func:`format_time` form.
    since: str | None = None
    until: str | None = None
    #: An evaluation conclusion (``allowed``, ``blocked`` ...) or ``merged``.
    conclusion: str | None = None
    kinds: frozenset[str] | None = field(default=None)

    def matches(self, row: Mapping[str, object]) -> bool:
        """True if an entry (a merged row joined by :func:`merged_row`) passes the filters."""
        kind, time = row.get("kind"), row.get("time")
        if self.kinds is not None and kind not in self.kinds:
            return False
        if not isinstance(time, str):
            return False
        if (self.since and time < self.since) or (self.until and time >= self.until):
            return False
        if self.repo is not None and row.get("repo") != self.repo:
            return False
        if self.pr is not None and row.get("pr") != self.pr:
            return False
        if self.agent is not None:
            if _joined(row, "agent") is not True:
                return False
            if self.agent != ANY_AGENT and _joined(row, "author") != self.agent:
                return False
        if self.conclusion == "merged":
            return kind == "merged" and row.get("merged", True) is not False
        if self.conclusion is not None:
            return kind == "evaluation" and row.get("conclusion") == self.conclusion
        return True


def _joined(row: Mapping[str, object], name: str) -> object:
    """A row's field, falling back to the evaluation a merged row was joined to."""
    if name in row:
        return row[name]
    evaluation = row.get("evaluation")
    return evaluation.get(name) if isinstance(evaluation, dict) else None


def merged_row(
    merged: Mapping[str, object], evaluation: Mapping[str, object] | None
) -> dict[str, object]:
    """A ``merged`` entry with the evaluation it was merged on under ``evaluation``."""
    return {**merged, "evaluation": dict(evaluation) if evaluation is not None else None}


class QueryScan:
    """Incremental :func:`run_query`: ``feed`` entries in seq order, read ``rows``."""

    def __init__(self, query: AuditQuery) -> None:
        self.query = query
        self.rows: list[dict[str, object]] = []
        self._latest: dict[tuple[object, object], dict[str, object]] = {}
        self._by_head: dict[tuple[object, object, object], dict[str, object]] = {}

    def feed(self, raw: bytes) -> None:
        entry = parse_entry(raw)
        kind = entry.get("kind")
        row: dict[str, object] = entry
        pull = (entry.get("repo"), entry.get("pr"))
        if kind == "evaluation":
            self._latest[pull] = self._by_head[(*pull, entry.get("head_sha"))] = entry
        elif kind == "merged":
            evaluation = self._by_head.get((*pull, entry.get("head_sha"))) or self._latest.get(pull)
            row = merged_row(entry, evaluation)
        if self.query.matches(row):
            self.rows.append(row)


def run_query(entries: Iterable[bytes], query: AuditQuery) -> list[dict[str, object]]:
    """Scan entries in seq order; join merged entries to their PR's last evaluation."""
    scan = QueryScan(query)
    for raw in entries:
        scan.feed(raw)
    return scan.rows


def query_for(
    *,
    agent: str | None = None,
    repo: str | None = None,
    pr: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    conclusion: str | None = None,
) -> AuditQuery:
    """An :class:`AuditQuery` from datetimes; a conclusion limits the kinds scanned."""
    kinds = None
    if conclusion is not None:
        kinds = frozenset({"merged"} if conclusion == "merged" else {"evaluation"})
    return AuditQuery(
        agent=agent,
        repo=repo,
        pr=pr,
        since=format_time(since) if since else None,
        until=format_time(until) if until else None,
        conclusion=conclusion,
        kinds=kinds,
    )
