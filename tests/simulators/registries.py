"""Local HTTP simulators of OSV, the PyPI JSON API and the npm registry.

One real HTTP server on 127.0.0.1 (stdlib ``http.server`` on a thread) serves:

- ``POST /v1/querybatch``: OSV's batch query (https://google.github.io/osv.dev/post-v1-querybatch/),
  answered from :meth:`RegistrySimulator.advisory` entries;
- ``GET /pypi/{name}/json``: the PyPI JSON API (https://docs.pypi.org/api/json/);
- ``GET /npm/{name}``: an npm registry package document.

Documents come from in-test state; ``fail`` and ``delay`` inject errors and
slowness per service. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from webhooks.supplychain import ScanUrls


@dataclass(frozen=True)
class Advisory:
    id: str
    ecosystem: str
    name: str
    #: Affected versions; ``None`` affects every version.
    versions: frozenset[str] | None = None


@dataclass
class Recorded:
    service: str
    method: str
    path: str
    body: Any = None


@dataclass
class RegistryState:
    pypi: dict[str, dict[str, Any]] = field(default_factory=dict)
    npm: dict[str, dict[str, Any]] = field(default_factory=dict)
    advisories: list[Advisory] = field(default_factory=list)
    #: Service ("osv", "pypi", "npm") -> HTTP status to answer with instead.
    fail: dict[str, int] = field(default_factory=dict)
    #: Service -> seconds to wait before answering.
    delay: dict[str, float] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RegistrySimulator:
    def __init__(self, state: RegistryState, base_url: str) -> None:
        self.state = state
        self.base_url = base_url

    @property
    def urls(self) -> ScanUrls:
        return ScanUrls(
            osv_querybatch=f"{self.base_url}/v1/querybatch",
            pypi=f"{self.base_url}/pypi/{{name}}/json",
            npm=f"{self.base_url}/npm/{{name}}",
        )

    def pypi_project(
        self, name: str, *, releases: dict[str, datetime], latest: str | None = None
    ) -> None:
        """A PyPI project whose each release has one file uploaded at the given time."""
        self.state.pypi[name] = {
            "info": {"name": name, "version": latest or (max(releases) if releases else "")},
            "releases": {
                version: [
                    {
                        "filename": f"{name}-{version}.tar.gz",
                        "upload_time": uploaded.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                        "upload_time_iso_8601": _iso(uploaded),
                    }
                ]
                for version, uploaded in releases.items()
            },
        }

    def npm_package(self, name: str, *, created: datetime, latest: str = "1.0.0") -> None:
        self.state.npm[name] = {
            "name": name,
            "dist-tags": {"latest": latest},
            "versions": {latest: {"name": name, "version": latest}},
            "time": {"created": _iso(created), "modified": _iso(created), latest: _iso(created)},
        }

    def advisory(
        self, id: str, *, ecosystem: str, name: str, versions: Iterable[str] | None = None
    ) -> None:
        self.state.advisories.append(
            Advisory(id, ecosystem, name, None if versions is None else frozenset(versions))
        )

    def requests_to(self, service: str) -> list[Recorded]:
        with self.state.lock:
            return [r for r in self.state.requests if r.service == service]


def _osv_answer(state: RegistryState, body: Any) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    for query in body["queries"]:
        package = query["package"]
        version = query.get("version")
        vulns = [
            {"id": advisory.id, "modified": "2024-01-01T00:00:00Z"}
            for advisory in state.advisories
            if advisory.ecosystem == package["ecosystem"]
            and advisory.name == package["name"]
            and (version is None or advisory.versions is None or version in advisory.versions)
        ]
        # OSV answers an empty object for a package without advisories.
        results.append({"vulns": vulns} if vulns else {})
    return {"results": results}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/pypi/") and path.endswith("/json"):
            name = unquote(path[len("/pypi/") : -len("/json")])
            self._document("pypi", path, self.server.state.pypi.get(name))
        elif path.startswith("/npm/"):
            name = unquote(path[len("/npm/") :])
            self._document("npm", path, self.server.state.npm.get(name))
        else:
            self._send(404, {"error": "no such route"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        if path != "/v1/querybatch":
            self._send(404, {"error": "no such route"})
            return
        if self._injected("osv", path, body):
            return
        self._send(200, _osv_answer(self.server.state, body))

    def _document(self, service: str, path: str, document: dict[str, Any] | None) -> None:
        if self._injected(service, path, None):
            return
        if document is None:
            self._send(
                404, {"message": "Not Found"} if service == "pypi" else {"error": "Not found"}
            )
        else:
            self._send(200, document)

    def _injected(self, service: str, path: str, body: Any) -> bool:
        state = self.server.state
        with state.lock:
            state.requests.append(Recorded(service, self.command, path, body))
            delay = state.delay.get(service, 0.0)
            status = state.fail.get(service)
        if delay:
            time.sleep(delay)
        if status is not None:
            self._send(status, {"error": "injected failure"})
            return True
        return False

    def _send(self, status: int, document: Any) -> None:
        payload = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing to answer.
            pass


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close, so none outlives the test.
    daemon_threads = False

    def __init__(self, state: RegistryState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state


@contextmanager
def running_registries() -> Iterator[RegistrySimulator]:
    """Serve OSV, PyPI and npm simulators on 127.0.0.1 for the duration of the block."""
    state = RegistryState()
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield RegistrySimulator(state, f"http://{host!s}:{port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
