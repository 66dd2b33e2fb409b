"""Decision pages, behind a GitHub sign-in when the App's OAuth client is configured.

Routes:

- ``GET /decisions/{id}``: the details page (``webhooks/pages.py``);
- ``GET /decisions/{id}/record``: the signed record, the DSSE envelope, as
  ``application/vnd.in-toto+json``;
- ``GET /login?next=``, ``GET /oauth/callback``, ``POST /logout``: GitHub's OAuth web
  flow for a GitHub App.

Without ``GATE_GITHUB_CLIENT_ID``/``GATE_GITHUB_CLIENT_SECRET`` anyone holding a
decision's id (128-bit, unguessable) can read it. With them, the reader signs in
to GitHub and sees a decision only if GitHub lets them read its repository: at
sign-in, ``GET /repos/{owner}/{repo}`` is asked with *their* token (a GitHub App's
user token reaches what both the user and the App can), and the answer is kept in
the session for ``GRANT_SECONDS``; after that the next view goes through GitHub
again (without a prompt: the App is authorized already), so revoked access stops
counting within minutes. The user's token is used only during the callback and
never stored.

The session is a cookie signed with HMAC (itsdangerous) under a key derived
from ``GATE_SESSION_SECRET``, else from the webhook secret (HKDF, its own
``info``), expiring after ``SESSION_SECONDS``; ``HttpOnly``, ``SameSite=Lax``,
``Secure`` (and the ``__Host-`` prefix) when the public URL is https. CSRF: the
OAuth ``state`` is random, kept in a signed short-lived cookie and compared in
constant time at the callback, so a code from someone else's sign-in is refused
(RFC 6749 section 10.12); no GET changes anything but the sign-in itself; sign-out
is a POST whose ``Origin`` must be this service.
https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import re2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from webhooks import pages
from webhooks.github import GitHubError, NotFound
from webhooks.service import Service
from webhooks.settings import Settings
from webhooks.store import StoreUnavailable

log = logging.getLogger("merge_gate.details")

SESSION_SECONDS = 8 * 3600
#: How long a repository read check made at sign-in counts.
GRANT_SECONDS = 15 * 60
#: A sign-in must come back from GitHub within this time.
STATE_SECONDS = 10 * 60
#: Repositories remembered per session (the cookie stays small).
MAX_GRANTS = 16
RECORD_TYPE = "application/vnd.in-toto+json"

_ID = re2.compile(r"^[A-Za-z0-9]{1,64}$")
_NEXT = re2.compile(r"^/decisions/[A-Za-z0-9]{1,64}(/record)?$")


def session_key(settings: Settings) -> bytes:
    """The cookie-signing key: GATE_SESSION_SECRET, else HKDF of the webhook secret.

    A key of its own (not the webhook secret itself) so a cookie can never be
    turned into, or checked as, a webhook signature.
    """
    source = (settings.session_secret or settings.webhook_secret).get_secret_value()
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"merge-gate session cookie v1"
    ).derive(source.encode())


class Sessions:
    """Signed cookies: the session (login and repository grants) and the sign-in state."""

    def __init__(self, settings: Settings) -> None:
        key = session_key(settings)
        self._session = URLSafeTimedSerializer(key, salt="merge-gate.session")
        self._state = URLSafeTimedSerializer(key, salt="merge-gate.oauth-state")
        self.secure = settings.public_url.startswith("https://")
        prefix = "__Host-" if self.secure else ""
        self.session_cookie = f"{prefix}merge-gate-session"
        self.state_cookie = f"{prefix}merge-gate-oauth"

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def read(self, request: Request) -> dict[str, Any] | None:
        raw = request.cookies.get(self.session_cookie)
        if not raw:
            return None
        try:
            data = self._session.loads(raw, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("login"), str) else None

    def write(self, response: Response, session: Mapping[str, Any]) -> None:
        value = self._session.dumps(dict(session))
        self._set(response, self.session_cookie, value, SESSION_SECONDS)

    def begin(self, response: Response, *, state: str, next_path: str) -> None:
        value = self._state.dumps({"state": state, "next": next_path})
        self._set(response, self.state_cookie, value, STATE_SECONDS)

    def pending(self, request: Request) -> dict[str, str] | None:
        raw = request.cookies.get(self.state_cookie)
        if not raw:
            return None
        try:
            data = self._state.loads(raw, max_age=STATE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), str) for k in ("state", "next")
        ):
            return None
        return {"state": data["state"], "next": data["next"]}

    def clear(self, response: Response, *names: str) -> None:
        for name in names:
            response.delete_cookie(
                name, path="/", secure=self.secure, httponly=True, samesite="lax"
            )


def _grant(session: Mapping[str, Any] | None, repo: str, now: float) -> bool | None:
    """True/False: a fresh answer to "can this user read ``repo``"; None: ask GitHub."""
    if session is None:
        return None
    repos = session.get("repos")
    entry = repos.get(repo.lower()) if isinstance(repos, dict) else None
    if not isinstance(entry, list) or len(entry) != 2:
        return None
    checked, allowed = entry
    if not isinstance(checked, int | float) or now - checked > GRANT_SECONDS:
        return None
    return bool(allowed)


#: (the stored decision, the signed-in login, or the response to send instead)
_Guarded = tuple[dict[str, Any] | None, str | None, Response | None]


def _headers(private: bool) -> dict[str, str]:
    return {
        "Content-Security-Policy": pages.CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Behind sign-in a page is one reader's: no shared cache may keep it.
        "Cache-Control": "private, no-store" if private else "private, max-age=60",
    }


def _html(body: str, status: int = 200, *, private: bool) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_headers(private))


def routes(service: Service) -> list[Route]:
    settings = service.settings
    sessions = Sessions(settings)
    web = settings.web_url
    callback_url = f"{settings.public_url}/oauth/callback"

    async def load(decision_id: str) -> dict[str, Any] | None:
        if not _ID.match(decision_id):
            return None
        raw = await service.store.get("decision", decision_id)
        return json.loads(raw) if raw is not None else None

    def login_redirect(path: str) -> Response:
        return RedirectResponse(
            f"/login?{urlencode({'next': path})}", status_code=303, headers=_headers(True)
        )

    async def guarded(request: Request) -> _Guarded:
        """(stored decision, viewer login, or the response to send instead)."""
        decision_id = request.path_params["decision_id"]
        try:
            stored = await load(decision_id)
        except StoreUnavailable:
            return (
                None,
                None,
                _html(
                    pages.message_page("Try again", "The decision store is unavailable."),
                    503,
                    private=True,
                ),
            )
        if not settings.oauth:
            if stored is None:
                return None, None, _html(pages.not_found(decision_id), 404, private=False)
            return stored, None, None
        session = sessions.read(request)
        if session is None:
            # Whether the id exists is not said before sign-in either.
            return None, None, login_redirect(request.url.path)
        login = str(session["login"])
        if stored is None:
            return None, login, _html(pages.not_found(decision_id), 404, private=True)
        allowed = _grant(session, str(stored["decision"]["repo"]), time.time())
        if allowed is None:
            return None, login, login_redirect(request.url.path)
        if not allowed:
            return None, login, _html(pages.forbidden(login), 403, private=True)
        return stored, login, None

    async def decision(request: Request) -> Response:
        stored, login, refused = await guarded(request)
        if refused is not None:
            return refused
        assert stored is not None
        body = pages.decision_page(
            stored,
            keys=service.keyring.verification_keys(),
            web_url=web,
            record_url=f"{request.url.path}/record",
            viewer=login,
        )
        return _html(body, private=settings.oauth)

    async def record(request: Request) -> Response:
        stored, _login, refused = await guarded(request)
        if refused is not None:
            return refused
        assert stored is not None
        decision_id = request.path_params["decision_id"]
        return Response(
            json.dumps(stored["envelope"], indent=2, sort_keys=True) + "\n",
            media_type=RECORD_TYPE,
            headers={
                **_headers(settings.oauth),
                "Content-Disposition": f'attachment; filename="merge-gate-{decision_id}.dsse.json"',
            },
        )

    async def login(request: Request) -> Response:
        if not settings.oauth:
            return _html(pages.not_found("login"), 404, private=False)
        next_path = request.query_params.get("next", "")
        if not _NEXT.match(next_path):
            # Only our own decision pages: never a redirect to anywhere else.
            return _html(
                pages.message_page("Nothing to sign in for", "Open a decision's link instead."),
                400,
                private=True,
            )
        state = secrets.token_urlsafe(32)
        query = urlencode(
            {"client_id": settings.github_client_id, "redirect_uri": callback_url, "state": state}
        )
        response = RedirectResponse(
            f"{web}/login/oauth/authorize?{query}", status_code=303, headers=_headers(True)
        )
        sessions.begin(response, state=state, next_path=next_path)
        return response

    def failed(message: str, status: int = 400) -> Response:
        response = _html(pages.message_page("Sign-in failed", message), status, private=True)
        sessions.clear(response, sessions.state_cookie)
        return response

    async def oauth_callback(request: Request) -> Response:
        if not settings.oauth:
            return _html(pages.not_found("oauth"), 404, private=False)
        pending = sessions.pending(request)
        given = request.query_params.get("state", "")
        if pending is None or not hmac.compare_digest(pending["state"], given):
            return failed("This sign-in was not started here, or took too long. Try again.")
        code = request.query_params.get("code", "")
        if not code:
            return failed(f"GitHub did not sign you in: {request.query_params.get('error', '')}")
        assert settings.github_client_id is not None
        assert settings.github_client_secret is not None
        try:
            token = await service.gh.exchange_code(
                web_url=web,
                client_id=settings.github_client_id,
                client_secret=settings.github_client_secret.get_secret_value(),
                code=code,
                redirect_uri=callback_url,
            )
            user = await service.gh.as_user("GET", "/user", token=token, route="GET /user")
        except GitHubError as error:
            log.warning("sign-in failed", extra={"error": str(error)})
            return failed("GitHub refused the sign-in. Try again.", 502)
        login = str((user.data or {}).get("login", ""))
        if not login:
            return failed("GitHub did not say who you are.", 502)
        next_path = pending["next"]
        session = sessions.read(request) or {}
        kept = session.get("repos") if session.get("login") == login else None
        grants = dict(kept) if isinstance(kept, dict) else {}
        decision_id = next_path.split("/")[2]
        try:
            stored = await load(decision_id)
        except StoreUnavailable:
            stored = None
        if stored is not None:
            repo = str(stored["decision"]["repo"])
            owner, _, name = repo.partition("/")
            try:
                await service.gh.as_user(
                    "GET", f"/repos/{owner}/{name}", token=token, route="GET /repos/{owner}/{repo}"
                )
                allowed = True
            except NotFound:
                allowed = False
            except GitHubError as error:
                log.warning("repository access check failed", extra={"error": str(error)})
                return failed("GitHub could not say whether you can read this repository.", 502)
            grants[repo.lower()] = [int(time.time()), allowed]
            # Keep the most recent checks only.
            grants = dict(sorted(grants.items(), key=lambda kv: kv[1][0])[-MAX_GRANTS:])
        response = RedirectResponse(next_path, status_code=303, headers=_headers(True))
        sessions.write(response, {"login": login, "repos": grants})
        sessions.clear(response, sessions.state_cookie)
        return response

    async def logout(request: Request) -> Response:
        origin = request.headers.get("origin")
        ours = urlsplit(settings.public_url)
        if origin is not None and origin != f"{ours.scheme}://{ours.netloc}":
            refused = pages.message_page("Refused", "Sign out from this site.")
            return _html(refused, 403, private=True)
        response = _html(
            pages.message_page("Signed out", "You are signed out of merge-gate."), private=True
        )
        sessions.clear(response, sessions.session_cookie, sessions.state_cookie)
        return response

    return [
        Route("/decisions/{decision_id}", decision, methods=["GET"]),
        Route("/decisions/{decision_id}/record", record, methods=["GET"]),
        Route("/login", login, methods=["GET"]),
        Route("/oauth/callback", oauth_callback, methods=["GET"]),
        Route("/logout", logout, methods=["POST"]),
    ]
