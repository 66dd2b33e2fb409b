"""Is a file in a test location really a test? The fact ``gated_tests`` needs.

A test file inside a gated area (``payment/tests/…``) takes a lower tier than
the area's code, but only when it reads as a test: its patch or, failing that,
its head text declares a test (``gate.filekinds.looks_like_test``). A helper
module placed under ``tests/`` that declares none keeps the area's tier.

The finding ``test-file`` is informational: it never sets a tier or denies by
itself; ``gate.classify`` reads it when applying the policy's ``gated_tests``.
"""

from __future__ import annotations

from collections.abc import Sequence

from gate.detectors.base import Finding, ScanInput
from gate.filekinds import is_test_path, looks_like_test
from gate.model import ChangedFile, FileStatus

RULE = "test-file"


class TestFileDetector:
    """Finding ``test-file`` for a test-named file whose text declares tests."""

    __test__ = False  # not a pytest class, whatever its name says
    name: str = "tests"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        # The patch's context lines usually show the enclosing test; read the
        # whole head text only when they do not.
        if not _candidate(file) or (file.patch is not None and looks_like_test(file.patch)):
            return frozenset()
        return frozenset({("head", file.path)})

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        file = data.file
        if not _candidate(file):
            return ()
        where = "its patch"
        if file.patch is None or not looks_like_test(file.patch):
            text = data.contents.get("head", file.path)
            if text is None or not looks_like_test(text):
                return ()
            where = "its text"
        return (
            Finding(
                detector=self.name,
                rule=RULE,
                path=file.path,
                line=None,
                message=f"a test file: {where} declares tests",
                informational=True,
            ),
        )


def _candidate(file: ChangedFile) -> bool:
    return file.status is not FileStatus.REMOVED and all(is_test_path(p) for p in file.paths)
