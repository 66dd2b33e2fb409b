"""New and changed dependencies, found by parsing manifests at base and at head.

The detector compares the whole manifest on both sides rather than the diff
hunks: a hunk cannot tell a new package from a moved line, and a one-line
change to a TOML table header can rename every package under it. Parsing is in
:mod:`gate.detectors.manifests`.

Fail closed: a manifest the edge did not read, could not read (too large), or
that does not parse yields a finding, never an empty answer.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gate.detectors.base import Finding, ScanInput
from gate.detectors.manifests import (
    Ecosystem,
    Manifest,
    Package,
    ParseError,
    manifest_kind,
    origin,
    parse_manifest,
)
from gate.detectors.secrets import redact_text
from gate.model import ChangedFile, FileStatus

BASE = "base"
HEAD = "head"

#: Findings listed per rule and file; the rest are counted in one more finding, so
#: a lockfile refresh that pulls in hundreds of packages cannot flood a check run.
MAX_LISTED = 50

#: Longest package name or spec put in a message, so one hostile manifest
#: cannot flood a check run.
_MESSAGE_FIELD_LIMIT = 120


@dataclass(frozen=True, slots=True)
class _Side:
    """One side of the comparison: either a parsed manifest or why there is none."""

    manifest: Manifest | None
    problem: Finding | None = None


_EMPTY = Manifest(packages=frozenset())


class DependencyDetector:
    """Findings ``new-package``, ``version-change``, ``new-source``, ``manifest-unread``,
    ``manifest-invalid``; removals are not findings."""

    name: str = "dependencies"

    def wanted(self, file: ChangedFile) -> frozenset[tuple[str, str]]:
        base_path, head_path = _paths(file)
        wanted: set[tuple[str, str]] = set()
        if base_path is not None:
            wanted.add((BASE, base_path))
        if head_path is not None:
            wanted.add((HEAD, head_path))
        return frozenset(wanted)

    def scan(self, data: ScanInput) -> Sequence[Finding]:
        by_path = _path_findings(self.name, data.file)
        return (*by_path, *self._manifest(data))

    def _manifest(self, data: ScanInput) -> Sequence[Finding]:
        base_path, head_path = _paths(data.file)
        if head_path is None:
            # Removed (or renamed away from a manifest name): nothing added.
            return ()
        path = data.file.path
        base = _read(self.name, data, BASE, base_path, path) if base_path else _Side(_EMPTY)
        head = _read(self.name, data, HEAD, head_path, path)
        findings = [side.problem for side in (base, head) if side.problem is not None]
        if head.manifest is None:
            return tuple(findings)
        # An unreadable base is compared as empty: every head package counts as new.
        findings.extend(_compare(self.name, path, base=base.manifest or _EMPTY, head=head.manifest))
        return tuple(findings)


#: Package-manager settings that choose registries, indexes and mirrors:
#: https://docs.npmjs.com/cli/configuring-npm/npmrc,
#: https://yarnpkg.com/configuration/yarnrc, https://classic.yarnpkg.com/en/docs/yarnrc,
#: https://pip.pypa.io/en/stable/topics/configuration/,
#: https://docs.astral.sh/uv/concepts/configuration-files/, https://bun.sh/docs/runtime/bunfig,
#: https://doc.rust-lang.org/cargo/reference/config.html,
#: https://bundler.io/man/bundle-config.1.html, https://pnpm.io/pnpmfile.
#: Any change counts, removal included: dropping a scoped registry sends its
#: packages to the public one (dependency confusion).
_SOURCE_CONFIG_NAMES = frozenset(
    {
        ".npmrc",
        ".yarnrc",
        ".yarnrc.yml",
        "pip.conf",
        "pip.ini",
        "uv.toml",
        "bunfig.toml",
        ".pnpmfile.cjs",
        ".condarc",
    }
)
_SOURCE_CONFIG_IN = {
    ".cargo": frozenset({"config", "config.toml"}),
    ".bundle": frozenset({"config"}),
}
#: Manifests merge-gate does not parse (setup.py is a program): their dependency
#: changes are unknown, so an edit is treated as an unread manifest.
_UNPARSED_MANIFESTS = frozenset({"setup.py", "setup.cfg", "Pipfile"})


def _path_findings(detector: str, file: ChangedFile) -> list[Finding]:
    findings: list[Finding] = []
    for path in file.paths:
        name = posixpath.basename(path)
        parent = posixpath.basename(posixpath.dirname(path))
        if name in _SOURCE_CONFIG_NAMES or name in _SOURCE_CONFIG_IN.get(parent, ()):
            findings.append(
                Finding(
                    detector=detector,
                    rule="new-source",
                    path=file.path,
                    line=None,
                    message=(
                        f"package manager settings {_safe(path)} {file.status.value}: "
                        "they choose the registries packages come from"
                    ),
                )
            )
            break
    else:
        if file.status is not FileStatus.REMOVED and posixpath.basename(file.path) in (
            _UNPARSED_MANIFESTS
        ):
            findings.append(
                Finding(
                    detector=detector,
                    rule="manifest-unread",
                    path=file.path,
                    line=None,
                    message=(
                        f"{_safe(file.path)} is not a manifest merge-gate parses; "
                        "its dependency changes are unknown"
                    ),
                )
            )
    return findings


def new_packages(data: ScanInput) -> tuple[Package, ...]:
    """Packages at head not named the same way at base: new names and new versions.

    For the edge's supply-chain scan. An unreadable head yields nothing and an
    unreadable base counts every head package as new, as in the detector, which
    also reports either as a finding.
    """
    base_path, head_path = _paths(data.file)
    if head_path is None:
        return ()
    head = _read("dependencies", data, HEAD, head_path, data.file.path).manifest
    if head is None:
        return ()
    base = _EMPTY
    if base_path is not None:
        base = _read("dependencies", data, BASE, base_path, data.file.path).manifest or _EMPTY
    return tuple(sorted(head.packages - base.packages))


def _paths(file: ChangedFile) -> tuple[str | None, str | None]:
    """(base path, head path) of the manifest behind ``file``; ``None`` where there is none.

    A copy is a new manifest: its packages are new to that file, so it is
    compared against nothing, like an added one.
    """
    head_path = file.path if manifest_kind(file.path) is not None else None
    if file.status is FileStatus.REMOVED:
        return (head_path, None)
    if file.status in (FileStatus.ADDED, FileStatus.COPIED):
        return (None, head_path)
    base_candidate = file.previous_path or file.path
    base_path = base_candidate if manifest_kind(base_candidate) is not None else None
    if head_path is None:
        return (base_path, None)
    return (base_path, head_path)


def _read(detector: str, data: ScanInput, side: str, path: str, shown: str) -> _Side:
    def problem(rule: str, why: str) -> _Side:
        return _Side(
            None,
            Finding(
                detector=detector,
                rule=rule,
                path=shown,
                line=None,
                message=(
                    f"{side} version of {_safe(path)} {why}; its dependency changes are unknown"
                ),
            ),
        )

    if not data.contents.has(side, path):
        return problem("manifest-unread", "was not read")
    if (side, path) in data.contents.too_large:
        return problem("manifest-unread", "is too large to read")
    text = data.contents.get(side, path)
    if text is None:
        if side == BASE:
            # Not there at base (e.g. a status GitHub reported oddly): nothing to subtract.
            return _Side(_EMPTY)
        return problem("manifest-unread", "does not exist")
    parsed = parse_manifest(path=path, text=text)
    if isinstance(parsed, ParseError):
        return problem("manifest-invalid", f"could not be parsed ({_safe(parsed.reason)})")
    return _Side(parsed)


def _compare(detector: str, path: str, *, base: Manifest, head: Manifest) -> list[Finding]:
    before = _by_key(base.packages)
    after = _by_key(head.packages)
    lines: dict[tuple[str, str], int] = {}
    for package, number in head.lines.items():
        key = (package.ecosystem.value, package.name)
        lines[key] = min(number, lines.get(key, number))
    findings: list[Finding] = []
    for key in sorted(after):
        ecosystem, name = key
        specs = after[key]
        line = lines.get(key)
        if key not in before:
            findings.append(
                Finding(
                    detector=detector,
                    rule="new-package",
                    path=path,
                    line=line,
                    message=f"new {ecosystem} package {_safe(name)}{_spec_suffix(specs)}",
                )
            )
        elif moved := _new_origins(ecosystem, name, before=before[key], after=specs):
            # A pin turned into a URL, a git repository, a path or an alias: the
            # code comes from somewhere no scan of the registry covers.
            findings.append(
                Finding(
                    detector=detector,
                    rule="new-source",
                    path=path,
                    line=line,
                    message=(
                        f"{ecosystem} package {_safe(name)} now comes from "
                        f"{' | '.join(_safe(m) for m in moved)} (was {_specs(before[key])})"
                    ),
                )
            )
        elif before[key] != specs:
            findings.append(
                Finding(
                    detector=detector,
                    rule="version-change",
                    path=path,
                    line=line,
                    message=(
                        f"{ecosystem} package {_safe(name)} version changed: "
                        f"{_specs(before[key])} -> {_specs(specs)}"
                    ),
                )
            )
    findings = _capped(detector, path, findings)
    for source in sorted(head.sources - base.sources):
        findings.append(
            Finding(
                detector=detector,
                rule="new-source",
                path=path,
                line=None,
                message=f"new package source: {_safe(source)}",
            )
        )
    return findings


def _capped(detector: str, path: str, findings: list[Finding]) -> list[Finding]:
    """At most ``MAX_LISTED`` findings of each rule, then one that counts the rest."""
    kept: list[Finding] = []
    shown: dict[str, int] = {}
    hidden: dict[str, int] = {}
    for finding in findings:
        if shown.get(finding.rule, 0) < MAX_LISTED:
            kept.append(finding)
            shown[finding.rule] = shown.get(finding.rule, 0) + 1
        else:
            hidden[finding.rule] = hidden.get(finding.rule, 0) + 1
    for rule, count in sorted(hidden.items()):
        what = "new packages" if rule == "new-package" else "version changes"
        kept.append(
            Finding(
                detector=detector,
                rule=rule,
                path=path,
                line=None,
                message=f"and {count} more {what}, not listed",
            )
        )
    return kept


def _new_origins(
    ecosystem: str, name: str, *, before: frozenset[str], after: frozenset[str]
) -> list[str]:
    """Origins (other than the registry) ``after`` names that ``before`` did not."""

    def origins(specs: frozenset[str]) -> set[str]:
        return {origin(Package(Ecosystem(ecosystem), name, spec)) for spec in specs}

    return sorted(origins(after) - origins(before) - {""})


def _by_key(packages: Iterable[Package]) -> dict[tuple[str, str], frozenset[str]]:
    grouped: dict[tuple[str, str], set[str]] = {}
    for package in packages:
        grouped.setdefault((package.ecosystem.value, package.name), set()).add(package.spec)
    return {key: frozenset(specs) for key, specs in grouped.items()}


def _specs(specs: frozenset[str]) -> str:
    shown = " | ".join(_safe(spec) for spec in sorted(specs) if spec)
    return shown or "any version"


def _spec_suffix(specs: frozenset[str]) -> str:
    shown = _specs(specs)
    return "" if shown == "any version" else f" ({shown})"


def _safe(text: str) -> str:
    """One line, printable, bounded, no secret: names come from an untrusted manifest.

    Secrets are redacted before the cut, which could otherwise leave half of one.
    """
    flat = redact_text("".join(ch if ch.isprintable() else " " for ch in text))
    flat = " ".join(flat.split())
    if len(flat) > _MESSAGE_FIELD_LIMIT:
        flat = flat[: _MESSAGE_FIELD_LIMIT - 1] + "…"
    return flat
