"""GitHub's OAuth web flow for a GitHub App, as github.com (not the REST API) answers it.

These are web endpoints, not in the REST description, so they are answered
before the description is consulted, and kept apart from ``endpoints/``:

- ``GET /login/oauth/authorize?client_id&redirect_uri&state``: GitHub's sign-in page
  when no one is signed in to the fake's browser session; otherwise (the App being
  authorized already) a redirect to ``redirect_uri`` with ``code`` and ``state``. A
  ``redirect_uri`` outside the App's callback URL gets GitHub's error page, no redirect;
- ``POST /login/oauth/access_token`` (form or JSON: ``client_id``, ``client_secret``,
  ``code``, ``redirect_uri``): a ``ghu_`` user access token; a wrong secret or a bad,
  expired or reused code answers 200 with ``error``, as GitHub does.

https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app

Who is "signed in to github.com" is test state: ``fake.oauth.sign_in("alice")``.
User tokens authenticate ``GET /user`` and ``GET /repos/{owner}/{repo}``; a user
reads a private repository only when ``fake.oauth.grant(repo, login)`` says so,
and only where the App is installed (a user-to-server token's reach).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

#: GitHub's codes expire after 10 minutes; user access tokens after 8 hours.
CODE_LIFETIME_S = 600
TOKEN_LIFETIME_S = 8 * 3600


@dataclass(frozen=True)
class UserToken:
    token: str
    login: str
    client_id: str
    expires_at: float


@dataclass
class _Code:
    login: str
    client_id: str
    redirect_uri: str
    expires_at: float


@dataclass
class OAuthState:
    """The OAuth side of the fake: App clients, the browser's session, codes, tokens."""

    #: client id -> (client secret, callback URL registered for the App)
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: The login signed in to the fake's github.com, or None (sign-in page).
    browser_login: str | None = None
    codes: dict[str, _Code] = field(default_factory=dict)
    tokens: dict[str, UserToken] = field(default_factory=dict)
    #: repository full name (lower case) -> logins that can read it
    readers: dict[str, set[str]] = field(default_factory=dict)
    #: Every authorize request seen, as its query parameters.
    authorizations: list[dict[str, str]] = field(default_factory=list)

    def register(self, client_id: str, client_secret: str, callback_url: str) -> None:
        self.clients[client_id] = (client_secret, callback_url)

    def sign_in(self, login: str | None) -> None:
        self.browser_login = login

    def grant(self, repo: str, login: str) -> None:
        self.readers.setdefault(repo.lower(), set()).add(login.lower())

    def can_read(self, repo: str, login: str, *, private: bool) -> bool:
        return not private or login.lower() in self.readers.get(repo.lower(), set())

    def issue(self, login: str, client_id: str) -> str:
        """A user access token for ``login``, as if the web flow had run."""
        value = "ghu_" + secrets.token_urlsafe(27)[:36]
        token = UserToken(value, login, client_id, time.time() + TOKEN_LIFETIME_S)
        self.tokens[token.token] = token
        return token.token

    def user_token(self, value: str) -> UserToken | None:
        token = self.tokens.get(value)
        if token is None or time.time() >= token.expires_at:
            return None
        return token


def handles(path: str) -> bool:
    # A browser on the sign-in page also asks for the site's icon.
    return path in ("/login/oauth/authorize", "/login/oauth/access_token", "/favicon.ico")


def answer(
    state: OAuthState, method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` for one request to an OAuth web endpoint."""
    if path == "/login/oauth/authorize" and method == "GET":
        return _authorize(state, dict(parse_qsl(query, keep_blank_values=True)))
    if path == "/login/oauth/access_token" and method == "POST":
        return _access_token(state, _form(headers, body))
    return 404, {"Content-Type": "text/plain"}, b"Not Found"


def _page(status: int, title: str) -> tuple[int, dict[str, str], bytes]:
    html = f"<!doctype html><title>{title}</title><h1>{title}</h1>"
    return status, {"Content-Type": "text/html; charset=utf-8"}, html.encode()


def _under(redirect_uri: str, callback: str) -> bool:
    """GitHub: the redirect URL's host and port must match the callback URL's exactly,
    and its path must be the callback's path or below it."""
    given, registered = urlsplit(redirect_uri), urlsplit(callback)
    if (given.scheme, given.netloc) != (registered.scheme, registered.netloc):
        return False
    base = registered.path.rstrip("/")
    return given.path == registered.path or given.path.startswith(base + "/")


def _authorize(state: OAuthState, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    state.authorizations.append(params)
    client = state.clients.get(params.get("client_id", ""))
    if client is None:
        return _page(404, "Not Found")
    redirect_uri = params.get("redirect_uri") or client[1]
    if not _under(redirect_uri, client[1]):
        return _page(400, "The redirect_uri is not associated with this application.")
    if state.browser_login is None:
        return _page(200, "Sign in to GitHub")
    code = secrets.token_hex(10)
    state.codes[code] = _Code(
        state.browser_login, params["client_id"], redirect_uri, time.time() + CODE_LIFETIME_S
    )
    query = {"code": code}
    if "state" in params:
        query["state"] = params["state"]
    sep = "&" if urlsplit(redirect_uri).query else "?"
    return 302, {"Location": f"{redirect_uri}{sep}{urlencode(query)}"}, b""


def _form(headers: dict[str, str], body: bytes) -> dict[str, str]:
    if headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return dict(parse_qsl(body.decode(errors="replace")))


def _error(error: str, description: str) -> tuple[int, dict[str, str], bytes]:
    doc = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
    body = {"error": error, "error_description": description, "error_uri": f"{doc}#{error}"}
    return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()


def _access_token(state: OAuthState, form: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    client = state.clients.get(form.get("client_id", ""))
    if client is None or not secrets.compare_digest(client[0], form.get("client_secret", "")):
        return _error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        )
    code = state.codes.pop(form.get("code", ""), None)  # single use
    if code is None or code.client_id != form["client_id"] or time.time() >= code.expires_at:
        return _error("bad_verification_code", "The code passed is incorrect or expired.")
    if form.get("redirect_uri") and form["redirect_uri"] != code.redirect_uri:
        return _error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        )
    token = state.issue(code.login, code.client_id)
    body = {
        "access_token": token,
        "expires_in": TOKEN_LIFETIME_S,
        "refresh_token": "ghr_" + secrets.token_urlsafe(60)[:76],
        "refresh_token_expires_in": 15_897_600,
        "scope": "",
        "token_type": "bearer",
    }
    return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()
