"""Decision pages behind GitHub sign-in: the OAuth web flow against the fake GitHub,
signed session cookies, repository access checked with the reader's own token."""

from __future__ import annotations

import base64
import json
import secrets
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer

from gate.statement import verify_record
from tests.decisions import SCRIPT, stored
from tests.fakegithub.server import FakeGitHub
from tests.harness import RunningService, running, settings_env
from tests.test_durability import free_port
from webhooks.details import GRANT_SECONDS, RECORD_TYPE, Sessions, session_key
from webhooks.settings import load

REPO = "acme/app"  # the repository of tests.decisions' decision


@dataclass
class Site:
    service: RunningService
    fake: FakeGitHub
    decision_id: str
    record: dict[str, Any]
    env: dict[str, str]

    @property
    def page(self) -> str:
        return f"{self.service.url}/decisions/{self.decision_id}"


def _put(service: RunningService, data_dir: Path) -> tuple[str, dict[str, Any]]:
    record, _ = stored(data_dir)  # signed with the service's own key (same data dir)
    decision_id = secrets.token_hex(16)
    body = json.dumps(record).encode()
    service.call(lambda s: s.store.put("decision", decision_id, body))
    return decision_id, record


@pytest.fixture
def site(fake_github: FakeGitHub, tmp_path: Path) -> Iterator[Site]:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    client_id, client_secret = fake_github.oauth_client(f"{public}/oauth/callback")
    fake_github.add_repo(REPO)
    env = settings_env(
        fake_github,
        tmp_path,
        GATE_PUBLIC_URL=public,
        GATE_GITHUB_URL=fake_github.base_url,
        GATE_GITHUB_CLIENT_ID=client_id,
        GATE_GITHUB_CLIENT_SECRET=client_secret,
    )
    with running(env, workers=0, port=port) as service:
        decision_id, record = _put(service, tmp_path)
        yield Site(service, fake_github, decision_id, record, env)


def sign_in(
    site: Site, client: httpx.Client, login: str, *, path: str | None = None
) -> httpx.Response:
    """Open a page as ``login`` (signed in at GitHub) and follow the flow by hand."""
    site.fake.oauth.sign_in(login)
    response = client.get(path or site.page)
    for _ in range(6):
        if response.status_code not in (302, 303):
            return response
        response = client.get(response.url.join(response.headers["location"]))
    raise AssertionError("redirect loop")


def cookie_payload(value: str) -> dict[str, Any]:
    """What an itsdangerous cookie carries (signed, not encrypted: so no secrets in it)."""
    compressed = value.startswith(".")
    body = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    data: dict[str, Any] = json.loads(zlib.decompress(raw) if compressed else raw)
    return data


def test_without_oauth_the_page_and_record_are_open(
    fake_github_server: FakeGitHub, tmp_path: Path
) -> None:
    with running(settings_env(fake_github_server, tmp_path), workers=0) as service:
        decision_id, record = _put(service, tmp_path)
        page = httpx.get(f"{service.url}/decisions/{decision_id}")
        assert page.status_code == 200
        assert "✓ Verifies" in page.text
        assert "Signed in as" not in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert page.headers["x-content-type-options"] == "nosniff"
        download = httpx.get(f"{service.url}/decisions/{decision_id}/record")
        assert download.status_code == 200
        assert download.headers["content-type"] == RECORD_TYPE
        assert "attachment" in download.headers["content-disposition"]
        envelope = download.json()
        assert envelope == record["envelope"]
        assert service.service is not None
        keys = service.service.keyring.verification_keys()
        statement = verify_record(envelope, keys=keys, expect_commit=record["decision"]["head_sha"])
        assert statement["subject"]  # type: ignore[index]
        assert httpx.get(f"{service.url}/decisions/{'0' * 32}").status_code == 404
        assert httpx.get(f"{service.url}/decisions/..%2Fx").status_code == 404
        assert httpx.get(f"{service.url}/login?next=/decisions/x").status_code == 404


def test_a_reader_signs_in_with_github_and_sees_the_page(site: Site) -> None:
    site.fake.oauth.grant(REPO, "alice")
    with httpx.Client() as client:
        first = client.get(site.page)
        assert first.status_code == 303
        assert first.headers["location"] == f"/login?next=%2Fdecisions%2F{site.decision_id}"
        to_github = client.get(site.service.url + first.headers["location"])
        authorize = urlsplit(to_github.headers["location"])
        assert f"{authorize.scheme}://{authorize.netloc}" == site.fake.base_url
        assert authorize.path == "/login/oauth/authorize"
        query = parse_qs(authorize.query)
        assert query["client_id"] == [site.env["GATE_GITHUB_CLIENT_ID"]]
        assert query["redirect_uri"] == [f"{site.env['GATE_PUBLIC_URL']}/oauth/callback"]
        assert len(query["state"][0]) >= 40
        # Not signed in at GitHub: GitHub's own sign-in page, not ours.
        site.fake.oauth.sign_in(None)
        assert "Sign in to GitHub" in client.get(to_github.headers["location"]).text
        page = sign_in(site, client, "alice")
        assert page.status_code == 200, page.text
        assert "Signed in as" in page.text
        assert "alice" in page.text
        assert page.headers["cache-control"] == "private, no-store"
        # The record comes with the same session.
        assert client.get(f"{site.page}/record").headers["content-type"] == RECORD_TYPE
        session = next(c for c in client.cookies.jar if c.name == "merge-gate-session")
        assert session.has_nonstandard_attr("HttpOnly")
        assert session.path == "/"
        # Signed, not encrypted: the user's token must not be in it.
        assert cookie_payload(str(session.value)) == {
            "login": "alice",
            "repos": {REPO: [pytest.approx(time.time(), abs=30), True]},
        }


def test_a_reader_without_access_to_the_repository_is_refused(site: Site) -> None:
    with httpx.Client() as client:
        page = sign_in(site, client, f"bob{SCRIPT}")
        assert page.status_code == 403
        assert "cannot read the repository" in page.text
        assert SCRIPT not in page.text
        assert REPO not in page.text  # nothing about the decision leaks
        assert client.get(f"{site.page}/record").status_code == 403
    # The access check used bob's own token on GET /repos/{owner}/{repo}.
    [check] = [c for c in site.fake.calls if c.path == f"/repos/{REPO}"]
    assert check.status == 404
    assert check.headers["authorization"].split()[-1].startswith("ghu_")


def test_a_public_repository_is_readable_by_anyone_signed_in(
    fake_github: FakeGitHub, site: Site
) -> None:
    site.fake.repos[REPO.lower()].private = False
    with httpx.Client() as client:
        assert sign_in(site, client, "carol").status_code == 200


def test_a_foreign_state_or_code_is_refused(site: Site) -> None:
    """Login CSRF: an attacker's own callback URL (their code, their state) fed to a
    victim's browser must not sign the victim in as the attacker."""
    site.fake.oauth.grant(REPO, "mallory")
    with httpx.Client() as attacker:
        attacker.get(site.page)
        start = attacker.get(f"{site.service.url}/login?next=/decisions/{site.decision_id}")
        site.fake.oauth.sign_in("mallory")
        callback = attacker.get(start.headers["location"]).headers["location"]
    with httpx.Client() as victim:
        refused = victim.get(callback)
        assert refused.status_code == 400
        assert "not started here" in refused.text
        assert "merge-gate-session" not in victim.cookies
        # The victim's own sign-in in flight does not make the attacker's state valid.
        victim.get(f"{site.service.url}/login?next=/decisions/{site.decision_id}")
        assert victim.get(callback).status_code == 400
        assert "merge-gate-session" not in victim.cookies


def test_only_our_own_pages_are_redirect_targets(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/decisions/x/../../admin", ""):
        response = httpx.get(f"{site.service.url}/login", params={"next": target})
        assert response.status_code == 400, target
        assert "location" not in response.headers


def test_a_forged_or_expired_session_is_not_a_session(site: Site) -> None:
    settings = load(site.env)
    key = session_key(settings)
    forged = URLSafeTimedSerializer(b"x" * 32, salt="merge-gate.session").dumps(
        {"login": "alice", "repos": {REPO: [int(time.time()), True]}}
    )
    cookies = {"merge-gate-session": forged}
    assert httpx.get(site.page, cookies=cookies).status_code == 303
    # Signed with the right key, but a grant older than GRANT_SECONDS: ask GitHub again.
    stale = URLSafeTimedSerializer(key, salt="merge-gate.session").dumps(
        {"login": "alice", "repos": {REPO: [int(time.time()) - GRANT_SECONDS - 5, True]}}
    )
    response = httpx.get(site.page, cookies={"merge-gate-session": stale})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?")
    fresh = URLSafeTimedSerializer(key, salt="merge-gate.session").dumps(
        {"login": "alice", "repos": {REPO: [int(time.time()), True]}}
    )
    assert httpx.get(site.page, cookies={"merge-gate-session": fresh}).status_code == 200
    # The state cookie's serializer cannot mint sessions (a salt of its own).
    state_made = URLSafeTimedSerializer(key, salt="merge-gate.oauth-state").dumps(
        {"login": "alice", "repos": {REPO: [int(time.time()), True]}}
    )
    assert httpx.get(site.page, cookies={"merge-gate-session": state_made}).status_code == 303


def test_sign_out_is_a_post_from_this_site(site: Site) -> None:
    site.fake.oauth.grant(REPO, "alice")
    with httpx.Client() as client:
        assert sign_in(site, client, "alice").status_code == 200
        assert client.get(f"{site.service.url}/logout").status_code == 405
        foreign = client.post(
            f"{site.service.url}/logout", headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert "merge-gate-session" in client.cookies
        done = client.post(
            f"{site.service.url}/logout", headers={"Origin": site.env["GATE_PUBLIC_URL"]}
        )
        assert done.status_code == 200
        assert "merge-gate-session" not in client.cookies
        assert client.get(site.page).status_code == 303


def test_cookies_are_secure_host_only_on_https(
    fake_github_server: FakeGitHub, tmp_path: Path
) -> None:
    from starlette.responses import Response

    settings = load(
        settings_env(
            fake_github_server,
            tmp_path,
            GATE_PUBLIC_URL="https://gate.example.com",
            GATE_SESSION_SECRET="s" * 40,
        )
    )
    sessions = Sessions(settings)
    response = Response()
    sessions.write(response, {"login": "alice", "repos": {}})
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-merge-gate-session=")
    for attribute in ("HttpOnly", "Secure", "SameSite=lax", "Path=/", "Max-Age=28800"):
        assert attribute.lower() in header.lower(), attribute
    assert "domain" not in header.lower()
    # A dedicated session secret gives another key than the webhook secret's.
    plain = load(settings_env(fake_github_server, tmp_path))
    assert session_key(settings) != session_key(plain)
    assert session_key(plain) != plain.webhook_secret.get_secret_value().encode()


def test_oauth_settings_go_together(fake_github_server: FakeGitHub, tmp_path: Path) -> None:
    from webhooks.settings import SettingsError

    env = settings_env(fake_github_server, tmp_path)
    with pytest.raises(SettingsError, match="GATE_GITHUB_CLIENT_SECRET go together"):
        load({**env, "GATE_GITHUB_CLIENT_ID": "Iv1.abc"})
    with pytest.raises(SettingsError, match="GATE_SESSION_SECRET"):
        load({**env, "GATE_SESSION_SECRET": "short"})
    assert load(env).web_url == env["GATE_GITHUB_API_URL"]
    ghes = load({**env, "GATE_GITHUB_API_URL": "https://ghe.acme.example/api/v3"})
    assert ghes.web_url == "https://ghe.acme.example"
    assert load({**env, "GATE_GITHUB_API_URL": "https://api.github.com"}).web_url == (
        "https://github.com"
    )
    configured = load(
        {**env, "GATE_GITHUB_CLIENT_ID": "Iv1.a", "GATE_GITHUB_CLIENT_SECRET": "top-secret-value"}
    )
    assert configured.oauth
    assert "top-secret-value" not in repr(configured)
