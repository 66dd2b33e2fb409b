"""DependencyDetector: base/head comparison, renames, and failing closed."""

from __future__ import annotations

import json
from collections.abc import Mapping

from gate.detectors.base import Detector, Finding, ScanInput
from gate.detectors.dependencies import DependencyDetector, new_packages
from gate.detectors.manifests import Ecosystem, Package
from gate.model import ChangedFile, Contents, FileStatus

DETECTOR: Detector = DependencyDetector()


def scan(
    file: ChangedFile,
    texts: Mapping[tuple[str, str], str | None],
    *,
    too_large: frozenset[tuple[str, str]] = frozenset(),
) -> list[Finding]:
    data = ScanInput(file=file, added=(), contents=Contents(texts=texts, too_large=too_large))
    return list(DETECTOR.scan(data))


def rules(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.message) for f in findings]


MODIFIED = ChangedFile("requirements.txt", FileStatus.MODIFIED, patch="@@ -1 +1 @@\n-a\n+b")


def test_name_and_wanted_for_modified_added_removed() -> None:
    assert DETECTOR.name == "dependencies"
    assert DETECTOR.wanted(MODIFIED) == {("base", "requirements.txt"), ("head", "requirements.txt")}
    added = ChangedFile("web/package.json", FileStatus.ADDED)
    assert DETECTOR.wanted(added) == {("head", "web/package.json")}
    removed = ChangedFile("go.mod", FileStatus.REMOVED)
    assert DETECTOR.wanted(removed) == {("base", "go.mod")}
    assert DETECTOR.wanted(ChangedFile("src/app.py", FileStatus.MODIFIED)) == frozenset()


def test_new_package_and_version_change_with_lines_removal_silent() -> None:
    base = "requests>=2.30\nflask==2.0\nsix\n"
    head = "# deps\nrequests>=2.31\nflask==2.0\nhttpx>=0.27\n"
    findings = scan(
        MODIFIED, {("base", "requirements.txt"): base, ("head", "requirements.txt"): head}
    )
    assert [(f.rule, f.line, f.message) for f in findings] == [
        ("new-package", 4, "new pypi package httpx (>=0.27)"),
        ("version-change", 2, "pypi package requests version changed: >=2.30 -> >=2.31"),
    ]
    assert all(f.detector == "dependencies" and f.path == "requirements.txt" for f in findings)
    assert not any(f.deny for f in findings)


def test_reformatting_is_not_a_change() -> None:
    base = "Requests >= 2.31 , < 3\n"
    head = "# pinned range\nrequests<3,>=2.31  # why\n"
    texts = {("base", "requirements.txt"): base, ("head", "requirements.txt"): head}
    assert scan(MODIFIED, texts) == []


def test_new_package_without_spec_and_in_json() -> None:
    file = ChangedFile("package.json", FileStatus.MODIFIED)
    base = json.dumps({"dependencies": {"react": "^18"}}, indent=2)
    head = json.dumps({"dependencies": {"react": "^18", "left-pad": "*"}}, indent=2)
    findings = scan(file, {("base", "package.json"): base, ("head", "package.json"): head})
    assert [(f.rule, f.line, f.message) for f in findings] == [
        ("new-package", 4, "new npm package left-pad (*)")
    ]


def test_npm_case_change_is_a_new_package() -> None:
    file = ChangedFile("package.json", FileStatus.MODIFIED)
    base = '{"dependencies": {"JSONStream": "1.3.5"}}'
    head = '{"dependencies": {"jsonstream": "1.3.5"}}'
    findings = scan(file, {("base", "package.json"): base, ("head", "package.json"): head})
    assert rules(findings) == [("new-package", "new npm package jsonstream (1.3.5)")]


def test_added_manifest_makes_every_package_new() -> None:
    file = ChangedFile("svc/go.mod", FileStatus.ADDED)
    head = "module x\n\nrequire github.com/pkg/errors v0.9.1\n"
    findings = scan(file, {("head", "svc/go.mod"): head})
    assert [(f.rule, f.line, f.message) for f in findings] == [
        ("new-package", 3, "new go package github.com/pkg/errors (v0.9.1)")
    ]


def test_copied_manifest_is_compared_against_nothing() -> None:
    file = ChangedFile("b/requirements.txt", FileStatus.COPIED, previous_path="a/requirements.txt")
    assert DETECTOR.wanted(file) == {("head", "b/requirements.txt")}
    findings = scan(file, {("head", "b/requirements.txt"): "requests\n"})
    assert rules(findings) == [("new-package", "new pypi package requests")]


def test_removed_manifest_has_no_findings() -> None:
    file = ChangedFile("requirements.txt", FileStatus.REMOVED)
    assert scan(file, {("base", "requirements.txt"): "requests\n"}) == []


def test_rename_compares_old_path_at_base_with_new_path_at_head() -> None:
    file = ChangedFile(
        "requirements/base.txt", FileStatus.RENAMED, previous_path="requirements.txt"
    )
    assert DETECTOR.wanted(file) == {
        ("base", "requirements.txt"),
        ("head", "requirements/base.txt"),
    }
    texts: dict[tuple[str, str], str | None] = {
        ("base", "requirements.txt"): "requests==2.31.0\n",
        ("head", "requirements/base.txt"): "requests==2.31.0\nflask\n",
    }
    findings = scan(file, texts)
    assert rules(findings) == [("new-package", "new pypi package flask")]
    assert findings[0].path == "requirements/base.txt"


def test_rename_from_non_manifest_makes_every_package_new() -> None:
    file = ChangedFile("requirements.txt", FileStatus.RENAMED, previous_path="deps.list")
    assert DETECTOR.wanted(file) == {("head", "requirements.txt")}
    findings = scan(file, {("head", "requirements.txt"): "requests\n"})
    assert rules(findings) == [("new-package", "new pypi package requests")]


def test_rename_away_from_manifest_name_is_a_removal() -> None:
    file = ChangedFile("deps.old", FileStatus.RENAMED, previous_path="requirements.txt")
    assert scan(file, {("base", "requirements.txt"): "requests\n"}) == []


def test_unread_texts_fail_closed() -> None:
    findings = scan(MODIFIED, {("head", "requirements.txt"): "requests\n"})
    assert [f.rule for f in findings] == ["manifest-unread", "new-package"]
    assert "base version of requirements.txt was not read" in findings[0].message
    findings = scan(MODIFIED, {("base", "requirements.txt"): "requests\n"})
    assert [f.rule for f in findings] == ["manifest-unread"]
    assert findings[0].line is None


def test_too_large_and_missing_head_fail_closed() -> None:
    key = ("head", "requirements.txt")
    findings = scan(
        MODIFIED,
        {("base", "requirements.txt"): "a\n", key: None},
        too_large=frozenset({key}),
    )
    assert rules(findings) == [
        (
            "manifest-unread",
            "head version of requirements.txt is too large to read; "
            "its dependency changes are unknown",
        )
    ]
    findings = scan(MODIFIED, {("base", "requirements.txt"): "a\n", key: None})
    assert [f.rule for f in findings] == ["manifest-unread"]


def test_unparsable_head_fails_closed_with_reason() -> None:
    texts = {("base", "requirements.txt"): "a\n", ("head", "requirements.txt"): "a >>> 1\n"}
    findings = scan(MODIFIED, texts)
    assert [f.rule for f in findings] == ["manifest-invalid"]
    assert "could not be parsed (bad version specifier for a" in findings[0].message


def test_unparsable_base_counts_every_head_package_as_new() -> None:
    texts = {("base", "requirements.txt"): "a >>> 1\n", ("head", "requirements.txt"): "a\n"}
    findings = scan(MODIFIED, texts)
    assert [f.rule for f in findings] == ["manifest-invalid", "new-package"]


def test_new_package_source() -> None:
    texts = {
        ("base", "requirements.txt"): "a\n",
        ("head", "requirements.txt"): "--extra-index-url https://u:tok@evil.example/simple\na\n",
    }
    findings = scan(MODIFIED, texts)
    assert rules(findings) == [
        ("new-source", "new package source: --extra-index-url https://evil.example/simple")
    ]


def test_messages_are_one_bounded_line() -> None:
    file = ChangedFile("package.json", FileStatus.ADDED)
    name = "evil\n\u202e" + "x" * 500
    findings = scan(file, {("head", "package.json"): json.dumps({"dependencies": {name: "1"}})})
    (finding,) = findings
    assert "\n" not in finding.message
    assert "\u202e" not in finding.message
    assert len(finding.message) < 200


def test_new_packages_for_the_supply_chain_scan() -> None:
    texts = {
        ("base", "requirements.txt"): "requests==2.30.0\nsix\n",
        ("head", "requirements.txt"): "requests==2.31.0\nsix\nhttpx\n",
    }
    data = ScanInput(file=MODIFIED, added=(), contents=Contents(texts=texts))
    assert new_packages(data) == (
        Package(Ecosystem.PYPI, "httpx", ""),
        Package(Ecosystem.PYPI, "requests", "==2.31.0"),
    )
    unread = ScanInput(file=MODIFIED, added=(), contents=Contents())
    assert new_packages(unread) == ()
