"""The supply-chain scan against local OSV, PyPI and npm simulators (127.0.0.1 only)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from gate.detectors.manifests import Ecosystem, Package
from gate.model import ScanResult, ScanStatus
from tests.simulators.registries import RegistrySimulator, running_registries
from webhooks.supplychain import GATE, ScanUrls, edit_distance, scan_packages

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=3000)
SHA = "a" * 40

PYPI, NPM = Ecosystem.PYPI, Ecosystem.NPM


@pytest.fixture
def registry() -> Iterator[RegistrySimulator]:
    with running_registries() as simulator:
        yield simulator


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: no proxy from the environment, so traffic stays on 127.0.0.1.
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


async def run(
    client: httpx.AsyncClient,
    urls: ScanUrls,
    packages: Sequence[Package],
    **options: object,
) -> ScanResult:
    return await scan_packages(
        packages=packages,
        head_sha=SHA,
        client=client,
        urls=urls,
        now=NOW,
        **options,  # type: ignore[arg-type]
    )


def good_registry(registry: RegistrySimulator) -> None:
    registry.pypi_project("requests", releases={"2.30.0": OLD, "2.31.0": OLD + timedelta(days=9)})
    registry.npm_package("left-pad", created=OLD, latest="1.3.0")
    registry.npm_package("@types/node", created=OLD, latest="20.1.0")


async def test_all_good_passes_and_queries_osv_with_versions(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    good_registry(registry)
    # An old advisory on a version nobody installs any more.
    registry.advisory("GHSA-old", ecosystem="npm", name="left-pad", versions=["0.0.1"])
    packages = [
        Package(PYPI, "requests", "==2.31.0"),
        Package(NPM, "left-pad", "^1.3.0"),
        Package(NPM, "@types/node", "20.1.0"),
    ]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.PASSED, result
    assert (result.gate, result.head_sha) == (GATE, SHA)
    assert result.summary.startswith("3 new packages: no known vulnerabilities")
    (osv,) = registry.requests_to("osv")
    queries = {q["package"]["name"]: q.get("version") for q in osv.body["queries"]}
    # Pinned versions as written; a range is resolved to the registry's latest.
    assert queries == {"requests": "2.31.0", "left-pad": "1.3.0", "@types/node": "20.1.0"}
    assert {q["package"]["ecosystem"] for q in osv.body["queries"]} == {"PyPI", "npm"}
    assert "/npm/@types%2Fnode" in {r.path for r in registry.requests_to("npm")}


async def test_no_packages_passes_without_traffic(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    result = await run(client, registry.urls, [])
    assert result.status is ScanStatus.PASSED
    assert registry.state.requests == []


async def test_vulnerable_package_fails_with_advisory_id(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.pypi_project("jinja2", releases={"2.4.1": OLD, "3.1.4": OLD + timedelta(days=2000)})
    registry.advisory("GHSA-462w-v97r-4m45", ecosystem="PyPI", name="jinja2", versions=["2.4.1"])
    result = await run(client, registry.urls, [Package(PYPI, "jinja2", "==2.4.1")])
    assert result.status is ScanStatus.FAILED
    assert result.details == ("pypi jinja2 2.4.1: known vulnerabilities GHSA-462w-v97r-4m45",)
    assert result.summary == "1 problem in 1 new package"


async def test_unpinned_without_registry_reports_malicious_only(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.advisory("MAL-2024-1", ecosystem="crates.io", name="evil-crate")
    registry.advisory("RUSTSEC-2020-1", ecosystem="crates.io", name="tokio", versions=["0.1.0"])
    packages = [Package(Ecosystem.CARGO, "evil-crate", "1"), Package(Ecosystem.CARGO, "tokio", "1")]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.FAILED
    assert result.details[0] == "cargo evil-crate: reported as malicious (MAL-2024-1)"
    notes = " ".join(result.details[1:])
    assert "cargo tokio: advisories for some versions (RUSTSEC-2020-1)" in notes
    assert "registry age not checked for cargo" in notes


async def test_nonexistent_package_fails(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    good_registry(registry)
    packages = [Package(PYPI, "requests", "==2.31.0"), Package(PYPI, "fastjsonparse-ai", "")]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.FAILED
    assert result.details == ("pypi fastjsonparse-ai: does not exist on PyPI",)
    missing_npm = await run(client, registry.urls, [Package(NPM, "no-such-pkg-x", "1.0.0")])
    assert missing_npm.details == ("npm no-such-pkg-x: does not exist on npm",)


async def test_young_package_fails(registry: RegistrySimulator, client: httpx.AsyncClient) -> None:
    registry.npm_package("brand-new-helper", created=NOW - timedelta(days=3))
    registry.pypi_project("fresh-lib", releases={"0.1.0": NOW - timedelta(days=10)})
    packages = [Package(NPM, "brand-new-helper", "^1.0.0"), Package(PYPI, "fresh-lib", "")]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.FAILED
    assert set(result.details) == {
        "npm brand-new-helper: first published 3 days ago, younger than 30 days",
        "pypi fresh-lib: first published 10 days ago, younger than 30 days",
    }
    relaxed = await run(client, registry.urls, packages, min_age=timedelta(days=7))
    assert relaxed.details == (
        "npm brand-new-helper: first published 3 days ago, younger than 7 days",
    )


async def test_project_without_files_fails(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.pypi_project("placeholder", releases={})
    result = await run(client, registry.urls, [Package(PYPI, "placeholder", "")])
    assert result.details == ("pypi placeholder: has no released files on PyPI",)


async def test_look_alike_name_fails(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.pypi_project("reqeusts", releases={"1.0": OLD})
    registry.npm_package("lodahs", created=OLD)
    packages = [Package(PYPI, "reqeusts", ""), Package(NPM, "lodahs", "")]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.FAILED
    assert set(result.details) == {
        "pypi reqeusts: name is 1 edit from the popular package requests",
        "npm lodahs: name is 1 edit from the popular package lodash",
    }
    own_list = await run(client, registry.urls, packages, popular={})
    assert own_list.status is ScanStatus.PASSED


async def test_registry_503_is_unavailable(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    good_registry(registry)
    registry.state.fail["pypi"] = 503
    result = await run(client, registry.urls, [Package(PYPI, "requests", "==2.31.0")])
    assert result.status is ScanStatus.UNAVAILABLE
    assert result.summary == "scan incomplete: pypi requests: HTTP 503"


async def test_osv_503_is_unavailable(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    good_registry(registry)
    registry.state.fail["osv"] = 503
    result = await run(client, registry.urls, [Package(NPM, "left-pad", "1.3.0")])
    assert result.status is ScanStatus.UNAVAILABLE
    assert result.details == ("unavailable: OSV: HTTP 503",)


async def test_timeout_is_unavailable(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    good_registry(registry)
    registry.state.delay["osv"] = 0.5
    result = await run(client, registry.urls, [Package(NPM, "left-pad", "1.3.0")], timeout=0.1)
    assert result.status is ScanStatus.UNAVAILABLE
    assert result.details == ("unavailable: OSV: timed out",)


async def test_unreachable_service_is_unavailable(client: httpx.AsyncClient) -> None:
    # A loopback port that was just free: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    dead = ScanUrls(
        osv_querybatch=f"{base}/v1/querybatch",
        pypi=f"{base}/pypi/{{name}}/json",
        npm=f"{base}/npm/{{name}}",
    )
    result = await run(client, dead, [Package(PYPI, "requests", "==2.31.0")], timeout=1.0)
    assert result.status is ScanStatus.UNAVAILABLE
    assert "request failed (ConnectError)" in result.summary


async def test_malformed_registry_answer_is_unavailable(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.state.pypi["requests"] = {"info": {}}
    registry.state.pypi["six"] = {"releases": {"1.0": ["not a file"]}}
    registry.state.npm["left-pad"] = {"time": {"created": "yesterday"}}
    packages = [
        Package(PYPI, "requests", ""),
        Package(PYPI, "six", ""),
        Package(NPM, "left-pad", ""),
    ]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.UNAVAILABLE
    assert result.details == (
        "unavailable: npm left-pad: unexpected registry answer (ValueError)",
        "unavailable: pypi requests: unexpected registry answer (KeyError)",
        "unavailable: pypi six: unexpected registry answer (AttributeError)",
    )


async def test_a_definite_problem_outranks_an_unavailable_check(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.state.fail["osv"] = 500
    result = await run(client, registry.urls, [Package(PYPI, "hallucinated-pkg-zz", "")])
    assert result.status is ScanStatus.FAILED
    assert result.details == (
        "pypi hallucinated-pkg-zz: does not exist on PyPI",
        "unavailable: OSV: HTTP 500",
    )


async def test_direct_references(registry: RegistrySimulator, client: httpx.AsyncClient) -> None:
    package = Package(PYPI, "mylib", "@ git+https://github.com/org/mylib.git@v1")
    result = await run(client, registry.urls, [package])
    assert result.status is ScanStatus.FAILED
    assert result.details == (
        "pypi mylib: direct reference (@ git+https://github.com/org/mylib.git@v1) "
        "cannot be checked against a registry",
    )
    allowed = await run(client, registry.urls, [package], allow_direct_references=True)
    assert allowed.status is ScanStatus.PASSED
    assert allowed.details == (
        "pypi mylib: direct reference (@ git+https://github.com/org/mylib.git@v1), "
        "not checked against a registry",
    )


async def test_local_and_workspace_packages_are_noted_not_failed(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    packages = [
        Package(Ecosystem.CARGO, "serde", "workspace"),
        Package(NPM, "@acme/ui", "workspace:*"),
        Package(NPM, "shared", "file:../shared"),
    ]
    result = await run(client, registry.urls, packages)
    assert result.status is ScanStatus.PASSED
    assert "cargo serde: local or workspace package, not checked" in result.details
    assert registry.state.requests == []


async def test_one_line_per_problem_across_versions(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    packages = [Package(NPM, "ghost-pkg-q", "1.0.0"), Package(NPM, "ghost-pkg-q", "2.0.0")]
    result = await run(client, registry.urls, packages)
    assert result.details == ("npm ghost-pkg-q: does not exist on npm",)
    assert len(registry.requests_to("npm")) == 1


async def test_too_many_packages_is_unavailable(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    packages = [Package(NPM, f"pkg-{i}", "1.0.0") for i in range(5)]
    result = await run(client, registry.urls, packages, max_packages=3)
    assert result.status is ScanStatus.UNAVAILABLE
    assert "more than the limit of 3" in result.summary
    assert registry.state.requests == []


async def test_go_versions_lose_their_v_for_osv(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.advisory("GO-2024-1", ecosystem="Go", name="golang.org/x/net", versions=["0.20.0"])
    result = await run(
        client, registry.urls, [Package(Ecosystem.GO, "golang.org/x/net", "v0.20.0")]
    )
    assert result.details[0] == "go golang.org/x/net 0.20.0: known vulnerabilities GO-2024-1"


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("requests", "requests", 0),
        ("reqeusts", "requests", 1),
        ("request", "requests", 1),
        ("requsets", "requests", 1),
        ("rqeuests", "requests", 1),
        ("reqests", "requests", 1),
        ("rewuests", "requests", 1),
        ("requests", "reqeust", 2),
        ("django", "flask", 3),
    ],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b, limit=2) == min(distance, 3)


async def test_a_packagist_package_is_checked_against_osv(
    registry: RegistrySimulator, client: httpx.AsyncClient
) -> None:
    registry.advisory(
        "GHSA-composer-1", ecosystem="Packagist", name="guzzlehttp/guzzle", versions=["7.4.0"]
    )
    bad = Package(Ecosystem.PACKAGIST, "guzzlehttp/guzzle", "7.4.0")
    result = await run(client, registry.urls, [bad])
    assert result.status is ScanStatus.FAILED
    assert "GHSA-composer-1" in " ".join(result.details)
    (osv,) = registry.requests_to("osv")
    assert osv.body["queries"][0]["package"]["ecosystem"] == "Packagist"
