"""The supply-chain scan: new packages checked against OSV and their registries.

Three questions per package, each answered from a public service:

1. Known vulnerabilities: OSV's batch query
   (https://google.github.io/osv.dev/post-v1-querybatch/), with the pinned
   version, or the registry's latest one when the manifest gives a range. A
   range with no resolvable version is asked without one, which OSV answers
   with advisories for *any* version; those are shown but fail the scan only
   when they are malicious-package reports (``MAL-`` ids, which cover every
   version).
2. Existence and age, for PyPI (JSON API, https://docs.pypi.org/api/json/,
   first upload time over all release files) and npm (registry document,
   https://github.com/npm/registry/blob/main/docs/responses/package-metadata.md,
   ``time.created``): a 404 is a name an agent may have hallucinated, and a
   package first published less than ``min_age`` ago is one nobody has had time
   to vet.
3. Look-alike names: Damerau-Levenshtein (optimal string alignment) distance 1
   or 2 from a popular package's name, the shape of most typosquats.

A check that cannot run (timeout, network error, 5xx, a malformed answer)
makes the result ``unavailable`` with the reason, never a silent pass. A
definite problem makes it ``failed`` even when another check was unavailable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from gate.detectors.manifests import Ecosystem, Package, RegistryRef, is_local, registry_ref
from gate.model import ScanResult, ScanStatus

GATE = "supply_chain_scan"
DEFAULT_MIN_AGE = timedelta(days=30)

#: OSV's ecosystem names, https://ossf.github.io/osv-schema/#defined-ecosystems.
OSV_ECOSYSTEMS: Mapping[Ecosystem, str] = {
    Ecosystem.PYPI: "PyPI",
    Ecosystem.NPM: "npm",
    Ecosystem.GO: "Go",
    Ecosystem.CARGO: "crates.io",
    Ecosystem.RUBYGEMS: "RubyGems",
    Ecosystem.PACKAGIST: "Packagist",
}

#: OSV takes at most 1000 queries in one batch.
_OSV_BATCH = 1000
#: Lines of detail kept in a result, so one huge lockfile cannot bloat a check run.
_MAX_DETAILS = 100

# A short list of widely used package names, written down by hand from general
# knowledge for this project (package names are public facts; the list is not
# taken from any download-ranking data set). It is deliberately small: pass
# ``popular=`` to scan_packages to use a fuller, locally maintained list.
_POPULAR_PYPI = """
        aiohttp attrs beautifulsoup4 boto3 botocore celery certifi charset-normalizer click
        colorama cryptography django fastapi flask httpx idna jinja2 lxml markupsafe matplotlib
        numpy openai packaging pandas pillow pip psycopg2 pydantic pytest python-dateutil pyyaml
        redis requests scikit-learn scipy selenium setuptools six sqlalchemy tensorflow torch
        typing-extensions urllib3 wheel
        """
_POPULAR_NPM = """
        @types/node async axios bluebird body-parser chalk classnames commander cross-env debug
        dotenv electron eslint express fs-extra glob jest jquery lodash minimist moment mongoose
        next node-fetch preact prettier react react-dom request rxjs semver socket.io tslib
        typescript underscore uuid vue webpack ws yargs
        """
POPULAR: Mapping[Ecosystem, frozenset[str]] = {
    Ecosystem.PYPI: frozenset(_POPULAR_PYPI.split()),
    Ecosystem.NPM: frozenset(_POPULAR_NPM.split()),
}


@dataclass(frozen=True, slots=True)
class ScanUrls:
    """Where to ask; ``{name}`` is replaced by the URL-quoted package name."""

    osv_querybatch: str = "https://api.osv.dev/v1/querybatch"
    pypi: str = "https://pypi.org/pypi/{name}/json"
    npm: str = "https://registry.npmjs.org/{name}"


class _Unavailable(Exception):
    """A check could not give an answer; the message says why."""


@dataclass(frozen=True, slots=True)
class _Registry:
    exists: bool
    first_published: datetime | None = None
    latest: str | None = None
    #: A definite problem the registry's answer shows (no files, unpublished).
    problem: str | None = None


@dataclass(slots=True)
class _Report:
    problems: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def scan_packages(
    *,
    packages: Iterable[Package],
    head_sha: str,
    client: httpx.AsyncClient,
    urls: ScanUrls,
    now: datetime,
    min_age: timedelta = DEFAULT_MIN_AGE,
    popular: Mapping[Ecosystem, Collection[str]] = POPULAR,
    allow_direct_references: bool = False,
    timeout: float = 10.0,
    concurrency: int = 8,
    max_packages: int = 500,
) -> ScanResult:
    """Check every package in ``packages``; see the module docstring for what and how."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    report = _Report()
    unique = sorted(set(packages))
    if not unique:
        return ScanResult(
            gate=GATE,
            head_sha=head_sha,
            status=ScanStatus.PASSED,
            summary="no new packages to check",
        )
    refs: dict[RegistryRef, Package] = {}
    for package in unique:
        ref = registry_ref(package)
        if ref is not None:
            refs.setdefault(ref, package)
            continue
        if is_local(package):
            report.notes.append(f"{_label(package)}: local or workspace package, not checked")
            continue
        line = f"{_label(package)}: direct reference ({_short(package.spec or package.name)})"
        if allow_direct_references:
            report.notes.append(line + ", not checked against a registry")
        else:
            report.problems.append(line + " cannot be checked against a registry")
    if len(refs) > max_packages:
        report.unavailable.append(
            f"{len(refs)} packages to check, more than the limit of {max_packages}"
        )
        return _result(report, head_sha=head_sha, checked=len(unique), min_age=min_age)

    for ref in refs:
        report.problems.extend(_look_alike(ref, popular.get(ref.ecosystem, ())))

    registries = await _registries(
        refs, client=client, urls=urls, timeout=timeout, concurrency=concurrency
    )
    versions: dict[RegistryRef, str | None] = {}
    for ref in refs:
        versions[ref] = ref.version
        info = registries.get((ref.ecosystem, ref.name))
        if isinstance(info, _Unavailable):
            report.unavailable.append(f"{_ref_label(ref)}: {info}")
            continue
        if info is None:
            report.notes.append(f"{_ref_label(ref)}: registry age not checked for {ref.ecosystem}")
            continue
        report.problems.extend(_registry_problems(ref, info, now=now, min_age=min_age))
        if ref.version is None:
            versions[ref] = info.latest

    try:
        advisories = await _osv(versions, client=client, url=urls.osv_querybatch, timeout=timeout)
    except _Unavailable as error:
        report.unavailable.append(f"OSV: {error}")
    else:
        for ref, ids in advisories.items():
            _advisory_lines(report, ref, versions[ref], ids)
    return _result(report, head_sha=head_sha, checked=len(unique), min_age=min_age)


# --- registries ------------------------------------------------------------------------


async def _registries(
    refs: Iterable[RegistryRef],
    *,
    client: httpx.AsyncClient,
    urls: ScanUrls,
    timeout: float,
    concurrency: int,
) -> dict[tuple[Ecosystem, str], _Registry | _Unavailable]:
    templates = {Ecosystem.PYPI: urls.pypi, Ecosystem.NPM: urls.npm}
    names = sorted({(ref.ecosystem, ref.name) for ref in refs if ref.ecosystem in templates})
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(ecosystem: Ecosystem, name: str) -> _Registry | _Unavailable:
        url = templates[ecosystem].replace("{name}", quote(name, safe="@"))
        async with limit:
            try:
                document = await _get_json(client, url, timeout=timeout)
            except _Unavailable as error:
                return error
        if document is None:
            return _Registry(exists=False)
        try:
            if ecosystem is Ecosystem.PYPI:
                return _pypi(document)
            return _npm(document)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            return _Unavailable(f"unexpected registry answer ({type(error).__name__})")

    answers = await asyncio.gather(*(one(ecosystem, name) for ecosystem, name in names))
    return dict(zip(names, answers, strict=True))


async def _get_json(client: httpx.AsyncClient, url: str, *, timeout: float) -> Any:
    """The JSON document at ``url``; ``None`` for 404."""
    try:
        response = await client.get(url, timeout=timeout, follow_redirects=True)
    except httpx.TimeoutException as error:
        raise _Unavailable("timed out") from error
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise _Unavailable(f"request failed ({type(error).__name__})") from error
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise _Unavailable(f"HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as error:
        raise _Unavailable("answer is not JSON") from error


def _pypi(document: Any) -> _Registry:
    releases = document["releases"]
    if not isinstance(releases, dict):
        raise TypeError("releases")
    times = [
        _timestamp(upload.get("upload_time_iso_8601") or upload["upload_time"])
        for files in releases.values()
        for upload in files
    ]
    latest = document.get("info", {}).get("version")
    if not times:
        return _Registry(exists=True, latest=None, problem="has no released files on PyPI")
    return _Registry(
        exists=True,
        first_published=min(times),
        latest=latest if isinstance(latest, str) else None,
    )


def _npm(document: Any) -> _Registry:
    times = document.get("time", {})
    if not isinstance(times, dict):
        raise TypeError("time")
    if "unpublished" in times and not document.get("versions"):
        return _Registry(exists=True, problem="was unpublished from npm")
    latest = document.get("dist-tags", {}).get("latest")
    return _Registry(
        exists=True,
        first_published=_timestamp(times["created"]),
        latest=latest if isinstance(latest, str) else None,
    )


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("timestamp")
    stamp = datetime.fromisoformat(value)
    # PyPI's legacy upload_time has no zone; it is UTC.
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


_REGISTRY_NAMES = {Ecosystem.PYPI: "PyPI", Ecosystem.NPM: "npm"}


def _registry_problems(
    ref: RegistryRef, info: _Registry, *, now: datetime, min_age: timedelta
) -> list[str]:
    label = _ref_label(ref)
    if not info.exists:
        return [f"{label}: does not exist on {_REGISTRY_NAMES[ref.ecosystem]}"]
    if info.problem is not None:
        return [f"{label}: {info.problem}"]
    if info.first_published is not None and now - info.first_published < min_age:
        age = max(0, (now - info.first_published).days)
        return [f"{label}: first published {age} days ago, younger than {min_age.days} days"]
    return []


# --- OSV -------------------------------------------------------------------------------


async def _osv(
    versions: Mapping[RegistryRef, str | None],
    *,
    client: httpx.AsyncClient,
    url: str,
    timeout: float,
) -> dict[RegistryRef, tuple[str, ...]]:
    refs = list(versions)
    found: dict[RegistryRef, tuple[str, ...]] = {}
    for start in range(0, len(refs), _OSV_BATCH):
        chunk = refs[start : start + _OSV_BATCH]
        queries: list[dict[str, Any]] = []
        for ref in chunk:
            query: dict[str, Any] = {
                "package": {"name": ref.name, "ecosystem": OSV_ECOSYSTEMS[ref.ecosystem]}
            }
            if versions[ref]:
                query["version"] = versions[ref]
            queries.append(query)
        try:
            response = await client.post(url, json={"queries": queries}, timeout=timeout)
        except httpx.TimeoutException as error:
            raise _Unavailable("timed out") from error
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise _Unavailable(f"request failed ({type(error).__name__})") from error
        if response.status_code != 200:
            raise _Unavailable(f"HTTP {response.status_code}")
        try:
            results = response.json()["results"]
            if not isinstance(results, list) or len(results) != len(chunk):
                raise ValueError("results")
            for ref, result in zip(chunk, results, strict=True):
                # Only ids are needed; a next_page_token means more of the same.
                ids = tuple(sorted({str(vuln["id"]) for vuln in result.get("vulns") or ()}))
                if ids:
                    found[ref] = ids
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise _Unavailable(f"unexpected answer ({type(error).__name__})") from error
    return found


def _advisory_lines(
    report: _Report, ref: RegistryRef, version: str | None, ids: Sequence[str]
) -> None:
    label = _ref_label(ref)
    shown = ", ".join(_short(advisory) for advisory in ids[:10])
    more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    if version is not None:
        report.problems.append(f"{label} {_short(version)}: known vulnerabilities {shown}{more}")
        return
    malicious = [advisory for advisory in ids if advisory.startswith("MAL-")]
    if malicious:
        report.problems.append(
            f"{label}: reported as malicious ({', '.join(_short(a) for a in malicious[:10])})"
        )
    else:
        report.notes.append(
            f"{label}: advisories for some versions ({shown}{more}); "
            "pin a version to check the one you install"
        )


# --- look-alike names --------------------------------------------------------------------


def _look_alike(ref: RegistryRef, popular: Collection[str]) -> list[str]:
    # Case is kept: npm's legacy mixed-case names are packages distinct from lowercase ones.
    name = ref.name
    if name in popular:
        return []
    limit = similarity_limit(name)
    if limit == 0:
        return []
    for known in sorted(popular):
        distance = edit_distance(name, known, limit=limit)
        if distance <= limit:
            return [
                f"{_ref_label(ref)}: name is {distance} edit{'s' if distance > 1 else ''} "
                f"from the popular package {known}"
            ]
    return []


def similarity_limit(name: str) -> int:
    """Edits tolerated before a name stops resembling another: none for very short names,
    whose neighbours are mostly unrelated real packages."""
    if len(name) < 5:
        return 0
    return 1 if len(name) < 9 else 2


def edit_distance(a: str, b: str, *, limit: int) -> int:
    """Optimal string alignment distance (Damerau-Levenshtein with adjacent transpositions),
    or ``limit + 1`` once it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous: list[int] | None = None
    current = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        before, previous, current = previous, current, [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if (
                before is not None
                and i > 1
                and j > 1
                and a[i - 1] == b[j - 2]
                and a[i - 2] == b[j - 1]
            ):
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
    return min(current[len(b)], limit + 1)


# --- the result ------------------------------------------------------------------------------


def _result(report: _Report, *, head_sha: str, checked: int, min_age: timedelta) -> ScanResult:
    # Two versions of one package can raise the same line (a missing name, say): once is enough.
    report.problems = list(dict.fromkeys(report.problems))
    report.unavailable = list(dict.fromkeys(report.unavailable))
    report.notes = list(dict.fromkeys(report.notes))
    lines = [*report.problems, *(f"unavailable: {u}" for u in report.unavailable), *report.notes]
    if len(lines) > _MAX_DETAILS:
        lines = [*lines[: _MAX_DETAILS - 1], f"... and {len(lines) - _MAX_DETAILS + 1} more"]
    plural = "s" if checked != 1 else ""
    if report.problems:
        count = len(report.problems)
        status = ScanStatus.FAILED
        summary = f"{count} problem{'s' if count != 1 else ''} in {checked} new package{plural}"
    elif report.unavailable:
        status = ScanStatus.UNAVAILABLE
        summary = f"scan incomplete: {report.unavailable[0]}"
    else:
        status = ScanStatus.PASSED
        summary = (
            f"{checked} new package{plural}: no known vulnerabilities, none missing from "
            f"its registry or younger than {min_age.days} days, no look-alike names"
        )
    return ScanResult(
        gate=GATE, head_sha=head_sha, status=status, summary=summary, details=tuple(lines)
    )


def _label(package: Package) -> str:
    return f"{package.ecosystem} {_short(package.name)}"


def _ref_label(ref: RegistryRef) -> str:
    return f"{ref.ecosystem} {_short(ref.name)}"


def _short(text: str, limit: int = 100) -> str:
    """One printable line of bounded length: names and ids come from untrusted sources."""
    flat = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
