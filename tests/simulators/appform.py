"""A loopback stand-in for GitHub's "Create GitHub App from manifest" form.

It plays the browser-facing half of the manifest flow that ``gate setup``
drives (https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):

1. the user's browser POSTs ``manifest=<json>`` to ``/settings/apps/new?state=S``
   or ``/organizations/{org}/settings/apps/new?state=S``;
2. GitHub shows a form, the user clicks "Create GitHub App" (here: immediately);
3. GitHub redirects to the manifest's ``redirect_url`` with ``?code=C&state=S``.

The API half, ``POST /app-manifests/{code}/conversions``, belongs to the fake
GitHub. :class:`AppForm` hands every accepted manifest to ``on_create``, which
returns the one-time code (the fake GitHub's registration hook, or the
built-in :meth:`AppForm.local_code` that this server then also converts
itself at ``/app-manifests/{code}/conversions``).

The manifest is validated with *this module's own* table of GitHub facts rather
than merge-gate's, so the test is not the code grading itself.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["AppForm", "ManifestRejected", "appform", "validate_manifest"]

#: Top-level manifest keys GitHub documents.
KNOWN_KEYS = frozenset(
    {
        "name",
        "url",
        "hook_attributes",
        "redirect_url",
        "callback_urls",
        "setup_url",
        "description",
        "public",
        "default_events",
        "default_permissions",
        "request_oauth_on_install",
        "setup_on_update",
    }
)

#: Permissions (a subset of GitHub's) that apps may request, and their levels.
KNOWN_PERMISSIONS = {
    "actions": {"read", "write"},
    "administration": {"read", "write"},
    "checks": {"read", "write"},
    "contents": {"read", "write"},
    "issues": {"read", "write"},
    "members": {"read", "write"},
    "merge_queues": {"read", "write"},
    "metadata": {"read"},
    "organization_administration": {"read", "write"},
    "pull_requests": {"read", "write"},
    "statuses": {"read", "write"},
}

#: Subscribable events and the permission each needs (webhook-events-and-payloads).
EVENT_NEEDS = {
    "check_run": "checks",
    "check_suite": "checks",
    "issues": "issues",
    "issue_comment": "issues",
    "membership": "members",
    "merge_group": "merge_queues",
    "pull_request": "pull_requests",
    "pull_request_review": "pull_requests",
    "pull_request_review_comment": "pull_requests",
    "push": "contents",
    "status": "statuses",
}

#: Events GitHub sends to every App; they are not accepted in default_events.
AUTOMATIC = frozenset({"installation", "installation_repositories", "github_app_authorization"})


class ManifestRejected(ValueError):
    """GitHub would show an error instead of the "Create GitHub App" button."""


def _is_url(value: object, *, https_only: bool = False) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    schemes = {"https"} if https_only else {"http", "https"}
    return parts.scheme in schemes and bool(parts.netloc)


def validate_manifest(manifest: Mapping[str, Any]) -> None:
    """Raise :class:`ManifestRejected` for what GitHub refuses."""
    unknown = set(manifest) - KNOWN_KEYS
    if unknown:
        raise ManifestRejected(f"unknown manifest keys: {sorted(unknown)}")
    if not _is_url(manifest.get("url")):
        raise ManifestRejected("url is required and must be a URL")
    name = manifest.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 34):
        raise ManifestRejected("name must be 1..34 characters")
    hook = manifest.get("hook_attributes")
    if not isinstance(hook, Mapping) or not _is_url(hook.get("url")):
        raise ManifestRejected("hook_attributes.url is required")
    if not isinstance(hook.get("active", True), bool):
        raise ManifestRejected("hook_attributes.active must be a boolean")
    if "redirect_url" in manifest and not _is_url(manifest["redirect_url"]):
        raise ManifestRejected("redirect_url must be a URL")
    if not isinstance(manifest.get("public", False), bool):
        raise ManifestRejected("public must be a boolean")
    perms = manifest.get("default_permissions", {})
    if not isinstance(perms, Mapping):
        raise ManifestRejected("default_permissions must be an object")
    for perm, level in perms.items():
        if perm not in KNOWN_PERMISSIONS or level not in KNOWN_PERMISSIONS[perm]:
            raise ManifestRejected(f"invalid permission {perm}: {level}")
    events = manifest.get("default_events", [])
    if not isinstance(events, list):
        raise ManifestRejected("default_events must be a list")
    for event in events:
        if event in AUTOMATIC or event not in EVENT_NEEDS:
            raise ManifestRejected(f"default_events: {event!r} is not a subscribable event")
        if EVENT_NEEDS[event] not in perms:
            raise ManifestRejected(f"event {event!r} needs the {EVENT_NEEDS[event]} permission")


def _new_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@dataclass
class AppForm:
    """State of the simulated form; ``url`` is set once the server listens."""

    on_create: Callable[[dict[str, Any], str | None], str] | None = None
    url: str = ""
    #: (org or None, manifest) for every app "created" through the form.
    created: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    #: Manifests the form refused, with the reason.
    rejected: list[str] = field(default_factory=list)
    #: Apps this server converts itself when ``on_create`` is not given.
    conversions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _next_id: int = 1000

    def local_code(self, manifest: dict[str, Any], org: str | None) -> str:
        """Register the app here and return its one-time code (single use)."""
        self._next_id += 1
        code = secrets.token_hex(10)
        owner = org or "octocat"
        slug = str(manifest.get("name", "app")).lower()
        self.conversions[code] = {
            "id": self._next_id,
            "slug": slug,
            "node_id": f"A_{self._next_id}",
            "client_id": f"Iv1.{secrets.token_hex(8)}",
            "client_secret": secrets.token_hex(20),
            "webhook_secret": secrets.token_hex(20),
            "pem": _new_pem(),
            "name": manifest.get("name", slug),
            "html_url": f"https://github.com/apps/{slug}",
            "owner": {"login": owner, "id": 1, "type": "Organization" if org else "User"},
            "permissions": dict(manifest.get("default_permissions", {})),
            "events": list(manifest.get("default_events", [])),
        }
        return code

    def create(self, manifest: dict[str, Any], org: str | None) -> str:
        validate_manifest(manifest)
        self.created.append((org, manifest))
        hook = self.on_create or self.local_code
        return hook(manifest, org)


def _handler(form: AppForm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean

        def _send(self, status: int, body: str, headers: Mapping[str, str] = {}) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            segments = parts.path.strip("/").split("/")
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            if segments[:1] == ["app-manifests"] and segments[-1:] == ["conversions"]:
                self._convert(segments[1])
                return
            form_path = ["settings", "apps", "new"]
            if segments == form_path:
                org = None
            elif (
                len(segments) == 5 and segments[0] == "organizations" and segments[2:] == form_path
            ):
                org = segments[1]
            else:
                self._send(404, "not found")
                return
            if self.headers.get("Content-Type", "").split(";")[0] != (
                "application/x-www-form-urlencoded"
            ):
                self._send(415, "the manifest must be posted as a form")
                return
            state = parse_qs(parts.query).get("state", [""])[0]
            fields = parse_qs(raw)
            try:
                manifest = json.loads(fields["manifest"][0])
                if not isinstance(manifest, dict):
                    raise ManifestRejected("manifest must be a JSON object")
                code = form.create(manifest, org)
            except (KeyError, ValueError) as exc:
                form.rejected.append(str(exc))
                self._send(422, f"Invalid GitHub App configuration: {exc}")
                return
            target = manifest.get("redirect_url") or manifest["url"]
            sep = "&" if urlsplit(target).query else "?"
            location = f"{target}{sep}{urlencode({'code': code, 'state': state})}"
            self._send(302, "", {"Location": location})

        def _convert(self, code: str) -> None:
            app = form.conversions.pop(code, None)  # one-time code
            body = json.dumps(app or {"message": "Not Found"})
            data = body.encode()
            self.send_response(201 if app else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def appform(
    on_create: Callable[[dict[str, Any], str | None], str] | None = None,
) -> Iterator[AppForm]:
    """Run the simulated form on 127.0.0.1 for the duration of the block."""
    form = AppForm(on_create=on_create)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(form))
    form.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield form
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
