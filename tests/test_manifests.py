"""Manifest parsers: every format, its tricky corners, and malformed input."""

from __future__ import annotations

import pytest

from gate.detectors.manifests import (
    Ecosystem,
    Manifest,
    ManifestKind,
    Package,
    ParseError,
    RegistryRef,
    is_local,
    manifest_kind,
    parse_manifest,
    pep503_name,
    registry_ref,
)

PYPI, NPM, GO, CARGO, GEMS = (
    Ecosystem.PYPI,
    Ecosystem.NPM,
    Ecosystem.GO,
    Ecosystem.CARGO,
    Ecosystem.RUBYGEMS,
)


def parsed(path: str, text: str) -> Manifest:
    result = parse_manifest(path=path, text=text)
    assert isinstance(result, Manifest), result
    return result


def failed(path: str, text: str) -> str:
    result = parse_manifest(path=path, text=text)
    assert isinstance(result, ParseError), result
    return result.reason


def names(manifest: Manifest) -> set[tuple[str, str]]:
    return {(p.name, p.spec) for p in manifest.packages}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("requirements.txt", ManifestKind.REQUIREMENTS),
        ("requirements-dev.txt", ManifestKind.REQUIREMENTS),
        ("ci/test-requirements.txt", ManifestKind.REQUIREMENTS),
        ("requirements/base.txt", ManifestKind.REQUIREMENTS),
        ("requirements.in", ManifestKind.REQUIREMENTS),
        ("pyproject.toml", ManifestKind.PYPROJECT),
        ("web/package.json", ManifestKind.PACKAGE_JSON),
        ("package-lock.json", ManifestKind.PACKAGE_LOCK),
        ("npm-shrinkwrap.json", ManifestKind.PACKAGE_LOCK),
        ("svc/go.mod", ManifestKind.GO_MOD),
        ("crates/x/Cargo.toml", ManifestKind.CARGO),
        ("Gemfile", ManifestKind.GEMFILE),
        ("README.md", None),
        ("notes.txt", None),
        ("go.sum", ManifestKind.LOCKFILE),
        ("Package.json", None),
    ],
)
def test_manifest_kind_by_name(path: str, kind: ManifestKind | None) -> None:
    assert manifest_kind(path) is kind


def test_pep503_normalisation() -> None:
    assert pep503_name("Foo__Bar.baz-Qux") == "foo-bar-baz-qux"


# --- requirements.txt --------------------------------------------------------------------


def test_requirements_skip_comments_options_markers_and_extras() -> None:
    text = """\
# a comment
requests>=2.31 ; python_version >= "3.8"
Flask[async] == 2.0.1  # trailing comment
-r other.txt
-c constraints.txt
--require-hashes
  # indented comment

Django>=4, <5
numpy==1.26.4 \\
    --hash=sha256:abc
"""
    manifest = parsed("requirements.txt", text)
    assert names(manifest) == {
        ("requests", ">=2.31"),
        ("flask", "==2.0.1"),
        ("django", "<5,>=4"),
        ("numpy", "==1.26.4"),
    }
    assert manifest.lines[Package(PYPI, "requests", ">=2.31")] == 2
    assert manifest.lines[Package(PYPI, "numpy", "==1.26.4")] == 10


def test_requirements_url_and_vcs_requirements() -> None:
    text = """\
pkg @ https://example.com/pkg-1.0.tar.gz ; sys_platform == "linux"
-e git+https://github.com/org/repo.git@v1#egg=My_Lib
-e .
./local/dir
git+https://user:secret@github.com/org/other.git
https://files.example.com/wheels/Foo_Bar-1.0-py3-none-any.whl
"""
    manifest = parsed("requirements.txt", text)
    assert names(manifest) == {
        ("pkg", "@ https://example.com/pkg-1.0.tar.gz"),
        ("my-lib", "@ git+https://github.com/org/repo.git@v1"),
        ("git+https://github.com/org/other.git", ""),
        ("foo-bar", "@ https://files.example.com/wheels/Foo_Bar-1.0-py3-none-any.whl"),
    }
    # Credentials in a URL never reach a package (or a message built from one).
    assert not any("secret" in p.name + p.spec for p in manifest.packages)


def test_requirements_index_options_are_sources() -> None:
    manifest = parsed(
        "requirements.txt",
        "--extra-index-url https://user:tok@pypi.example.com/simple\n-i https://mirror/simple\nx\n",
    )
    assert manifest.sources == {
        "--extra-index-url https://pypi.example.com/simple",
        "--index-url https://mirror/simple",
    }


def test_requirements_equal_up_to_clause_order_and_spacing() -> None:
    a = parsed("requirements.txt", "foo >= 1.0 , < 2\n")
    b = parsed("requirements.txt", "Foo<2,>=1.0\n")
    assert a.packages == b.packages


@pytest.mark.parametrize("line", ["requests>>2", "foo ==", "[extra]", "foo[bad extra] >= 1"])
def test_requirements_malformed(line: str) -> None:
    assert failed("requirements.txt", line + "\n")


# --- pyproject.toml --------------------------------------------------------------------


PYPROJECT = """\
[build-system]
requires = ["setuptools>=68", "wheel"]

[project]
name = "demo"
dependencies = [
  "httpx>=0.27",
  "Pydantic>=2,<3",
]

[project.optional-dependencies]
test = ["pytest>=8"]

[dependency-groups]
lint = ["ruff"]
dev = [{include-group = "lint"}, "mypy>=1"]

[tool.poetry.dependencies]
python = "^3.11"
Django = {version = "^4.2", extras = ["argon2"]}
localthing = {path = "../localthing"}
gitdep = {git = "https://github.com/a/b.git", rev = "abc"}
multi = [{version = "<2", python = "<3.12"}, {version = ">=2", python = ">=3.12"}]

[tool.poetry.group.docs.dependencies]
sphinx = "^7"

[[tool.poetry.source]]
name = "private"
url = "https://user:pw@pypi.example.com/simple"
"""


def test_pyproject_all_sections() -> None:
    manifest = parsed("pyproject.toml", PYPROJECT)
    assert names(manifest) == {
        ("setuptools", ">=68"),
        ("wheel", ""),
        ("httpx", ">=0.27"),
        ("pydantic", "<3,>=2"),
        ("pytest", ">=8"),
        ("ruff", ""),
        ("mypy", ">=1"),
        ("django", "^4.2"),
        ("gitdep", "git+https://github.com/a/b.git@abc"),
        ("multi", "<2"),
        ("multi", ">=2"),
        ("sphinx", "^7"),
    }
    assert manifest.sources == {
        'tool.poetry.source = {"name": "private", "url": "https://pypi.example.com/simple"}'
    }
    assert manifest.lines[Package(PYPI, "httpx", ">=0.27")] == 7
    assert manifest.lines[Package(PYPI, "django", "^4.2")] == 20
    assert manifest.lines[Package(PYPI, "sphinx", "^7")] == 26


@pytest.mark.parametrize(
    "text",
    [
        "[project\n",
        "[project]\ndependencies = 'requests'\n",
        "[project]\ndependencies = ['requests >>> 1']\n",
        "[dependency-groups]\ndev = [1]\n",
        "[tool.poetry.dependencies]\nx = 3\n",
    ],
)
def test_pyproject_malformed(text: str) -> None:
    assert failed("pyproject.toml", text)


def test_pyproject_without_dependencies() -> None:
    assert parsed("pyproject.toml", "[tool.ruff]\nline-length = 100\n").packages == frozenset()


# --- package.json / package-lock.json -----------------------------------------------------


def test_package_json_sections_scopes_and_case() -> None:
    text = """{
  "name": "app",
  "dependencies": {"left-pad": "^1.3.0", "@types/node": "20.1.0"},
  "devDependencies": {"JSONStream": "1.3.5"},
  "peerDependencies": {"react": ">=18"},
  "optionalDependencies": {"fsevents": "2.3.3"},
  "scripts": {"test": "jest"}
}"""
    manifest = parsed("package.json", text)
    assert names(manifest) == {
        ("left-pad", "^1.3.0"),
        ("@types/node", "20.1.0"),
        # Case is kept: npm's legacy "JSONStream" and "jsonstream" are different packages.
        ("JSONStream", "1.3.5"),
        ("react", ">=18"),
        ("fsevents", "2.3.3"),
    }
    assert manifest.lines[Package(NPM, "react", ">=18")] == 5


@pytest.mark.parametrize(
    "text", ["{", "[]", '{"dependencies": []}', '{"dependencies": {"a": 1}}', "[" * 50000]
)
def test_package_json_malformed(text: str) -> None:
    assert failed("package.json", text)


def test_package_lock_v3_packages_map() -> None:
    text = """{
  "name": "app",
  "lockfileVersion": 3,
  "packages": {
    "": {"name": "app", "dependencies": {"a": "^1"}},
    "node_modules/a": {"version": "1.0.0", "resolved": "https://registry.npmjs.org/a/-/a-1.0.0.tgz"},
    "node_modules/@s/b": {"version": "2.0.0"},
    "node_modules/a/node_modules/c": {"version": "3.0.0"},
    "node_modules/alias": {"name": "real", "version": "1.0.0"},
    "node_modules/ws": {"resolved": "packages/ws", "link": true},
    "packages/ws": {"version": "0.0.0"}
  }
}"""
    manifest = parsed("package-lock.json", text)
    assert names(manifest) == {("a", "1.0.0"), ("@s/b", "2.0.0"), ("c", "3.0.0"), ("real", "1.0.0")}
    assert manifest.lines[Package(NPM, "c", "3.0.0")] == 8


def test_package_lock_v1_dependencies_tree() -> None:
    text = """{
  "lockfileVersion": 1,
  "dependencies": {
    "a": {"version": "1.0.0", "dependencies": {"c": {"version": "3.0.0"}}},
    "g": {"version": "git+ssh://git@github.com/x/g.git#abc"}
  }
}"""
    manifest = parsed("package-lock.json", text)
    assert names(manifest) == {
        ("a", "1.0.0"),
        ("c", "3.0.0"),
        ("g", "git+ssh://github.com/x/g.git#abc"),
    }


def test_package_lock_malformed() -> None:
    assert failed("package-lock.json", '{"packages": {"node_modules/a": "1.0.0"}}')


# --- go.mod ------------------------------------------------------------------------------

GO_MOD = """\
module example.com/m

go 1.22

require github.com/pkg/errors v0.9.1

require (
\tgolang.org/x/net v0.20.0 // indirect
\t"github.com/quoted/mod" v1.0.0
)

// replace a module with a fork: a dependency on the fork
replace golang.org/x/crypto => github.com/fork/crypto v0.1.0
replace example.com/local => ../local
"""


def test_go_mod_require_forms_and_replace() -> None:
    manifest = parsed("go.mod", GO_MOD)
    assert {(p.ecosystem, p.name, p.spec) for p in manifest.packages} == {
        (GO, "github.com/pkg/errors", "v0.9.1"),
        (GO, "golang.org/x/net", "v0.20.0"),
        (GO, "github.com/quoted/mod", "v1.0.0"),
        (GO, "github.com/fork/crypto", "v0.1.0"),
    }
    assert manifest.lines[Package(GO, "golang.org/x/net", "v0.20.0")] == 8


@pytest.mark.parametrize(
    "text",
    ["require (\n\ta v1.0.0\n", "require a\n", "require a b c\n", "replace a b\n", "module\n"],
)
def test_go_mod_malformed(text: str) -> None:
    assert failed("go.mod", text)


# --- Cargo.toml ----------------------------------------------------------------------------

CARGO_TOML = """\
[package]
name = "demo"

[dependencies]
serde = { version = "1.0", features = ["derive"] }
tokio = "1"
local = { path = "../local" }
rand_alias = { package = "rand", version = "=0.8.5" }

[dev-dependencies]
proptest = "1"

[build-dependencies.cc]
version = "1.0"

[target.'cfg(unix)'.dependencies]
nix = { git = "https://github.com/nix-rust/nix", tag = "v0.27" }

[workspace.dependencies]
anyhow = "1"
"""


def test_cargo_all_tables() -> None:
    manifest = parsed("Cargo.toml", CARGO_TOML)
    assert {(p.ecosystem, p.name, p.spec) for p in manifest.packages} == {
        (CARGO, "serde", "1.0"),
        (CARGO, "tokio", "1"),
        (CARGO, "rand", "=0.8.5"),
        (CARGO, "proptest", "1"),
        (CARGO, "cc", "1.0"),
        (CARGO, "nix", "git+https://github.com/nix-rust/nix#v0.27"),
        (CARGO, "anyhow", "1"),
    }
    assert manifest.lines[Package(CARGO, "rand", "=0.8.5")] == 8
    assert manifest.lines[Package(CARGO, "cc", "1.0")] == 13


@pytest.mark.parametrize(
    "text", ["[dependencies\n", "[dependencies]\nserde = 1\n", "dependencies = 3\n"]
)
def test_cargo_malformed(text: str) -> None:
    assert failed("Cargo.toml", text)


# --- Gemfile ---------------------------------------------------------------------------------

GEMFILE = """\
source "https://rubygems.org"

gem "rails", "~> 7.0", ">= 7.0.4"
gem 'pg'
gem "devise", git: "https://github.com/heartcombo/devise"
gem "mylocal", path: "vendor/mylocal"
gem("rack", "2.2.8")
# gem "commented-out"
group :test do
  gem "rspec", require: false
end
"""


def test_gemfile() -> None:
    manifest = parsed("Gemfile", GEMFILE)
    assert {(p.ecosystem, p.name, p.spec) for p in manifest.packages} == {
        (GEMS, "rails", "~> 7.0, >= 7.0.4"),
        (GEMS, "pg", ""),
        (GEMS, "devise", "git https://github.com/heartcombo/devise"),
        (GEMS, "rack", "2.2.8"),
        (GEMS, "rspec", ""),
    }
    assert manifest.sources == {"source https://rubygems.org"}
    assert manifest.lines[Package(GEMS, "rspec", "")] == 10


def test_gemfile_unreadable_gem_call_fails_closed() -> None:
    assert "line 2" in failed("Gemfile", "source 'https://rubygems.org'\ngem name_from_variable\n")


# --- registry coordinates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "ref"),
    [
        (Package(PYPI, "requests", "==2.31.0"), RegistryRef(PYPI, "requests", "2.31.0")),
        (Package(PYPI, "requests", ">=2.31"), RegistryRef(PYPI, "requests", None)),
        (Package(PYPI, "numpy", "==1.26.*"), RegistryRef(PYPI, "numpy", None)),
        (Package(PYPI, "pkg", "@ https://x/pkg.tar.gz"), None),
        (Package(NPM, "left-pad", "1.3.0"), RegistryRef(NPM, "left-pad", "1.3.0")),
        (Package(NPM, "left-pad", "^1.3.0"), RegistryRef(NPM, "left-pad", None)),
        (Package(NPM, "alias", "npm:@s/real@2.0.0"), RegistryRef(NPM, "@s/real", "2.0.0")),
        (Package(NPM, "jest", "github:facebook/jest"), None),
        (Package(NPM, "x", "user/repo"), None),
        (Package(GO, "golang.org/x/net", "v0.20.0"), RegistryRef(GO, "golang.org/x/net", "0.20.0")),
        (Package(CARGO, "rand", "=0.8.5"), RegistryRef(CARGO, "rand", "0.8.5")),
        (Package(CARGO, "rand", "0.8.5"), RegistryRef(CARGO, "rand", None)),
        (Package(CARGO, "nix", "git+https://github.com/nix-rust/nix"), None),
        (Package(GEMS, "rack", "2.2.8"), RegistryRef(GEMS, "rack", "2.2.8")),
        (Package(GEMS, "rails", "~> 7.0"), RegistryRef(GEMS, "rails", None)),
        (Package(GEMS, "devise", "git https://github.com/heartcombo/devise"), None),
    ],
)
def test_registry_ref(package: Package, ref: RegistryRef | None) -> None:
    assert registry_ref(package) == ref


def test_local_packages() -> None:
    assert is_local(Package(CARGO, "serde", "workspace"))
    assert is_local(Package(NPM, "ui", "workspace:^1"))
    assert is_local(Package(NPM, "shared", "file:../shared"))
    assert not is_local(Package(NPM, "jest", "github:facebook/jest"))
    assert not is_local(Package(PYPI, "workspace", ""))
