"""The seam content detectors plug into.

A detector reads what a change adds (and, when it asks, whole file texts at
the base and head of the pull request) and reports findings. The policy names
detectors per tier; a file on which a tier's detector finds something is in
that tier. A finding with ``deny`` set denies the pull request outright.

Detectors are pure: the edge fetches the texts named by ``wanted`` before the
engine runs, so the engine never does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gate.diff import AddedLine
from gate.model import ChangedFile, Contents


@dataclass(frozen=True, slots=True)
class Finding:
    detector: str
    #: The rule that fired, e.g. ``aws-access-key-id`` or ``new-package``.
    rule: str
    path: str
    #: Line in the head version of the file; ``None`` for a whole-file finding.
    line: int | None
    #: Safe to render anywhere: a detector never puts a secret in its message, and
    #: the engine redacts whatever one quotes from the pull request (``redact_text``).
    message: str
    deny: bool = False


@dataclass(frozen=True, slots=True)
class ScanInput:
    file: ChangedFile
    added: Sequence[AddedLine]
    contents: Contents


class Detector(Protocol):
    name: str

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        """(side, path) texts this detector needs for ``file``; side is base or head."""
        ...

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        """Findings for one changed file."""
        ...
