"""Pure parsers from lockfile text to the exact packages it pins.

A package that appears only in a lockfile is still a new dependency: code can
import a transitive package, and a lockfile edit alone changes what installs.
:mod:`gate.detectors.manifests` turns what these parsers return into packages
and compares base with head like any manifest.

Formats (each parser is one linear pass; TOML, JSON and YAML go through
``tomllib``, ``json`` and PyYAML's safe loader, never a regex):

- ``uv.lock``: https://docs.astral.sh/uv/concepts/projects/layout/#the-lockfile
- ``poetry.lock``: ``[[package]]`` tables (https://python-poetry.org/docs/basic-usage/)
- ``Pipfile.lock``: https://pipenv.pypa.io/en/latest/pipfile.html (``default``, ``develop``)
- ``Cargo.lock``: https://doc.rust-lang.org/cargo/guide/cargo-toml-vs-cargo-lock.html
- ``Gemfile.lock``: Bundler's ``GEM``/``GIT`` sections, ``specs:`` at four spaces
- ``go.sum``: https://go.dev/ref/mod#go-sum-files
- ``yarn.lock``: v1 (its own format) and Berry (YAML, ``__metadata``)
- ``pnpm-lock.yaml``: v5/v6 (``/name/1.0.0``, ``/name@1.0.0``) and v9 (``name@1.0.0``)
- ``composer.lock``: https://getcomposer.org/doc/01-basic-usage.md (``packages``, ``packages-dev``)

Packages of the repository itself (workspace members, ``path``/``editable``
sources, Bundler ``PATH`` gems) are left out: they are not dependencies.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Locked:
    """One pinned package: ecosystem (``pypi``, ``npm``...), name, version, line."""

    ecosystem: str
    name: str
    version: str
    line: int | None = None


class LockfileError(ValueError):
    """The text is not a readable lockfile of its kind; the message is safe to render."""


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LockfileError(f"invalid TOML: {error}") from error


def _json(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as error:
        raise LockfileError(f"invalid JSON: {error}") from error
    if not isinstance(doc, dict):
        raise LockfileError("the top level must be an object")
    return doc


def _yaml(text: str) -> dict[str, Any]:
    # Imported here: only a YAML lockfile needs it, and ``gate hook`` judges every
    # write with this module loaded.
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as error:
        raise LockfileError(f"invalid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(doc, dict):
        raise LockfileError("the top level must be a mapping")
    return doc


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise LockfileError(f"{where} must be a string")
    return value


def _name_lines(text: str, prefix: str) -> dict[str, int]:
    """Line of each ``name = "x"`` (TOML) line: where a package's table starts."""
    index: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(prefix):
            index.setdefault(line[len(prefix) :].strip().strip('"'), number)
    return index


def _toml_packages(text: str) -> Iterator[tuple[dict[str, Any], str, str, int | None]]:
    """(table, name, version, line) of each ``[[package]]`` of a TOML lockfile."""
    packages = _toml(text).get("package", [])
    if not isinstance(packages, list):
        raise LockfileError("package must be an array of tables")
    lines = _name_lines(text, "name = ")
    for entry in packages:
        if not isinstance(entry, dict):
            raise LockfileError("each package must be a table")
        name = _str(entry.get("name"), "package.name")
        version = _str(entry.get("version", ""), f"version of {name[:60]}")
        yield entry, name, version, lines.get(name)


def _git_spec(url: str) -> str:
    return url if url.startswith("git+") else "git+" + url


def parse_uv_lock(text: str) -> list[Locked]:
    found = []
    for entry, name, version, line in _toml_packages(text):
        source = entry.get("source", {})
        if not isinstance(source, dict):
            raise LockfileError(f"source of {name[:60]} must be a table")
        if {"editable", "virtual", "path", "directory"} & set(source):
            continue  # the project itself or a local path
        spec = version
        if "git" in source:
            spec = _git_spec(_str(source["git"], f"git source of {name[:60]}"))
        elif "url" in source:
            spec = "@ " + _str(source["url"], f"url source of {name[:60]}")
        found.append(Locked("pypi", name, spec, line))
    return found


def parse_poetry_lock(text: str) -> list[Locked]:
    found = []
    for entry, name, version, line in _toml_packages(text):
        source = entry.get("source", {})
        if not isinstance(source, dict):
            raise LockfileError(f"source of {name[:60]} must be a table")
        kind = source.get("type")
        if kind == "directory":
            continue
        spec = version
        if kind == "git":
            spec = _git_spec(_str(source.get("url"), f"git source of {name[:60]}"))
        elif kind in ("url", "file"):
            spec = "@ " + _str(source.get("url"), f"source of {name[:60]}")
        found.append(Locked("pypi", name, spec, line))
    return found


def parse_cargo_lock(text: str) -> list[Locked]:
    found = []
    for entry, name, version, line in _toml_packages(text):
        source = entry.get("source")
        if source is None:
            continue  # a member of this workspace
        source = _str(source, f"source of {name[:60]}")
        spec = _git_spec(source.split("#", 1)[0]) if source.startswith("git+") else version
        found.append(Locked("cargo", name, spec, line))
    return found


def parse_pipfile_lock(text: str) -> list[Locked]:
    doc = _json(text)
    found = []
    for section in ("default", "develop"):
        body = doc.get(section, {})
        if not isinstance(body, dict):
            raise LockfileError(f"{section} must be an object")
        for name, entry in body.items():
            if not isinstance(entry, dict):
                raise LockfileError(f"{section}.{name[:60]} must be an object")
            if "path" in entry or entry.get("editable") is True:
                continue
            if "git" in entry:
                spec = _git_spec(_str(entry["git"], f"git of {name[:60]}"))
            else:
                spec = _str(entry.get("version", ""), f"version of {name[:60]}")
            found.append(Locked("pypi", name, spec))
    return found


def parse_composer_lock(text: str) -> list[Locked]:
    doc = _json(text)
    found = []
    for section in ("packages", "packages-dev"):
        body = doc.get(section, [])
        if not isinstance(body, list):
            raise LockfileError(f"{section} must be an array")
        for entry in body:
            if not isinstance(entry, dict):
                raise LockfileError(f"each of {section} must be an object")
            name = _str(entry.get("name"), f"{section}[].name")
            version = _str(entry.get("version", ""), f"version of {name[:60]}")
            dist = entry.get("dist")
            if isinstance(dist, dict) and dist.get("type") == "path":
                continue
            found.append(Locked("packagist", name, version))
    return found


def parse_gemfile_lock(text: str) -> list[Locked]:
    """``GEM`` and ``GIT`` sections: ``specs:`` lines at four spaces are the gems."""
    found = []
    section = ""
    remote = ""
    for number, line in enumerate(text.splitlines(), 1):
        if line and not line[0].isspace():
            section, remote = line.strip(), ""
            continue
        if section not in ("GEM", "GIT"):
            continue  # PATH gems are this repository's; PLATFORMS, DEPENDENCIES...
        if line.startswith("  remote: "):
            remote = line[len("  remote: ") :].strip()
            continue
        if not line.startswith("    ") or line.startswith("     "):
            continue
        name, sep, rest = line.strip().partition(" (")
        if not sep or not rest.endswith(")") or not name:
            raise LockfileError(f"line {number}: expected 'name (version)'")
        version = rest[:-1].split("-", 1)[0] if "-" in rest and section == "GEM" else rest[:-1]
        spec = _git_spec(remote) if section == "GIT" and remote else version
        found.append(Locked("rubygems", name, spec, number))
    return found


def parse_go_sum(text: str) -> list[Locked]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[2].startswith("h1:"):
            raise LockfileError(f"line {number}: expected 'module version h1:hash'")
        version = fields[1].removesuffix("/go.mod")
        found.append(Locked("go", fields[0], version, number))
    return found


def _npm_name(descriptor: str) -> str:
    """``@scope/name`` of ``@scope/name@^1.0.0`` or ``name@npm:^1.0.0``."""
    descriptor = descriptor.strip().strip('"')
    at = descriptor.find("@", 1)
    return descriptor if at < 0 else descriptor[:at]


def _yarn_local(descriptor: str) -> bool:
    return any(f"@{p}" in descriptor for p in ("workspace:", "link:", "portal:", "file:"))


def parse_yarn_lock(text: str) -> list[Locked]:
    if "\n__metadata:" in "\n" + text:
        return _parse_yarn_berry(text)
    found = []
    names: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        if not line[0].isspace():
            if not line.endswith(":"):
                raise LockfileError(f"line {number}: expected a package header")
            descriptors = line[:-1].split(", ")
            names = [] if any(_yarn_local(d) for d in descriptors) else [descriptors[0]]
            start = number
            continue
        stripped = line.strip()
        top_level = line.startswith("  ") and not line.startswith("   ")
        if names and top_level and stripped.startswith("version "):
            version = stripped[len("version ") :].strip('"')
            found.append(Locked("npm", _npm_name(names[0]), version, start))
            names = []
    return found


def _parse_yarn_berry(text: str) -> list[Locked]:
    found = []
    for key, entry in _yaml(text).items():
        if key == "__metadata":
            continue
        key = str(key)
        if not isinstance(entry, dict):
            raise LockfileError(f"entry {key[:60]} must be a mapping")
        if _yarn_local(key):
            continue
        found.append(Locked("npm", _npm_name(key.split(", ")[0]), str(entry.get("version", ""))))
    return found


def _pnpm_key(key: str) -> tuple[str, str]:
    """(name, version) of a pnpm package key in any lockfile version."""
    key = key.lstrip("/").split("(", 1)[0]
    at = key.find("@", 1)
    if at > 0:
        return key[:at], key[at + 1 :]
    # v5: /name/1.0.0 or /@scope/name/1.0.0_peer@1.0.0
    name, _, version = key.rpartition("/")
    return name, version.split("_", 1)[0]


def parse_pnpm_lock(text: str) -> list[Locked]:
    packages = _yaml(text).get("packages") or {}
    if not isinstance(packages, dict):
        raise LockfileError("packages must be a mapping")
    found = []
    for key in packages:
        key = str(key)
        if key.startswith(("file:", "link:")):
            continue
        name, version = _pnpm_key(key)
        if not name or not version:
            raise LockfileError(f"unreadable package key {key[:60]}")
        if version.startswith(("file:", "link:")):
            continue
        found.append(Locked("npm", name, version))
    return found


#: File name -> parser.
PARSERS: Mapping[str, Callable[[str], list[Locked]]] = {
    "uv.lock": parse_uv_lock,
    "poetry.lock": parse_poetry_lock,
    "Pipfile.lock": parse_pipfile_lock,
    "Cargo.lock": parse_cargo_lock,
    "Gemfile.lock": parse_gemfile_lock,
    "gems.locked": parse_gemfile_lock,
    "go.sum": parse_go_sum,
    "yarn.lock": parse_yarn_lock,
    "pnpm-lock.yaml": parse_pnpm_lock,
    "composer.lock": parse_composer_lock,
}
