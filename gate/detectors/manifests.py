"""Pure parsers from dependency manifest text to the set of packages it names.

Formats and the specs they follow:

- ``requirements*.txt``: pip's requirements file format
  (https://pip.pypa.io/en/stable/reference/requirements-file-format/), each
  requirement a PEP 508 string (https://peps.python.org/pep-0508/).
- ``pyproject.toml``: PEP 518 ``build-system.requires``, PEP 621
  ``project.dependencies`` / ``optional-dependencies``, PEP 735
  ``dependency-groups``, Poetry's ``tool.poetry`` dependency tables
  (https://python-poetry.org/docs/dependency-specification/) and uv's
  ``tool.uv.dev-dependencies``.
- ``package.json``: https://docs.npmjs.com/cli/configuring-npm/package-json
- ``package-lock.json`` / ``npm-shrinkwrap.json``:
  https://docs.npmjs.com/cli/configuring-npm/package-lock-json (v1
  ``dependencies`` tree, v2/v3 ``packages`` map).
- ``go.mod``: https://go.dev/ref/mod#go-mod-file
- ``Cargo.toml``: https://doc.rust-lang.org/cargo/reference/specifying-dependencies.html
- ``Gemfile``: https://bundler.io/guides/gemfile.html
- lockfiles (``uv.lock``, ``poetry.lock``, ``Pipfile.lock``, ``Cargo.lock``,
  ``Gemfile.lock``, ``go.sum``, ``yarn.lock``, ``pnpm-lock.yaml``,
  ``composer.lock``): :mod:`gate.detectors.lockfiles`.

Every regex over file text is RE2 (``re2``): manifests come from untrusted pull
requests and RE2 runs in linear time. A parser never returns a partial answer:
text it cannot read is a :class:`ParseError`, so a caller cannot mistake an
unreadable manifest for one that adds nothing.
"""

from __future__ import annotations

import enum
import json
import posixpath
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import re2

from gate.detectors import lockfiles


class Ecosystem(enum.StrEnum):
    PYPI = "pypi"
    NPM = "npm"
    GO = "go"
    CARGO = "cargo"
    RUBYGEMS = "rubygems"
    PACKAGIST = "packagist"


@dataclass(frozen=True, slots=True, order=True)
class Package:
    """One dependency as a manifest names it.

    ``name`` is normalised per ecosystem: PEP 503 for PyPI; npm, Go, Cargo and
    RubyGems names are kept as written, because their registries tell names
    apart by case (npm has legacy mixed-case packages distinct from their
    lowercase twins, Go module paths are case-sensitive), so folding case would
    hide a swap to a different package. ``spec`` is the version requirement
    (whitespace removed for PEP 508), an exact version for lockfiles and
    go.mod, ``@ <url>`` / ``git+<url>`` for direct references, or ``""``.
    Credentials in URLs are removed at parse time.
    """

    ecosystem: Ecosystem
    name: str
    spec: str = ""


@dataclass(frozen=True, slots=True)
class Manifest:
    packages: frozenset[Package]
    #: First line (1-based) in the text where each package is named, when found.
    lines: Mapping[Package, int] = field(default_factory=dict)
    #: Package sources the manifest adds (index URLs, registries), redacted.
    sources: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ParseError:
    """The text is not a readable manifest of its kind; ``reason`` is safe to render."""

    reason: str


class ManifestKind(enum.StrEnum):
    REQUIREMENTS = "requirements"
    PYPROJECT = "pyproject"
    PACKAGE_JSON = "package.json"
    PACKAGE_LOCK = "package-lock"
    GO_MOD = "go.mod"
    CARGO = "cargo"
    GEMFILE = "gemfile"
    LOCKFILE = "lockfile"


_EXACT_NAMES: Mapping[str, ManifestKind] = {
    "pyproject.toml": ManifestKind.PYPROJECT,
    "package.json": ManifestKind.PACKAGE_JSON,
    "package-lock.json": ManifestKind.PACKAGE_LOCK,
    "npm-shrinkwrap.json": ManifestKind.PACKAGE_LOCK,
    "go.mod": ManifestKind.GO_MOD,
    "Cargo.toml": ManifestKind.CARGO,
    "Gemfile": ManifestKind.GEMFILE,
    "gems.rb": ManifestKind.GEMFILE,
}


def manifest_kind(path: str) -> ManifestKind | None:
    """The manifest format of ``path`` by its name, or ``None`` for other files."""
    base = posixpath.basename(path)
    exact = _EXACT_NAMES.get(base)
    if exact is not None:
        return exact
    if base in lockfiles.PARSERS:
        return ManifestKind.LOCKFILE
    stem, ext = posixpath.splitext(base)
    if ext in (".txt", ".in") and (
        "requirements" in stem.lower()
        or posixpath.basename(posixpath.dirname(path)) == "requirements"
    ):
        return ManifestKind.REQUIREMENTS
    return None


def parse_manifest(*, path: str, text: str) -> Manifest | ParseError:
    """Packages named by ``text``, read as the manifest kind of ``path``."""
    kind = manifest_kind(path)
    if kind is None:
        return ParseError(f"{posixpath.basename(path)} is not a known manifest")
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        if kind is ManifestKind.LOCKFILE:
            manifest = _lockfile(lockfiles.PARSERS[posixpath.basename(path)](text))
        else:
            manifest = _PARSERS[kind](text)
        # A lone surrogate (raw, or a JSON "\ud800" escape) is no name or version
        # anyone can publish, and RE2 and registries need UTF-8.
        for package in manifest.packages:
            f"{package.name}{package.spec}".encode()
        for source in manifest.sources:
            source.encode()
    except (_Invalid, lockfiles.LockfileError) as error:
        return ParseError(str(error))
    except RecursionError:
        return ParseError("nested too deeply to read")
    except UnicodeEncodeError:
        return ParseError("not valid Unicode (a lone surrogate)")
    return manifest


# --- shared helpers ----------------------------------------------------------


class _Invalid(Exception):
    """Raised inside a parser; surfaces as a ParseError."""


@dataclass(slots=True)
class _Collector:
    """Packages as parsers find them, with where they were found."""

    found: dict[Package, int | None] = field(default_factory=dict)
    #: Package -> the key or name as written, to look its line up afterwards.
    keys: dict[Package, str] = field(default_factory=dict)
    sources: set[str] = field(default_factory=set)

    def add(self, package: Package, *, line: int | None = None, key: str | None = None) -> None:
        if package not in self.found or self.found[package] is None:
            self.found[package] = line
        if key is not None:
            self.keys.setdefault(package, key)

    def manifest(self, locate: Callable[[str], int | None] | None = None) -> Manifest:
        lines: dict[Package, int] = {}
        for package, line in self.found.items():
            if line is None and locate is not None:
                line = locate(self.keys.get(package, package.name))
            if line is not None:
                lines[package] = line
        return Manifest(
            packages=frozenset(self.found), lines=lines, sources=frozenset(self.sources)
        )


_URL_USERINFO = re2.compile(r"://[^/@\s]+@")
_URL_QUERY = re2.compile(r"\?[^#\s]*")
_WHITESPACE = re2.compile(r"\s+")
_PEP503_SEPARATORS = re2.compile(r"[-_.]+")


def redact_url(url: str) -> str:
    """``url`` without user-info or query string, where tokens hide."""
    url = _URL_USERINFO.sub("://", url)
    return str(_URL_QUERY.sub("", url))


def pep503_name(name: str) -> str:
    """PEP 503 normal form: https://peps.python.org/pep-0503/#normalized-names."""
    return str(_PEP503_SEPARATORS.sub("-", name)).lower()


def _squash(text: str) -> str:
    return str(_WHITESPACE.sub("", text))


# --- PEP 508 -------------------------------------------------------------------

_PEP508_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PEP508_HEAD = re2.compile(r"^\s*(" + _PEP508_NAME + r")\s*(\[[^\]]*\])?\s*(.*)$")
_VERSION_CLAUSE = re2.compile(r"^(?:~=|===|==|!=|<=|>=|<|>)[A-Za-z0-9_.*+!-]+$")
_EXTRAS = re2.compile(r"^\[\s*(?:[A-Za-z0-9._-]+\s*(?:,\s*[A-Za-z0-9._-]+\s*)*)?\]$")


def _pep508(text: str) -> tuple[str, str]:
    """(raw name, normalised spec) of a PEP 508 string, markers and extras dropped."""
    head = _PEP508_HEAD.search(text)
    if head is None:
        raise _Invalid(f"not a PEP 508 requirement: {_excerpt(text)}")
    name: str = head.group(1)
    extras: str | None = head.group(2)
    rest: str = head.group(3).strip()
    if extras is not None and _EXTRAS.search(extras) is None:
        raise _Invalid(f"bad extras in requirement {name}")
    if rest.startswith("@"):
        # PEP 508 direct reference: the marker must be set off by whitespace.
        url = rest[1:].strip().split()
        if not url:
            raise _Invalid(f"requirement {name} has an empty URL")
        if len(url) > 1 and not url[1].startswith(";"):
            raise _Invalid(f"unexpected text after the URL of {name}")
        return name, "@ " + redact_url(url[0])
    version = _squash(rest.split(";", 1)[0])
    if version.startswith("(") and version.endswith(")"):
        version = version[1:-1]
    if not version:
        return name, ""
    clauses = version.split(",")
    for clause in clauses:
        if _VERSION_CLAUSE.search(clause) is None:
            raise _Invalid(f"bad version specifier for {name}: {_excerpt(clause)}")
    # Clause order carries no meaning (PEP 440), so reordering is no change.
    return name, ",".join(sorted(clauses))


def _excerpt(text: str, limit: int = 60) -> str:
    text = redact_url(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pypi(raw: str, spec: str) -> Package:
    return Package(Ecosystem.PYPI, pep503_name(raw), spec)


# --- requirements.txt ------------------------------------------------------------

_COMMENT = re2.compile(r"(^|\s)#.*$")
_PER_REQUIREMENT_OPTION = re2.compile(r"\s--?[A-Za-z]")
_NAME_AT_URL = re2.compile(r"^" + _PEP508_NAME + r"\s*(\[[^\]]*\])?\s*@")
_VCS_OR_URL = re2.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|(?:git|hg|svn|bzr)\+)")
_EGG = re2.compile(r"[#&]egg=(" + _PEP508_NAME + r")")
_ARCHIVE_NAME = re2.compile(
    r"^(" + _PEP508_NAME + r")-[0-9][^/]*\.(?:whl|tar\.gz|tar\.bz2|tar\.xz|zip|tgz)$"
)
_ARCHIVE_EXT = (".whl", ".tar.gz", ".tar.bz2", ".tar.xz", ".zip", ".tgz")
#: pip's requirements-file options
#: (https://pip.pypa.io/en/stable/reference/requirements-file-format/#supported-options),
#: short form -> long form. pip parses them with optparse, so a long option may be
#: abbreviated to any unique prefix (``--extra-index``) and a short one may carry its
#: value attached (``-ihttps://...``).
_SHORT_OPTIONS = {
    "-i": "--index-url",
    "-c": "--constraint",
    "-r": "--requirement",
    "-e": "--editable",
    "-f": "--find-links",
}
_LONG_OPTIONS = (
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "--constraint",
    "--requirement",
    "--editable",
    "--find-links",
    "--no-binary",
    "--only-binary",
    "--prefer-binary",
    "--require-hashes",
    "--pre",
    "--trusted-host",
    "--use-feature",
)
#: Options that change where packages come from: an index, a directory of archives,
#: a host trusted without TLS, or another file of requirements or constraints (which
#: need not be a file merge-gate reads as a manifest).
_SOURCE_OPTIONS = frozenset(
    {
        "--index-url",
        "--extra-index-url",
        "--no-index",
        "--find-links",
        "--trusted-host",
        "--constraint",
        "--requirement",
    }
)
_EDITABLE = frozenset({"--editable"})


def _pip_option(line: str) -> tuple[str, str | None]:
    """(long option, value) of an option line, as pip's optparse reads it."""
    head, _, rest = line.partition(" ")
    flag, equals, value = head.partition("=")
    if not flag.startswith("--"):
        short = flag[:2]
        if short not in _SHORT_OPTIONS:
            raise _Invalid(f"unknown pip option {_excerpt(flag)}")
        attached = flag[2:] + (equals + value if equals else "")
        return _SHORT_OPTIONS[short], attached or rest.strip() or None
    matches = [option for option in _LONG_OPTIONS if option.startswith(flag)]
    if flag in _LONG_OPTIONS:
        matches = [flag]
    if len(matches) != 1:
        raise _Invalid(f"unknown or ambiguous pip option {_excerpt(flag)}")
    return matches[0], (value if equals else rest.strip()) or None


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """pip joins lines ending in a backslash before it strips comments."""
    start = 0
    parts: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield start, " ".join(parts)
        parts = []
    if parts:
        yield start, " ".join(parts)


def _parse_requirements(text: str) -> Manifest:
    found = _Collector()
    for number, raw in _logical_lines(text):
        line = str(_COMMENT.sub("", raw)).strip()
        if not line:
            continue
        if line.startswith("-"):
            flag, value = _pip_option(_squash_option(line))
            if flag in _SOURCE_OPTIONS:
                found.sources.add(f"{flag} {redact_url(value or '')}".strip())
            if flag in _EDITABLE and value:
                _requirement_target(found, value, number)
            continue
        # Per-requirement options (--hash, --config-settings) follow the requirement.
        cut = _PER_REQUIREMENT_OPTION.search(line)
        if cut is not None:
            line = line[: cut.start()].strip()
        if _NAME_AT_URL.search(line) is not None or not _looks_like_location(line):
            raw_name, spec = _pep508(line)
            found.add(_pypi(raw_name, spec), line=number)
        else:
            _requirement_target(found, line, number)
    return found.manifest()


def _squash_option(line: str) -> str:
    """``--opt   value`` as ``--opt value``: one space between an option and its value."""
    return " ".join(line.split())


def _looks_like_location(line: str) -> bool:
    first = line.split(";", 1)[0].strip()
    return (
        _VCS_OR_URL.search(first) is not None
        or first.startswith((".", "/", "~"))
        or "/" in first
        or "\\" in first
        or first.lower().endswith(_ARCHIVE_EXT)
    )


def _requirement_target(found: _Collector, target: str, number: int) -> None:
    """A URL, VCS link or path given in place of a name (pip's second form)."""
    target = target.split()[0]
    if _NAME_AT_URL.search(target) is not None:
        raw_name, spec = _pep508(target)
        found.add(_pypi(raw_name, spec), line=number)
        return
    is_url = _VCS_OR_URL.search(target) is not None
    base = posixpath.basename(target.split("#", 1)[0].split("?", 1)[0].rstrip("/"))
    archive = _ARCHIVE_NAME.search(base)
    egg = _EGG.search(target)
    if not is_url and archive is None:
        # A local directory (``.``, ``./pkg``) is the project's own code, in the diff.
        return
    spec = "@ " + redact_url(target.split("#", 1)[0])
    if egg is not None:
        found.add(_pypi(egg.group(1), spec), line=number)
    elif archive is not None:
        found.add(_pypi(archive.group(1), spec), line=number)
    else:
        # No name to be had: the location itself stands in, so it is still new.
        found.add(Package(Ecosystem.PYPI, redact_url(target.split("#", 1)[0]), ""), line=number)


# --- TOML ------------------------------------------------------------------------

_TOML_KEY = re2.compile(r"^\s*(?:\"([^\"]+)\"|'([^']+)'|([A-Za-z0-9_-]+))\s*=")
_TOML_TABLE = re2.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
_TOML_REQUIREMENT = re2.compile(r"[\"'](" + _PEP508_NAME + r")\s*[\"'<>=!~;\[@(]")


def _toml(text: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _Invalid(f"invalid TOML: {error}") from error


def _toml_locator(text: str, normalise: Callable[[str], str]) -> Callable[[str], int | None]:
    """Line of the first key, table header or requirement string naming a package."""
    index: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("#"):
            continue
        names: list[str] = []
        key = _TOML_KEY.search(line)
        if key is not None:
            names.append(key.group(1) or key.group(2) or key.group(3))
        table = _TOML_TABLE.search(line)
        if table is not None:
            names.append(str(table.group(1)).split(".")[-1].strip("\"'"))
        names.extend(str(m.group(1)) for m in _TOML_REQUIREMENT.finditer(line))
        for name in names:
            index.setdefault(normalise(name), number)
    return lambda key: index.get(normalise(key))


def _table(value: object, where: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be a table")
    return value


def _string_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid(f"{where} must be an array of strings")
    return value


def _parse_pyproject(text: str) -> Manifest:
    doc = _toml(text)
    found = _Collector()

    def requirements(items: list[str]) -> None:
        for item in items:
            raw_name, spec = _pep508(item)
            found.add(_pypi(raw_name, spec), key=raw_name)

    build = _table(doc.get("build-system"), "build-system")
    requirements(_string_list(build.get("requires"), "build-system.requires"))
    project = _table(doc.get("project"), "project")
    requirements(_string_list(project.get("dependencies"), "project.dependencies"))
    optional = _table(project.get("optional-dependencies"), "project.optional-dependencies")
    for extra, items in optional.items():
        requirements(_string_list(items, f"project.optional-dependencies.{extra}"))
    # PEP 735: a group lists requirement strings and {include-group = "..."} tables.
    groups = _table(doc.get("dependency-groups"), "dependency-groups")
    for group, items in groups.items():
        if not isinstance(items, list):
            raise _Invalid(f"dependency-groups.{group} must be an array")
        for item in items:
            if isinstance(item, str):
                requirements([item])
            elif not (isinstance(item, dict) and isinstance(item.get("include-group"), str)):
                raise _Invalid(f"dependency-groups.{group} has an entry that is not a requirement")

    tool = _table(doc.get("tool"), "tool")
    poetry = _table(tool.get("poetry"), "tool.poetry")
    _poetry_dependencies(found, poetry.get("dependencies"), "tool.poetry.dependencies")
    _poetry_dependencies(found, poetry.get("dev-dependencies"), "tool.poetry.dev-dependencies")
    for group, body in _table(poetry.get("group"), "tool.poetry.group").items():
        where = f"tool.poetry.group.{group}"
        _poetry_dependencies(found, _table(body, where).get("dependencies"), where)
    uv = _table(tool.get("uv"), "tool.uv")
    requirements(_string_list(uv.get("dev-dependencies"), "tool.uv.dev-dependencies"))

    pdm = _table(tool.get("pdm"), "tool.pdm")
    # Indexes and per-package sources: Poetry
    # (https://python-poetry.org/docs/repositories/), uv
    # (https://docs.astral.sh/uv/concepts/indexes/, .../dependencies/#dependency-sources)
    # and PDM (https://pdm-project.org/latest/usage/config/#configure-the-package-indexes).
    # Each entry is a source as a whole: a new index, a changed URL or priority, a
    # package pinned to another index, git repository or path.
    settings = {
        "tool.poetry.source": poetry.get("source"),
        "tool.uv.index": uv.get("index"),
        "tool.uv.sources": uv.get("sources"),
        "tool.uv.index-url": uv.get("index-url"),
        "tool.uv.extra-index-url": uv.get("extra-index-url"),
        "tool.uv.find-links": uv.get("find-links"),
        "tool.uv.no-index": uv.get("no-index"),
        "tool.uv.index-strategy": uv.get("index-strategy"),
        "tool.pdm.source": pdm.get("source"),
    }
    for label, value in settings.items():
        found.sources.update(source_entries(label, value))
    return found.manifest(_toml_locator(text, pep503_name))


def source_entries(label: str, value: object) -> set[str]:
    """One redacted, canonical string per entry of a source setting (a list, a table
    of named entries, or a single value), so any change to an entry is a new source."""
    if value is None:
        return set()
    if isinstance(value, list):
        items: list[tuple[str, object]] = [("", item) for item in value]
    elif isinstance(value, dict):
        items = [(f" {key}", item) for key, item in value.items()]
    else:
        items = [("", value)]
    entries = set()
    for key, item in items:
        shown = json.dumps(item, sort_keys=True, default=str) if not isinstance(item, str) else item
        entries.add(f"{label}{key} = {redact_url(shown)}")
    return entries


def _poetry_dependencies(found: _Collector, value: object, where: str) -> None:
    for raw_name, constraint in _table(value, where).items():
        if raw_name.lower() == "python":
            # The interpreter version, not a package.
            continue
        for one in constraint if isinstance(constraint, list) else [constraint]:
            spec = _poetry_spec(one, f"{where}.{raw_name}")
            if spec is not None:
                found.add(_pypi(raw_name, spec), key=raw_name)


def _poetry_spec(constraint: object, where: str) -> str | None:
    """Spec of one Poetry constraint; ``None`` for a local path dependency."""
    if isinstance(constraint, str):
        return _squash(constraint)
    if not isinstance(constraint, dict):
        raise _Invalid(f"{where} must be a string or a table")
    if isinstance(constraint.get("git"), str):
        ref = next(
            (constraint[k] for k in ("rev", "tag", "branch") if isinstance(constraint.get(k), str)),
            None,
        )
        url = "git+" + redact_url(constraint["git"])
        return url + (f"@{ref}" if ref else "")
    if isinstance(constraint.get("url"), str):
        return "@ " + redact_url(constraint["url"])
    if isinstance(constraint.get("path"), str):
        return None
    version = constraint.get("version", "")
    if not isinstance(version, str):
        raise _Invalid(f"{where}.version must be a string")
    return _squash(version)


# --- Cargo.toml --------------------------------------------------------------------

_CARGO_SECTIONS = (
    "dependencies",
    "dev-dependencies",
    "dev_dependencies",
    "build-dependencies",
    "build_dependencies",
)


def _parse_cargo(text: str) -> Manifest:
    doc = _toml(text)
    found = _Collector()
    tables: list[tuple[str, object]] = [(name, doc.get(name)) for name in _CARGO_SECTIONS]
    for cfg, body in _table(doc.get("target"), "target").items():
        target = _table(body, f"target.{cfg}")
        tables.extend((f"target.{cfg}.{name}", target.get(name)) for name in _CARGO_SECTIONS)
    workspace = _table(doc.get("workspace"), "workspace")
    tables.append(("workspace.dependencies", workspace.get("dependencies")))
    # [patch.<registry>] swaps a crate's source for the whole build, and so does the
    # older [replace] (https://doc.rust-lang.org/cargo/reference/overriding-dependencies.html).
    for registry, body in _table(doc.get("patch"), "patch").items():
        tables.append((f"patch.{registry}", body))
        found.sources.update(source_entries(f"patch.{registry}", body))
    found.sources.update(source_entries("replace", doc.get("replace")))
    for where, value in tables:
        for key, dependency in _table(value, where).items():
            package = _cargo_package(key, dependency, f"{where}.{key}")
            if package is not None:
                found.add(package, key=key)
    return found.manifest(_toml_locator(text, lambda name: name))


def _cargo_package(key: str, dependency: object, where: str) -> Package | None:
    if isinstance(dependency, str):
        return Package(Ecosystem.CARGO, key, dependency.strip())
    if not isinstance(dependency, dict):
        raise _Invalid(f"{where} must be a string or a table")
    real = dependency.get("package", key)
    if not isinstance(real, str):
        raise _Invalid(f"{where}.package must be a string")
    if dependency.get("workspace") is True:
        return Package(Ecosystem.CARGO, real, "workspace")
    git = dependency.get("git")
    version = dependency.get("version")
    if isinstance(git, str):
        ref = next(
            (dependency[k] for k in ("rev", "tag", "branch") if isinstance(dependency.get(k), str)),
            None,
        )
        return Package(Ecosystem.CARGO, real, "git+" + redact_url(git) + (f"#{ref}" if ref else ""))
    if version is None and "path" in dependency:
        return None
    if version is not None and not isinstance(version, str):
        raise _Invalid(f"{where}.version must be a string")
    spec = (version or "").strip()
    registry = dependency.get("registry")
    if isinstance(registry, str):
        spec = f"{spec} (registry {registry})".strip()
    return Package(Ecosystem.CARGO, real, spec)


# --- JSON (npm) --------------------------------------------------------------------

_JSON_KEY = re2.compile(r"\"((?:[^\"\\]|\\.)*)\"\s*:")
_NPM_SECTIONS = ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies")


def _json(text: str) -> dict[str, object]:
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise _Invalid(f"invalid JSON: {error}") from error
    if not isinstance(doc, dict):
        raise _Invalid("the top level must be an object")
    return doc


def _json_locator(text: str) -> Callable[[str], int | None]:
    index: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        for match in _JSON_KEY.finditer(line):
            index.setdefault(str(match.group(1)), number)
    # Keys are looked up as JSON would escape them.
    return lambda key: index.get(json.dumps(key)[1:-1])


def _parse_package_json(text: str) -> Manifest:
    doc = _json(text)
    found = _Collector()
    for section in _NPM_SECTIONS:
        body = doc.get(section)
        if body is None:
            continue
        if not isinstance(body, dict):
            raise _Invalid(f"{section} must be an object")
        for name, spec in body.items():
            if not isinstance(spec, str):
                raise _Invalid(f"{section}.{_excerpt(name)} must be a string")
            found.add(Package(Ecosystem.NPM, name.strip(), redact_url(spec.strip())), key=name)
    # Replacements of (transitive) dependencies: npm ``overrides``
    # (https://docs.npmjs.com/cli/configuring-npm/package-json#overrides), Yarn
    # ``resolutions`` (https://yarnpkg.com/configuration/manifest#resolutions) and
    # ``pnpm.overrides`` (https://pnpm.io/package_json#pnpmoverrides).
    pnpm = doc.get("pnpm")
    settings = {
        "overrides": doc.get("overrides"),
        "resolutions": doc.get("resolutions"),
        "pnpm.overrides": pnpm.get("overrides") if isinstance(pnpm, dict) else None,
    }
    for label, value in settings.items():
        found.sources.update(source_entries(label, value))
    return found.manifest(_json_locator(text))


def _parse_package_lock(text: str) -> Manifest:
    doc = _json(text)
    found = _Collector()
    packages = doc.get("packages")
    if packages is not None:
        # lockfileVersion 2 and 3: a flat map keyed by install path.
        if not isinstance(packages, dict):
            raise _Invalid("packages must be an object")
        for key, entry in packages.items():
            if "node_modules/" not in key:
                # "" is the root project; other keys are local workspaces.
                continue
            if not isinstance(entry, dict):
                raise _Invalid(f"packages entry {_excerpt(key)} must be an object")
            if entry.get("link") is True:
                continue
            name = entry.get("name", key.rsplit("node_modules/", 1)[1])
            found.add(Package(Ecosystem.NPM, str(name), _lock_spec(entry)), key=key)
            found.sources.update(_resolved_host(entry))
        return found.manifest(_json_locator(text))
    # lockfileVersion 1: a tree of "dependencies", walked without recursion.
    pending: list[tuple[object, str]] = [(doc.get("dependencies"), "dependencies")]
    while pending:
        tree, where = pending.pop()
        for name, entry in _json_object(tree, where).items():
            if not isinstance(entry, dict):
                raise _Invalid(f"{where}.{_excerpt(name)} must be an object")
            found.add(Package(Ecosystem.NPM, name, _lock_spec(entry)), key=name)
            found.sources.update(_resolved_host(entry))
            if entry.get("dependencies") is not None:
                pending.append((entry["dependencies"], f"{where}.{name}"))
    return found.manifest(_json_locator(text))


def _json_object(value: object, where: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"{_excerpt(where)} must be an object")
    return value


_URL_ORIGIN = re2.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)")


def _resolved_host(entry: dict[str, object]) -> set[str]:
    """Where a locked package is downloaded from: a tarball host new to the lockfile is
    a new source even when name and version stay (``resolved`` pointed elsewhere)."""
    resolved = entry.get("resolved")
    if not isinstance(resolved, str):
        return set()
    origin = _URL_ORIGIN.search(resolved)
    if origin is None:
        return set()
    return {f"resolved from {redact_url(str(origin.group(1)) + '/')}"}


def _lock_spec(entry: dict[str, object]) -> str:
    version = entry.get("version", "")
    if not isinstance(version, str):
        raise _Invalid("a locked version must be a string")
    resolved = entry.get("resolved")
    # A package resolved from git or a local file is not a registry version.
    if isinstance(resolved, str) and not resolved.startswith(("http://", "https://")):
        return redact_url(resolved)
    return redact_url(version)


# --- go.mod ------------------------------------------------------------------------

_GO_DIRECTIVE = re2.compile(r"^([A-Za-z]+)\s*(.*)$")


def _go_unquote(token: str) -> str:
    if len(token) >= 2 and token[0] == token[-1] and token[0] in '"`':
        return token[1:-1]
    return token


def _parse_go_mod(text: str) -> Manifest:
    found = _Collector()
    block: str | None = None
    block_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                _go_line(found, block, line, number)
            continue
        directive = _GO_DIRECTIVE.search(line)
        if directive is None:
            raise _Invalid(f"line {number}: not a go.mod directive")
        verb: str = directive.group(1)
        rest: str = directive.group(2).strip()
        if rest == "(":
            block, block_line = verb, number
        elif rest:
            _go_line(found, verb, rest, number)
        else:
            raise _Invalid(f"line {number}: {verb} has no arguments")
    if block is not None:
        raise _Invalid(f"line {block_line}: {block} block is not closed")
    return found.manifest()


def _go_line(found: _Collector, verb: str, line: str, number: int) -> None:
    if verb == "require":
        tokens = [_go_unquote(token) for token in line.split()]
        if len(tokens) != 2 or not tokens[1].startswith("v"):
            raise _Invalid(f"line {number}: require needs a module path and a version")
        found.add(Package(Ecosystem.GO, tokens[0], tokens[1]), line=number)
    elif verb == "replace":
        # ``old [v] => new [v]``: a module replacement is a dependency on ``new``
        # unless ``new`` is a local directory (a path starting ./ ../ or /).
        if "=>" not in line:
            raise _Invalid(f"line {number}: replace needs =>")
        target = [_go_unquote(token) for token in line.split("=>", 1)[1].split()]
        if len(target) == 2:
            found.add(Package(Ecosystem.GO, target[0], target[1]), line=number)
        elif len(target) != 1:
            raise _Invalid(f"line {number}: replace target must be a path or a module and version")


# --- Gemfile -----------------------------------------------------------------------

_GEM_START = re2.compile(r"^gem\b")
_GEM = re2.compile(r"^gem[\s(]+[\"']([A-Za-z0-9._-]+)[\"']\s*(.*)$")
# The version arguments: the run of quoted strings right after the name.
_GEM_VERSIONS = re2.compile(r"^((?:\s*,\s*[\"'][^\"']*[\"'])*)(.*)$")
_GEM_STRING = re2.compile(r"[\"']([^\"']*)[\"']")
_GEM_OPTION = re2.compile(r"(?::|\b)(git|github|path|source)\s*(?::|=>)\s*[\"']([^\"']+)[\"']")
_GEM_SOURCE = re2.compile(r"^source[\s(]+[\"']([^\"']+)[\"']")
#: Where the gems of a block come from (https://bundler.io/man/gemfile.5.html):
#: ``source "url" do``, ``git "url" do``, ``github "org/repo" do``, ``path "dir" do``,
#: and ``git_source(:name)``, which defines a new kind of git location.
_GEM_BLOCK = re2.compile(r"^(source|git|github|path|git_source)\b[\s(]*(.*?)\s*(do\b.*)?$")
_BLOCK_OPEN = re2.compile(r"(?:\bdo|\{)\s*(?:\|[^|]*\|)?\s*$")


def _parse_gemfile(text: str) -> Manifest:
    found = _Collector()
    # Each open block: the source its gems come from, or "" for other blocks (group...).
    blocks: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = str(_COMMENT.sub("", raw)).strip()
        if line == "end" or line == "}":
            if blocks:
                blocks.pop()
            continue
        block = _GEM_BLOCK.search(line)
        if block is not None and _GEM_START.search(line) is None:
            kind: str = block.group(1)
            arguments = str(block.group(2))
            quoted = [str(m.group(1)) for m in _GEM_STRING.finditer(arguments)]
            argument = " ".join(quoted) if quoted else " ".join(arguments.split())
            where = f"{kind} {redact_url(argument)}".strip()
            found.sources.add(where)
            if _BLOCK_OPEN.search(line) is not None:
                blocks.append(where)
            continue
        if _GEM_START.search(line) is None:
            if _BLOCK_OPEN.search(line) is not None:
                blocks.append("")
            continue
        gem = _GEM.search(line)
        if gem is None:
            # A gem call we cannot read (a variable name, say) could add anything.
            raise _Invalid(f"line {number}: cannot read the gem declaration")
        split = _GEM_VERSIONS.search(gem.group(2))
        versions = [" ".join(str(m.group(1)).split()) for m in _GEM_STRING.finditer(split.group(1))]
        rest: str = split.group(2)
        options = {str(m.group(1)): str(m.group(2)) for m in _GEM_OPTION.finditer(rest)}
        if "git" in options or "github" in options:
            versions.append("git " + redact_url(options.get("git") or options["github"]))
        elif "path" in options:
            continue
        if "source" in options:
            versions.append("source " + redact_url(options["source"]))
        elif any(blocks):
            # Inside a source/git/path block: the gem comes from there.
            versions.append(next(where for where in reversed(blocks) if where))
        found.add(Package(Ecosystem.RUBYGEMS, gem.group(1), ", ".join(versions)), line=number)
    return found.manifest()


_PARSERS: Mapping[ManifestKind, Callable[[str], Manifest]] = {
    ManifestKind.REQUIREMENTS: _parse_requirements,
    ManifestKind.PYPROJECT: _parse_pyproject,
    ManifestKind.PACKAGE_JSON: _parse_package_json,
    ManifestKind.PACKAGE_LOCK: _parse_package_lock,
    ManifestKind.GO_MOD: _parse_go_mod,
    ManifestKind.CARGO: _parse_cargo,
    ManifestKind.GEMFILE: _parse_gemfile,
}


def _lockfile(locked: list[lockfiles.Locked]) -> Manifest:
    found = _Collector()
    for entry in locked:
        ecosystem = Ecosystem(entry.ecosystem)
        name = pep503_name(entry.name) if ecosystem is Ecosystem.PYPI else entry.name
        found.add(Package(ecosystem, name, redact_url(entry.version)), line=entry.line)
    return found.manifest()


# --- registry coordinates ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistryRef:
    """What to ask a registry or OSV about: the real name and, if pinned, the version."""

    ecosystem: Ecosystem
    name: str
    version: str | None


_NPM_DIRECT = (
    "git",
    "http:",
    "https:",
    "file:",
    "link:",
    "workspace:",
    "portal:",
    "patch:",
    "github:",
    "gitlab:",
    "bitbucket:",
    "gist:",
)
_SEMVER = re2.compile(r"^=?v?([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$")
_GEM_EXACT = re2.compile(r"^=?\s*([0-9][0-9A-Za-z.]*)$")


_NPM_LOCAL = ("file:", "link:", "workspace:", "portal:")
_GEM_ORIGINS = ("git ", "source ", "github ", "path ")


def origin(package: Package) -> str:
    """Where ``package`` is fetched from: ``""`` for its ecosystem's registry under its
    own name, else what its spec names instead: an alias (``npm:other``), a URL, a VCS
    repository, a path or another registry. A change of origin is a new source even
    when the name stays."""
    spec = package.spec
    if package.ecosystem is Ecosystem.NPM:
        if spec.startswith("npm:"):
            alias = spec[4:]
            at = alias.rfind("@")
            return "npm:" + (alias[:at] if at > 0 else alias)
        if spec.startswith(_NPM_DIRECT) or ("/" in spec and not spec.startswith("@")):
            return spec
        return ""
    if package.ecosystem is Ecosystem.PYPI:
        return spec if spec.startswith("@") else ""
    if package.ecosystem is Ecosystem.CARGO:
        if spec.startswith("git+"):
            return spec
        at = spec.find("(registry ")
        return spec[at:] if at >= 0 else ""
    if package.ecosystem is Ecosystem.RUBYGEMS:
        return ", ".join(part for part in spec.split(", ") if part.startswith(_GEM_ORIGINS))
    return ""


def is_local(package: Package) -> bool:
    """True for a package from this repository: an npm ``file:``/``link:``/``workspace:``
    spec or a Cargo ``workspace = true`` dependency (its version is declared, and
    checked, in the workspace root). Such a package has no registry coordinates."""
    if package.ecosystem is Ecosystem.NPM:
        return package.spec.startswith(_NPM_LOCAL)
    return package.ecosystem is Ecosystem.CARGO and package.spec == "workspace"


def registry_ref(package: Package) -> RegistryRef | None:
    """The registry coordinates of ``package``; ``None`` for a direct (URL, git, path) one."""
    spec = package.spec
    if package.ecosystem is Ecosystem.PYPI:
        if spec.startswith("@") or "://" in package.name:
            return None
        pinned = spec[2:] if spec.startswith("==") and "," not in spec else ""
        pinned = pinned.lstrip("=")
        return RegistryRef(
            package.ecosystem, package.name, pinned if pinned and "*" not in pinned else None
        )
    if package.ecosystem is Ecosystem.NPM:
        name = package.name
        if spec.startswith("npm:"):
            # An alias: "local-name": "npm:real-name@range".
            alias = spec[4:]
            at = alias.rfind("@")
            name, spec = (alias[:at], alias[at + 1 :]) if at > 0 else (alias, "")
        if spec.startswith(_NPM_DIRECT) or ("/" in spec and not spec.startswith("@")):
            return None
        exact = _SEMVER.search(spec)
        return RegistryRef(package.ecosystem, name, str(exact.group(1)) if exact else None)
    if package.ecosystem is Ecosystem.GO:
        # OSV lists Go versions without the leading "v".
        return RegistryRef(
            package.ecosystem, package.name, spec[1:] if spec.startswith("v") else spec or None
        )
    if package.ecosystem is Ecosystem.CARGO:
        if spec.startswith("git+") or spec == "workspace":
            return None
        exact = _SEMVER.search(spec) if spec.startswith("=") else None
        return RegistryRef(package.ecosystem, package.name, str(exact.group(1)) if exact else None)
    if package.ecosystem is Ecosystem.PACKAGIST:
        if spec.startswith(("dev-", "git", "path")):
            return None
        exact = _SEMVER.search(spec)
        return RegistryRef(package.ecosystem, package.name, str(exact.group(1)) if exact else None)
    if spec.startswith("git ") or ", git " in spec or spec.startswith("git+"):
        return None
    gem = _GEM_EXACT.search(spec)
    return RegistryRef(package.ecosystem, package.name, str(gem.group(1)) if gem else None)
