"""Content detectors the policy can name, by name."""

from __future__ import annotations

from gate.detectors.base import Detector


def builtin() -> dict[str, Detector]:
    """One instance of every built-in detector, keyed by the name policies use."""
    from gate.detectors.auth import AuthDetector
    from gate.detectors.dependencies import DependencyDetector
    from gate.detectors.infra import InfraDetector
    from gate.detectors.migrations import MigrationDetector
    from gate.detectors.secrets import SecretsDetector
    from gate.detectors.testfiles import TestFileDetector

    found: list[Detector] = [
        SecretsDetector(),
        DependencyDetector(),
        MigrationDetector(),
        InfraDetector(),
        AuthDetector(),
        TestFileDetector(),
    ]
    return {detector.name: detector for detector in found}
