"""CI, infrastructure and governance files, by path and (for Kubernetes) by content.

Rule ids: ``ci-workflow`` (GitHub Actions workflows), ``ci-action`` (actions
defined in the repository), ``ci-config`` (other CI systems), ``container``
(Dockerfiles, Containerfiles, Compose files), ``terraform``, ``kubernetes``,
``helm``, ``governance`` (this app's policy file and CODEOWNERS) and ``submodule``
(``.gitmodules``, or a gitlink: a file whose patch is only ``Subproject commit <sha>``
lines, which is how GitHub lists a submodule moved to another commit; that pulls in
code the diff does not show).

Findings never deny on their own: the policy decides what a rule means (the
built-in one denies workflow edits by agents through its scope and escalates
the rest to code owners). A rename is judged by both names, since moving a file
out of ``.github/workflows`` disables a workflow just as moving one in adds it.

Where the files live:

- workflows: https://docs.github.com/actions/writing-workflows/workflow-syntax-for-github-actions
- actions: https://docs.github.com/actions/sharing-automations/creating-actions/metadata-syntax-for-github-actions
- CODEOWNERS: https://docs.github.com/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners#codeowners-file-location
- Helm charts: https://helm.sh/docs/topics/charts/#the-chart-file-structure
- Kubernetes objects: https://kubernetes.io/docs/concepts/overview/working-with-objects/
- submodules: https://git-scm.com/docs/gitmodules, https://git-scm.com/book/en/v2/Git-Tools-Submodules
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

import re2

from gate.detectors.base import Finding, ScanInput, head_text_wanted, inspected_lines
from gate.model import ChangedFile, FileStatus

_GOVERNANCE = frozenset(
    {
        ".github/merge-gate.yml",
        ".github/merge-gate.yaml",
        "CODEOWNERS",
        ".github/CODEOWNERS",
        "docs/CODEOWNERS",
    }
)
_CI_FILES = frozenset(
    {
        ".gitlab-ci.yml",
        ".travis.yml",
        "azure-pipelines.yml",
        "azure-pipelines.yaml",
        "bitbucket-pipelines.yml",
        ".drone.yml",
        ".woodpecker.yml",
        "cloudbuild.yaml",
        "cloudbuild.yml",
    }
)
_CI_DIRS = (".circleci/", ".buildkite/", ".woodpecker/", ".gitlab/ci/")
_TERRAFORM_SUFFIXES = (".tf", ".tfvars", ".tf.json", ".tfvars.json")
_TERRAFORM_FILES = frozenset({".terraform.lock.hcl", "terragrunt.hcl"})
_YAML = (".yaml", ".yml")

_API_VERSION = re2.compile(r"^\s*(?:-\s+)?apiVersion\s*:\s*\S")
#: A gitlink line of a patch: git prints a submodule's commit this way (SHA-1 or SHA-256),
#: with ``-dirty`` for a work tree with changes.
_SUBPROJECT = re2.compile(r"^[+-]Subproject commit [0-9a-f]{40}(?:[0-9a-f]{24})?(?:-dirty)?$")
_KIND = re2.compile(r"^\s*(?:-\s+)?kind\s*:\s*[\"']?([A-Za-z][A-Za-z0-9]*)")

_LABELS = {
    "governance": "merge-gate governance file",
    "ci-workflow": "CI workflow",
    "ci-action": "CI action",
    "ci-config": "CI configuration",
    "container": "container build file",
    "terraform": "Terraform file",
    "helm": "Helm chart file",
    "kubernetes": "Kubernetes manifest",
    "submodule": "git submodule",
}


def path_rules(path: str) -> tuple[str, ...]:
    """Rule ids that ``path`` alone triggers, most specific first."""
    base = posixpath.basename(path)
    lower = base.lower()
    rules: list[str] = []
    if path in _GOVERNANCE:
        rules.append("governance")
    if path.startswith(".github/workflows/"):
        rules.append("ci-workflow")
    if path.startswith(".github/actions/") or base in ("action.yml", "action.yaml"):
        rules.append("ci-action")
    if (
        base in _CI_FILES
        or base.endswith(".gitlab-ci.yml")
        or base == "Jenkinsfile"
        or base.startswith("Jenkinsfile.")
        or path.startswith(_CI_DIRS)
    ):
        rules.append("ci-config")
    if (
        lower in ("dockerfile", "containerfile")
        or lower.startswith(("dockerfile.", "containerfile."))
        or lower.endswith((".dockerfile", ".containerfile"))
        or (lower.startswith(("docker-compose", "compose.")) and lower.endswith(_YAML))
    ):
        rules.append("container")
    if lower.endswith(_TERRAFORM_SUFFIXES) or lower in _TERRAFORM_FILES:
        rules.append("terraform")
    parent = posixpath.basename(posixpath.dirname(path))
    if base == "Chart.yaml" or (parent == "templates" and lower.endswith((*_YAML, ".tpl"))):
        rules.append("helm")
    if lower in ("kustomization.yaml", "kustomization.yml"):
        rules.append("kubernetes")
    if base == ".gitmodules":
        rules.append("submodule")
    return tuple(rules)


def is_gitlink(patch: str | None) -> bool:
    """True when ``patch`` moves, adds or removes a submodule: only gitlink lines."""
    if not patch:
        return False
    changed = [line for line in patch.splitlines() if line[:1] in ("+", "-")]
    return bool(changed) and all(_SUBPROJECT.search(line) is not None for line in changed)


class InfraDetector:
    """Whole-file findings by path; a ``kubernetes`` finding at the added ``kind:`` line."""

    name: str = "infra"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        return head_text_wanted(file)

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        file = data.file
        findings: list[Finding] = []
        seen: set[str] = set()
        for path in file.paths:
            for rule in path_rules(path):
                if rule in seen:
                    continue
                seen.add(rule)
                findings.append(
                    Finding(
                        detector=self.name,
                        rule=rule,
                        path=file.path,
                        line=None,
                        message=f"{_LABELS[rule]} {path} {_verb(file)}",
                    )
                )
        if "submodule" not in seen and is_gitlink(file.patch):
            findings.append(
                Finding(
                    detector=self.name,
                    rule="submodule",
                    path=file.path,
                    line=None,
                    message=(
                        f"{_LABELS['submodule']} {file.path} {_verb(file)}: "
                        "the code it points at is not in this diff"
                    ),
                )
            )
        if "kubernetes" not in seen and file.path.lower().endswith(_YAML):
            kubernetes = self._kubernetes(data)
            if kubernetes is not None:
                findings.append(kubernetes)
        return tuple(findings)

    def _kubernetes(self, data: ScanInput) -> Finding | None:
        """Added lines carrying both ``apiVersion:`` and ``kind:`` make a Kubernetes object."""
        api_version = False
        kind: tuple[int, str] | None = None
        for added in inspected_lines(data) or ():
            if not api_version and _API_VERSION.search(added.text) is not None:
                api_version = True
            if kind is None:
                match = _KIND.search(added.text)
                if match is not None:
                    kind = (added.number, str(match.group(1)))
            if api_version and kind is not None:
                return Finding(
                    detector=self.name,
                    rule="kubernetes",
                    path=data.file.path,
                    line=kind[0],
                    message=f"{_LABELS['kubernetes']} {data.file.path} adds kind: {kind[1]}",
                )
        return None


def _verb(file: ChangedFile) -> str:
    if file.status is FileStatus.RENAMED and file.previous_path:
        return f"renamed ({file.previous_path} -> {file.path})"
    return str(file.status.value)
