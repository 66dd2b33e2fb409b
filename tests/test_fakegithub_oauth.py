"""The fake GitHub's OAuth web flow answers like github.com, refusals included."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakegithub.server import FakeGitHub

CALLBACK = "http://127.0.0.1:9/oauth/callback"


def authorize(fake: FakeGitHub, client_id: str, **extra: str) -> httpx.Response:
    params = {"client_id": client_id, "redirect_uri": CALLBACK, "state": "s1", **extra}
    return httpx.get(f"{fake.base_url}/login/oauth/authorize", params=params)


def test_code_for_token_then_the_user_reads_what_they_may(fake_github: FakeGitHub) -> None:
    client_id, secret = fake_github.oauth_client(CALLBACK)
    fake_github.add_repo("acme/private")
    fake_github.add_repo("acme/secret")
    fake_github.oauth.grant("acme/private", "alice")
    fake_github.oauth.sign_in("alice")
    redirect = authorize(fake_github, client_id)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == ["s1"]
    form = {"client_id": client_id, "client_secret": secret, "code": query["code"][0]}
    token = httpx.post(
        f"{fake_github.base_url}/login/oauth/access_token",
        data=form,
        headers={"Accept": "application/json"},
    ).json()
    assert token["token_type"] == "bearer"
    assert token["access_token"].startswith("ghu_")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{fake_github.base_url}/user", headers=headers).json()["login"] == "alice"
    api = fake_github.base_url
    assert httpx.get(f"{api}/repos/acme/private", headers=headers).status_code == 200
    assert httpx.get(f"{api}/repos/acme/secret", headers=headers).status_code == 404
    # A user token is not an installation token.
    pulls = httpx.get(f"{fake_github.base_url}/repos/acme/private/pulls", headers=headers)
    assert pulls.status_code == 401
    # Codes are single use.
    again = httpx.post(f"{fake_github.base_url}/login/oauth/access_token", data=form).json()
    assert again["error"] == "bad_verification_code"


def test_refusals(fake_github: FakeGitHub) -> None:
    client_id, _secret = fake_github.oauth_client(CALLBACK)
    assert "Sign in to GitHub" in authorize(fake_github, client_id).text
    fake_github.oauth.sign_in("alice")
    elsewhere = authorize(fake_github, client_id, redirect_uri="https://evil.example/cb")
    assert elsewhere.status_code == 400
    assert "location" not in elsewhere.headers
    code = parse_qs(urlsplit(authorize(fake_github, client_id).headers["location"]).query)
    wrong = httpx.post(
        f"{fake_github.base_url}/login/oauth/access_token",
        json={"client_id": client_id, "client_secret": "nope", "code": code["code"][0]},
    ).json()
    assert wrong["error"] == "incorrect_client_credentials"
    bad = httpx.get(f"{fake_github.base_url}/user", headers={"Authorization": "Bearer ghu_x"})
    assert bad.status_code == 401
