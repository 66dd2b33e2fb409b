"""The seam content detectors plug into.

A detector reads what a change adds (and, when it asks, whole file texts at
the base and head of the pull request) and reports findings. The policy names
detectors per tier; a file on which a tier's detector finds something is in
that tier. A finding with ``deny`` set denies the pull request outright; an
``informational`` one is listed and does neither.

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
    #: Shown but neither denies nor sets a tier: e.g. a low-entropy value in a
    #: test file, or a secret whose fingerprint the base branch's policy allows.
    informational: bool = False
    #: ``sha256:<hex>`` of what was found (a secret's digest, never the secret),
    #: which a policy can allow by name (``secrets.allowed_fingerprints``).
    fingerprint: str = ""


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


def head_text_wanted(file: ChangedFile) -> frozenset[tuple[str, str]]:
    """The head text of a file GitHub sent without a patch (binary, or a diff too
    large to show), so a content detector can read what the change adds."""
    return frozenset({("head", file.path)}) if file.content_unseen else frozenset()


def inspected_lines(data: ScanInput) -> Sequence[AddedLine] | None:
    """The lines a content detector must scan, or ``None`` when they are unknown.

    With a patch: the added lines. Without one (``content_unseen``): every line of
    the head text, since all of it may be new; ``None`` when that text was not read
    or was too large, and the engine then gives the file the highest tier its path
    could need (``gate.classify``).
    """
    file = data.file
    if not file.content_unseen:
        return data.added
    key = ("head", file.path)
    text = data.contents.get(*key)
    if text is None or key in data.contents.too_large:
        return None
    return tuple(AddedLine(number=n, text=line) for n, line in enumerate(text.splitlines(), 1))
