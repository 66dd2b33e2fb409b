"""InfraDetector: CI, containers, Terraform, Kubernetes/Helm and governance files."""

from __future__ import annotations

import pytest

from gate.detectors.base import Detector, Finding, ScanInput
from gate.detectors.infra import InfraDetector
from gate.diff import AddedLine
from gate.model import ChangedFile, Contents, FileStatus

DETECTOR: Detector = InfraDetector()


def scan(file: ChangedFile, *lines: str) -> list[Finding]:
    added = tuple(AddedLine(number, text) for number, text in enumerate(lines, 1))
    return list(DETECTOR.scan(ScanInput(file=file, added=added, contents=Contents())))


def rules_for(path: str, *lines: str) -> list[str]:
    return [f.rule for f in scan(ChangedFile(path, FileStatus.MODIFIED, patch="@@"), *lines)]


def test_name_and_wants_only_the_head_text_of_a_file_without_a_patch() -> None:
    assert DETECTOR.name == "infra"
    with_patch = ChangedFile("Dockerfile", FileStatus.MODIFIED, patch="@@ -1 +1 @@\n-a\n+b")
    assert DETECTOR.wanted(with_patch) == frozenset()
    hidden = ChangedFile("Dockerfile", FileStatus.MODIFIED, additions=1)
    assert DETECTOR.wanted(hidden) == {("head", "Dockerfile")}


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (".github/workflows/ci.yml", "ci-workflow"),
        (".github/workflows/nested/x.yaml", "ci-workflow"),
        (".github/actions/setup/action.yml", "ci-action"),
        ("tools/deploy/action.yaml", "ci-action"),
        (".gitlab-ci.yml", "ci-config"),
        ("ci/templates.gitlab-ci.yml", "ci-config"),
        ("Jenkinsfile", "ci-config"),
        ("build/Jenkinsfile.release", "ci-config"),
        (".circleci/config.yml", "ci-config"),
        ("azure-pipelines.yml", "ci-config"),
        ("Dockerfile", "container"),
        ("services/api/Dockerfile.dev", "container"),
        ("images/api.Dockerfile", "container"),
        ("Containerfile", "container"),
        ("docker-compose.override.yml", "container"),
        ("infra/main.tf", "terraform"),
        ("infra/prod.tfvars", "terraform"),
        ("infra/.terraform.lock.hcl", "terraform"),
        ("charts/api/Chart.yaml", "helm"),
        ("charts/api/templates/deployment.yaml", "helm"),
        ("charts/api/templates/_helpers.tpl", "helm"),
        ("deploy/kustomization.yaml", "kubernetes"),
        (".github/merge-gate.yml", "governance"),
        ("CODEOWNERS", "governance"),
        (".github/CODEOWNERS", "governance"),
        ("docs/CODEOWNERS", "governance"),
    ],
)
def test_paths(path: str, rule: str) -> None:
    assert rules_for(path) == [rule]


@pytest.mark.parametrize(
    "path",
    [
        "src/app.py",
        "docs/workflows.md",
        "github/workflows/ci.yml",
        "src/CODEOWNERS.py",
        "lib/CODEOWNERS",
        "docker/README.md",
        "config/settings.yaml",
        "terraform.md",
        ".github/dependabot.yml",
    ],
)
def test_other_paths(path: str) -> None:
    assert rules_for(path) == []


def test_message_and_whole_file() -> None:
    (finding,) = scan(ChangedFile(".github/workflows/ci.yml", FileStatus.ADDED))
    assert finding.line is None
    assert not finding.deny
    assert finding.message == "CI workflow .github/workflows/ci.yml added"
    assert finding.detector == "infra"
    assert finding.path == ".github/workflows/ci.yml"


def test_rename_out_of_workflows_is_still_a_workflow_change() -> None:
    file = ChangedFile("old/ci.yml", FileStatus.RENAMED, previous_path=".github/workflows/ci.yml")
    (finding,) = scan(file)
    assert finding.rule == "ci-workflow"
    assert finding.message == (
        "CI workflow .github/workflows/ci.yml renamed (.github/workflows/ci.yml -> old/ci.yml)"
    )


def test_kubernetes_by_content() -> None:
    findings = scan(
        ChangedFile("deploy/api.yaml", FileStatus.ADDED, patch="@@"),
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        "  name: api",
    )
    assert [(f.rule, f.line, f.message) for f in findings] == [
        ("kubernetes", 2, "Kubernetes manifest deploy/api.yaml adds kind: Deployment")
    ]


def test_kubernetes_list_items() -> None:
    assert rules_for("k8s/all.yml", "items:", "- apiVersion: v1", "  kind: Service") == [
        "kubernetes"
    ]


@pytest.mark.parametrize(
    "lines",
    [
        ("kind: Deployment",),
        ("apiVersion: v1",),
        ("name: thing", "type: widget"),
    ],
)
def test_yaml_without_both_keys_is_not_kubernetes(lines: tuple[str, ...]) -> None:
    assert rules_for("config/app.yaml", *lines) == []


def test_kubernetes_keys_outside_yaml_are_ignored() -> None:
    assert rules_for("docs/k8s.md", "apiVersion: v1", "kind: Pod") == []


def test_one_finding_per_rule_and_several_rules() -> None:
    file = ChangedFile("charts/x/templates/job.yaml", FileStatus.MODIFIED, patch="@@")
    findings = scan(file, "apiVersion: batch/v1", "kind: Job")
    assert [f.rule for f in findings] == ["helm", "kubernetes"]
