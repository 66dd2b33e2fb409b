"""``gate setup``: register merge-gate as a GitHub App with the manifest flow.

Implements https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
on the operator's machine:

1. serve a page on 127.0.0.1 that POSTs the manifest (a hidden form field
   ``manifest``) to ``{github}/settings/apps/new?state=S`` (or the
   organization's ``/organizations/{org}/settings/apps/new``);
2. GitHub creates the App and redirects the browser to our ``redirect_url``
   with ``?code=C&state=S``; a ``state`` other than ours is refused, because
   anyone can make a browser visit a loopback URL (CSRF) and we must not store
   credentials for an App someone else registered;
3. exchange the one-time code with ``POST /app-manifests/{code}/conversions``
   (https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest);
4. write the credentials into the data dir, owner-only (0600), never printing them.

Files written (all 0600, in a 0700 directory):

- ``app.env``: ``GATE_APP_ID``, ``GATE_PRIVATE_KEY_FILE``, ``GATE_WEBHOOK_SECRET``,
  ``GATE_GITHUB_API_URL``, ``GATE_PUBLIC_URL``, and the App's OAuth client
  (``GATE_GITHUB_CLIENT_ID``, ``GATE_GITHUB_CLIENT_SECRET``: decision pages then need a
  GitHub sign-in by someone who can read the repository) (an env file for compose /
  ``set -a; .``);
- ``private-key.pem``: the App's private key;
- ``webhook-secret``: the webhook secret alone (for ``kubectl create secret --from-file``);
- ``app.json``: non-secret facts (id, slug, owner, html_url) for humans and tooling.

The manifest registers ``PUBLIC_URL/oauth/callback`` as the App's callback URL, where
GitHub returns a reader who signs in to see a decision (``webhooks/details.py``).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import secrets
import sys
import threading
import webbrowser
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from webhooks.permissions import ALL_OPERATIONS, manifest_events, needed_permissions

__all__ = [
    "CREDENTIAL_FILES",
    "Credentials",
    "SetupError",
    "build_manifest",
    "default_api_url",
    "main",
    "new_app_url",
    "register",
    "run",
    "write_credentials",
]

#: What setup writes into the data dir (see the module docstring).
CREDENTIAL_FILES = ("app.env", "private-key.pem", "webhook-secret", "app.json")

#: GitHub limits App names to 34 characters.
MAX_NAME = 34

WEBHOOK_PATH = "/api/github/webhooks"
CALLBACK_PATH = "/callback"

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


class SetupError(Exception):
    """The flow cannot go on; the message is safe to print (no secrets)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the conversion returns that merge-gate keeps. Secrets stay out of repr."""

    app_id: int
    slug: str
    html_url: str
    owner: str
    pem: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    client_id: str = ""
    client_secret: str = field(repr=False, default="")


def default_api_url(github_url: str) -> str:
    """REST root for a GitHub web URL: api.github.com, or GHES's ``/api/v3``."""
    root = github_url.rstrip("/")
    if urlsplit(root).netloc.lower() in {"github.com", "www.github.com"}:
        return "https://api.github.com"
    return f"{root}/api/v3"


def default_name(org: str | None) -> str:
    """App names are global on GitHub, so suffix the org to avoid a clash."""
    return f"merge-gate-{org}"[:MAX_NAME] if org else "merge-gate"


def build_manifest(
    *, public_url: str, redirect_url: str, name: str = "merge-gate"
) -> dict[str, Any]:
    """The manifest ``app-manifest.yml`` shows, with its placeholders filled in.

    Permissions and events are derived from :mod:`webhooks.permissions`, so the
    App asks for exactly what the code uses (a test compares the YAML file).
    """
    base = public_url.rstrip("/")
    return {
        "name": name,
        "url": base,
        "description": (
            "Gates pull requests opened by AI coding agents: a required merge-gate "
            "check, code-owner review requests and signed decisions."
        ),
        "public": False,
        "hook_attributes": {"url": f"{base}{WEBHOOK_PATH}", "active": True},
        "redirect_url": redirect_url,
        # Where GitHub returns a reader who signs in to see a decision (webhooks/details.py).
        "callback_urls": [f"{base}/oauth/callback"],
        "default_events": manifest_events(),
        "default_permissions": needed_permissions(ALL_OPERATIONS),
    }


def new_app_url(*, github_url: str, org: str | None, state: str) -> str:
    """Where the manifest form is POSTed (personal account or organization)."""
    root = github_url.rstrip("/")
    query = urlencode({"state": state})
    if org:
        return f"{root}/organizations/{quote(org, safe='')}/settings/apps/new?{query}"
    return f"{root}/settings/apps/new?{query}"


def _form_page(*, action: str, manifest: Mapping[str, Any]) -> str:
    # html.escape(quote=True) makes the JSON safe inside a double-quoted attribute.
    value = html.escape(json.dumps(manifest), quote=True)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>merge-gate setup</title></head>
<body>
<p>Sending merge-gate's App manifest to GitHub&hellip;</p>
<form id="manifest-form" method="post" action="{html.escape(action, quote=True)}">
<input type="hidden" name="manifest" value="{value}">
<noscript><button type="submit">Continue to GitHub</button></noscript>
</form>
<script>document.getElementById("manifest-form").submit();</script>
</body></html>
"""


def _message_page(title: str, text: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>\n"
    )


def exchange_code(*, api_url: str, code: str) -> Credentials:
    """``POST /app-manifests/{code}/conversions``; no authentication is needed."""
    from githubkit import GitHub
    from githubkit.exception import GitHubException, RequestFailed

    try:
        with GitHub(base_url=api_url, http_cache=False, auto_retry=False) as gh:
            data: Any = gh.rest.apps.create_from_manifest(code).json()
    except RequestFailed as exc:
        status = exc.response.status_code
        raise SetupError(
            f"GitHub refused the manifest code (HTTP {status}); run setup again"
        ) from None
    except GitHubException as exc:
        raise SetupError(f"could not reach {api_url}: {type(exc).__name__}") from None
    try:
        owner = data.get("owner") or {}
        return Credentials(
            app_id=int(data["id"]),
            slug=str(data["slug"]),
            html_url=str(data["html_url"]),
            owner=str(owner.get("login", "")),
            pem=str(data["pem"]),
            webhook_secret=str(data["webhook_secret"] or ""),
            client_id=str(data.get("client_id") or ""),
            client_secret=str(data.get("client_secret") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise SetupError("GitHub's conversion response lacked the App's id, key or slug") from None


def _env_line(key: str, value: str) -> str:
    # Single quotes: read literally by POSIX sh, docker compose and python-dotenv.
    if "'" in value or "\n" in value:
        raise SetupError(f"{key} cannot be written to an env file")
    return f"{key}='{value}'\n"


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only; never widen an existing mode."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)  # in case a umask or ACL interfered
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def existing_credentials(data_dir: Path) -> list[Path]:
    return [data_dir / name for name in CREDENTIAL_FILES if (data_dir / name).exists()]


def write_credentials(
    *, data_dir: Path, creds: Credentials, api_url: str, public_url: str
) -> list[Path]:
    """Write the files listed in the module docstring; returns their paths."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path = (data_dir / "private-key.pem").resolve()
    env = "".join(
        [
            "# Written by `gate setup`. Secrets: keep this file 0600 and out of git.\n",
            _env_line("GATE_APP_ID", str(creds.app_id)),
            _env_line("GATE_PRIVATE_KEY_FILE", str(key_path)),
            _env_line("GATE_WEBHOOK_SECRET", creds.webhook_secret),
            _env_line("GATE_GITHUB_API_URL", api_url),
            _env_line("GATE_PUBLIC_URL", public_url),
            *(
                [
                    _env_line("GATE_GITHUB_CLIENT_ID", creds.client_id),
                    _env_line("GATE_GITHUB_CLIENT_SECRET", creds.client_secret),
                ]
                if creds.client_id and creds.client_secret
                else []
            ),
        ]
    )
    facts = {
        "id": creds.app_id,
        "slug": creds.slug,
        "owner": creds.owner,
        "html_url": creds.html_url,
    }
    contents = {
        "private-key.pem": creds.pem if creds.pem.endswith("\n") else creds.pem + "\n",
        "webhook-secret": creds.webhook_secret + "\n",
        "app.env": env,
        "app.json": json.dumps(facts, indent=2) + "\n",
    }
    written = []
    for name in CREDENTIAL_FILES:
        _write_private(data_dir / name, contents[name])
        written.append(data_dir / name)
    return written


@dataclass
class _Flow:
    """Shared between the HTTP handler threads and the waiting command."""

    state: str
    page: str
    api_url: str
    public_url: str
    data_dir: Path
    #: ``127.0.0.1:PORT``: the only Host header served (see ``do_GET``).
    host: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    creds: Credentials | None = None
    error: str | None = None

    def callback(self, query: Mapping[str, list[str]]) -> tuple[int, str]:
        state = query.get("state", [""])[0]
        code = query.get("code", [""])[0]
        if not secrets.compare_digest(state.encode(), self.state.encode()):
            # Not ours: maybe a forged link. Refuse, write nothing, keep waiting.
            print("gate setup: refused a callback with a wrong state", file=sys.stderr, flush=True)
            return 400, _message_page("Refused", "This request did not come from this setup run.")
        if not code:
            return 400, _message_page("Refused", "GitHub sent no code.")
        with self.lock:
            if self.done.is_set():
                return 410, _message_page("Already done", "This setup run has finished.")
            try:
                creds = exchange_code(api_url=self.api_url, code=code)
                write_credentials(
                    data_dir=self.data_dir,
                    creds=creds,
                    api_url=self.api_url,
                    public_url=self.public_url,
                )
            except (SetupError, OSError) as exc:
                self.error = str(exc) if isinstance(exc, SetupError) else f"write failed: {exc}"
                self.done.set()
                return 502, _message_page("Setup failed", self.error)
            self.creds = creds
            self.done.set()
        return 200, _message_page(
            "merge-gate is registered",
            f"GitHub App {creds.slug} (id {creds.app_id}) is ready. "
            "Return to your terminal for the next steps; you can close this tab.",
        )


def _handler(flow: _Flow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gate-setup"

        def log_message(self, format: str, *args: Any) -> None:
            # The default logs the request line, which carries the one-time code.
            pass

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if self.headers.get("Host", "") != flow.host:
                # DNS rebinding: a web page whose name resolves to 127.0.0.1 could
                # otherwise read the form page, learn the state and forge a callback.
                self._send(403, _message_page("Forbidden", "Open this page as http://" + flow.host))
            elif parts.path == "/":
                self._send(200, flow.page)
            elif parts.path == CALLBACK_PATH:
                self._send(*flow.callback(parse_qs(parts.query)))
            else:
                self._send(404, _message_page("Not found", parts.path))

    return Handler


def _next_steps(*, creds: Credentials, data_dir: Path, org: str | None) -> str:
    where = f"the {org} organization" if org else "your organization"
    return f"""
Registered GitHub App {creds.slug!r} (id {creds.app_id}), owned by {creds.owner or "you"}.
Wrote, readable only by you:
  {data_dir / "app.env"}          GATE_APP_ID, GATE_PRIVATE_KEY_FILE, GATE_WEBHOOK_SECRET, ...
  {data_dir / "private-key.pem"}  the App's private key
  {data_dir / "webhook-secret"}   the webhook secret
  {data_dir / "app.json"}         id, slug, owner (not secret)

Next steps:
  1. Install the App on {where}: {creds.html_url.rstrip("/")}/installations/new
  2. Load the settings:  set -a; . {data_dir / "app.env"}; set +a
     (or use it as the compose env_file / the Helm chart's Secret)
  3. Start the service (gate serve), then check the installation and branch rules:
     gate doctor --repo OWNER/NAME
  4. Require the `merge-gate` check on the default branch, pinned to this App
     (source "{creds.slug}", app id {creds.app_id}); gate doctor says exactly what is missing.
"""


def run(args: argparse.Namespace) -> int:
    """Run the manifest flow; 0 done, 1 flow failed or timed out, 2 bad configuration."""
    public_url = (args.public_url or os.environ.get("GATE_PUBLIC_URL") or "").rstrip("/")
    if not public_url or urlsplit(public_url).scheme not in {"http", "https"}:
        print(
            "gate setup: --public-url (or GATE_PUBLIC_URL) must be the https:// URL where "
            "GitHub will reach this service's webhooks",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    github_url = args.github_url.rstrip("/")
    api_url = (
        args.api_url or os.environ.get("GATE_GITHUB_API_URL") or default_api_url(github_url)
    ).rstrip("/")
    data_dir = Path(args.data_dir or os.environ.get("GATE_DATA_DIR") or ".gate")
    clash = existing_credentials(data_dir)
    if clash and not args.force:
        print(
            f"gate setup: {', '.join(map(str, clash))} already exist; a new App would replace "
            "them. Move them away or pass --force.",
            file=sys.stderr,
        )
        return EXIT_CONFIG

    state = secrets.token_urlsafe(32)
    try:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), BaseHTTPRequestHandler)
    except OSError as exc:
        print(f"gate setup: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    port = server.server_address[1]
    local = f"http://127.0.0.1:{port}"
    manifest = build_manifest(
        public_url=public_url,
        redirect_url=f"{local}{CALLBACK_PATH}",
        name=args.name or default_name(args.org),
    )
    if args.manifest:
        manifest = _load_manifest_override(Path(args.manifest), manifest)
    flow = _Flow(
        state=state,
        page=_form_page(
            action=new_app_url(github_url=github_url, org=args.org, state=state),
            manifest=manifest,
        ),
        api_url=api_url,
        public_url=public_url,
        data_dir=data_dir,
        host=f"127.0.0.1:{port}",
    )
    server.RequestHandlerClass = _handler(flow)
    thread = threading.Thread(target=server.serve_forever, name="gate-setup", daemon=True)
    thread.start()
    try:
        print(f"Open {local}/ in a browser signed in to GitHub to register the App.", flush=True)
        print(f"Listening on {local} (Ctrl-C to abort)...", flush=True)
        if not args.no_browser:
            webbrowser.open(f"{local}/")
        if not flow.done.wait(timeout=args.timeout):
            print("gate setup: timed out waiting for GitHub's redirect", file=sys.stderr)
            return EXIT_FAILED
    except KeyboardInterrupt:
        print("gate setup: aborted", file=sys.stderr)
        return EXIT_FAILED
    finally:
        server.shutdown()
        server.server_close()
    if flow.error or flow.creds is None:
        print(f"gate setup: {flow.error or 'no credentials'}", file=sys.stderr)
        return EXIT_FAILED
    print(_next_steps(creds=flow.creds, data_dir=data_dir, org=args.org), flush=True)
    return EXIT_OK


def _load_manifest_override(path: Path, built: dict[str, Any]) -> dict[str, Any]:
    """Overlay a YAML manifest, keeping the computed URLs (they are this run's)."""
    import yaml

    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(loaded, dict):
        raise SystemExit(f"gate setup: {path} is not a YAML mapping")
    merged = {**built, **loaded}
    for key in ("url", "hook_attributes", "redirect_url"):
        merged[key] = built[key]
    return merged


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--org", help="register the App under this organization")
    parser.add_argument(
        "--public-url", help="https URL GitHub sends webhooks to (default: $GATE_PUBLIC_URL)"
    )
    parser.add_argument(
        "--github-url", default="https://github.com", help="GitHub (Enterprise Server) web URL"
    )
    parser.add_argument(
        "--api-url",
        help="REST API root (default: $GATE_GITHUB_API_URL, else derived from --github-url)",
    )
    parser.add_argument(
        "--data-dir", help="where to write credentials (default: $GATE_DATA_DIR or ./.gate)"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="loopback port for the flow (default: any free port)"
    )
    parser.add_argument("--no-browser", action="store_true", help="print the URL, do not open it")
    parser.add_argument("--name", help="App name (default: merge-gate or merge-gate-ORG)")
    parser.add_argument("--manifest", help="YAML overriding fields of the built-in manifest")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for GitHub (default 900)"
    )
    parser.add_argument("--force", action="store_true", help="replace existing credentials")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``gate setup`` to the ``gate`` CLI."""
    parser = subparsers.add_parser(
        "setup",
        help="register merge-gate as a GitHub App (manifest flow)",
        description="Register merge-gate as a GitHub App with the manifest flow: a page on "
        "127.0.0.1 posts app-manifest.yml to GitHub, and the credentials GitHub returns are "
        "written to the data dir (0600).",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m webhooks.commands.setup``."""
    parser = argparse.ArgumentParser(prog="gate setup")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
