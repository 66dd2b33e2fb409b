"""The fake GitHub is honest: it rejects what GitHub's description rejects and
enforces the limits GitHub enforces, over a real loopback HTTP connection."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed, SecondaryRateLimitExceeded

from tests.fakegithub import FakeGitHub, PRCommit, PRFile, blob_sha, deliveries, routing, spec

pytest_plugins = ["tests.fakegithub.plugin"]

REPO = "org/repo"


@pytest.fixture
def fake(fake_github: FakeGitHub) -> FakeGitHub:
    assert fake_github.validate_responses  # every answer is held to the description too
    fake_github.add_repo(REPO)
    return fake_github


@pytest.fixture
def token(fake: FakeGitHub) -> str:
    return fake.issue_token(fake.installation_id_for(REPO))


@pytest.fixture
def client(fake: FakeGitHub, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake.base_url,
        headers={"Authorization": f"token {token}", "Accept": "application/vnd.github+json"},
        timeout=10,
    ) as c:
        yield c


def take_violations(fake: FakeGitHub) -> list[Any]:
    """The violations so far, cleared (so the fixture's teardown check passes)."""
    with fake.lock:
        found = list(fake.violations)
        fake.violations.clear()
    return found


# --------------------------------------------------------------------- referee


def test_every_route_is_an_operation_of_the_description() -> None:
    for r in routing.ROUTES:
        assert spec.has_operation(r.method, r.pattern), r.operation


def test_a_request_the_description_rejects_is_a_violation(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    resp = client.post(f"/repos/{REPO}/check-runs", json={"name": "gate"})
    assert resp.status_code == 400
    assert "head_sha" in resp.json()["message"]
    [violation] = take_violations(fake)
    assert violation.kind == "request"
    assert violation.method == "POST"
    assert violation.path == f"/repos/{REPO}/check-runs"
    assert "head_sha" in violation.message
    assert fake.calls[-1].status == 400
    assert fake.calls[-1].json == {"name": "gate"}


def test_unknown_path_bad_query_and_unimplemented_are_all_recorded(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    assert client.get("/no/such/endpoint").status_code == 400
    assert client.delete("/app").status_code == 400  # path known, method not
    assert client.get(f"/repos/{REPO}/pulls", params={"state": "bogus"}).status_code == 400
    assert client.get(f"/repos/{REPO}/pulls/not-a-number").status_code == 400
    # Valid per the description, but not something the fake models: 501.
    assert client.get(f"/repos/{REPO}/issues").status_code == 501
    found = take_violations(fake)
    assert [v.kind for v in found] == ["request"] * 4 + ["unimplemented"]
    assert "state" in found[2].message


def test_malformed_json_is_a_violation(fake: FakeGitHub, client: httpx.Client) -> None:
    resp = client.post(
        f"/repos/{REPO}/check-runs", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["message"] == "Problems parsing JSON"
    assert len(take_violations(fake)) == 1


def test_a_request_whose_client_dies_mid_body_is_no_request(fake: FakeGitHub, token: str) -> None:
    # A killed worker may have sent the headers of a POST and part of its body.
    host, port = fake.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: token "
            + token.encode()
            + b'\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"qu'
        )
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(100) == b""  # closed unanswered
    assert fake.calls == []
    assert fake.violations == []


def test_a_valid_request_leaves_no_violation_and_is_logged(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.add_pull(REPO, 3)
    assert client.get(f"/repos/{REPO}/pulls/3", params={"x": "1"}).status_code == 200
    call = fake.calls[-1]
    assert (call.method, call.path, call.query, call.status) == (
        "GET",
        f"/repos/{REPO}/pulls/3",
        {"x": "1"},
        200,
    )
    assert call.operation == "GET /repos/{owner}/{repo}/pulls/{pull_number}"
    assert fake.calls_to("GET", "/repos/{owner}/{repo}/pulls/{pull_number}") == [call]
    assert fake.violations == []


def test_every_route_answers_within_the_description(fake: FakeGitHub, token: str) -> None:
    """One successful call per route on a busy world; ``validate_responses`` is on."""
    pull = fake.add_pull(REPO, 1, labels=["agent", "risk:high"], draft=True, files=["a.py"])
    fake.add_pull(REPO, 2, head_repo="someone/repo")
    fake.set_file(REPO, pull.head_sha, "a.py", "x = 1\n")
    blob = fake.set_file(REPO, "main", "CODEOWNERS", "* @org/core\n")
    fake.add_review(REPO, 1, user="alice", state="CHANGES_REQUESTED")
    fake.add_review(REPO, 1, user="bob", state="PENDING")
    fake.set_team("org", "core", ["alice"])
    fake.protect_branch(REPO, "main", required_checks=["merge-gate"])
    rid = fake.add_ruleset(REPO, "gate", [{"type": "non_fast_forward"}])
    delivery = fake.add_delivery("pull_request", "opened")
    fake.add_manifest_code("code1")
    run = fake.add_check_run(REPO, pull.head_sha, "ci", app_id=fake.app_id)
    inst = fake.installation_id_for(REPO)
    fake.installations[inst].permissions.update(issues="write", actions="read")
    app = {"Authorization": f"Bearer {fake.app_jwt()}"}
    tok = {"Authorization": f"token {token}"}
    user_token = fake.oauth.issue("alice", fake.apps[fake.app_id].client_id)
    user = {"Authorization": f"Bearer {user_token}"}
    annotation = _annotations(1)
    calls: list[tuple[str, str, dict[str, str], Any]] = [
        ("GET", "/app", app, None),
        ("GET", "/app/installations", app, None),
        ("GET", f"/app/installations/{inst}", app, None),
        ("POST", f"/app/installations/{inst}/access_tokens", app, {"repositories": ["repo"]}),
        ("GET", f"/repos/{REPO}/installation", app, None),
        ("GET", "/installation/repositories", tok, None),
        ("POST", "/app-manifests/code1/conversions", {}, None),
        ("GET", "/app/hook/deliveries", app, None),
        ("GET", f"/app/hook/deliveries/{delivery}", app, None),
        ("POST", f"/app/hook/deliveries/{delivery}/attempts", app, None),
        ("GET", f"/repos/{REPO}", tok, None),
        ("GET", f"/repos/{REPO}/contents/a.py?ref={pull.head_sha}", tok, None),
        ("GET", f"/repos/{REPO}/git/blobs/{blob}", tok, None),
        ("GET", f"/repos/{REPO}/compare/main...{pull.head_sha}", tok, None),
        ("GET", f"/repos/{REPO}/pulls/1", tok, None),
        ("GET", f"/repos/{REPO}/pulls?state=all", tok, None),
        ("GET", f"/repos/{REPO}/pulls/1/files", tok, None),
        ("GET", f"/repos/{REPO}/pulls/1/commits", tok, None),
        ("GET", f"/repos/{REPO}/pulls/1/reviews", tok, None),
        ("POST", f"/repos/{REPO}/pulls/1/requested_reviewers", tok, {"team_reviewers": ["core"]}),
        ("GET", f"/repos/{REPO}/pulls/1/requested_reviewers", tok, None),
        ("DELETE", f"/repos/{REPO}/pulls/1/requested_reviewers", tok, {"reviewers": ["x"]}),
        ("GET", f"/repos/{REPO}/commits/{pull.head_sha}/pulls", tok, None),
        (
            "POST",
            f"/repos/{REPO}/check-runs",
            tok,
            {"name": "merge-gate", "head_sha": pull.head_sha},
        ),
        (
            "PATCH",
            f"/repos/{REPO}/check-runs/{run}",
            tok,
            {"output": {"title": "t", "summary": "s", "annotations": annotation}},
        ),
        ("GET", f"/repos/{REPO}/check-runs/{run}", tok, None),
        ("GET", f"/repos/{REPO}/check-runs/{run}/annotations", tok, None),
        ("GET", f"/repos/{REPO}/commits/{pull.head_sha}/check-runs", tok, None),
        ("GET", "/orgs/org/teams/core/members", tok, None),
        ("GET", "/orgs/org/teams/core/memberships/alice", tok, None),
        ("GET", f"/repos/{REPO}/collaborators/alice/permission", tok, None),
        ("GET", f"/repos/{REPO}/collaborators?permission=admin", tok, None),
        ("GET", f"/repos/{REPO}/branches/main/protection", tok, None),
        ("GET", f"/repos/{REPO}/rules/branches/main", tok, None),
        ("GET", f"/repos/{REPO}/rulesets", tok, None),
        ("GET", f"/repos/{REPO}/rulesets/{rid}", tok, None),
        ("POST", f"/repos/{REPO}/issues/1/comments", tok, {"body": "hello"}),
        ("POST", f"/repos/{REPO}/issues", tok, {"title": "review", "body": "b"}),
        ("GET", f"/repos/{REPO}/actions/permissions/workflow", tok, None),
        ("GET", "/user", user, None),
    ]
    with httpx.Client(base_url=fake.base_url) as c:
        for method, url, headers, body in calls:
            resp = c.request(method, url, headers=headers, json=body)
            assert resp.status_code < 300, (method, url, resp.text)
    assert {call.operation for call in fake.calls} == {r.operation for r in routing.ROUTES}


# ------------------------------------------------------------------ pagination


def _links(resp: httpx.Response) -> dict[str, str]:
    return {str(rel): str(link["url"]) for rel, link in resp.links.items()}


def test_pull_files_paginate_with_link_headers_and_stop_at_3000(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    fake.validate_responses = False  # 3000 file objects: keep the test fast
    fake.add_pull(REPO, 1, files=[f"src/f{i}.py" for i in range(3500)])
    first = client.get(f"/repos/{REPO}/pulls/1/files", params={"per_page": 100})
    links = _links(first)
    assert set(links) == {"next", "last"}
    assert "page=2" in links["next"]
    assert "per_page=100" in links["next"]
    assert "page=30" in links["last"]
    assert links["next"].startswith(fake.base_url)

    names: list[str] = []
    url: str | None = f"{fake.base_url}/repos/{REPO}/pulls/1/files?per_page=100"
    while url:
        resp = client.get(url)
        names += [f["filename"] for f in resp.json()]
        url = _links(resp).get("next")
    assert len(names) == 3000
    assert names[0] == "src/f0.py"
    assert names[-1] == "src/f2999.py"
    assert set(_links(resp)) == {"first", "prev"}
    # per_page is capped at 100, as on GitHub, and the PR still tells the truth.
    assert len(client.get(f"/repos/{REPO}/pulls/1/files", params={"per_page": 500}).json()) == 100
    assert client.get(f"/repos/{REPO}/pulls/1").json()["changed_files"] == 3500
    assert (
        client.get(f"/repos/{REPO}/pulls/1/files", params={"page": 31, "per_page": 100}).json()
        == []
    )


def test_reviews_and_commits_paginate(fake: FakeGitHub, client: httpx.Client) -> None:
    pull = fake.add_pull(
        REPO,
        2,
        commits=[
            PRCommit(
                f"{i:040x}",
                f"change {i}\n\nCo-authored-by: Human <human@example.com>",
                author_login="agent[bot]",
                author_type="Bot",
            )
            for i in range(1, 36)
        ],
    )
    for i in range(31):
        fake.add_review(REPO, 2, user=f"reviewer{i}", state="COMMENTED")
    page1 = client.get(f"/repos/{REPO}/pulls/2/reviews")
    assert len(page1.json()) == 30
    assert "page=2" in _links(page1)["next"]
    page2 = client.get(_links(page1)["next"])
    assert [r["user"]["login"] for r in page2.json()] == ["reviewer30"]
    assert page2.json()[0]["commit_id"] == pull.head_sha

    commits = client.get(f"/repos/{REPO}/pulls/2/commits", params={"per_page": 10})
    assert "page=4" in _links(commits)["last"]
    first = commits.json()[0]
    assert first["author"]["login"] == "agent[bot]"
    assert first["author"]["type"] == "Bot"
    assert "Co-authored-by: Human <human@example.com>" in first["commit"]["message"]


# ---------------------------------------------------------------------- checks


def _annotations(n: int) -> list[dict[str, Any]]:
    return [
        {
            "path": "src/app.py",
            "start_line": i + 1,
            "end_line": i + 1,
            "annotation_level": "warning",
            "message": f"finding {i}",
        }
        for i in range(n)
    ]


def test_51_annotations_get_githubs_422_and_are_a_violation(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    pull = fake.add_pull(REPO, 4)
    body = {
        "name": "merge-gate",
        "head_sha": pull.head_sha,
        "output": {"title": "t", "summary": "s", "annotations": _annotations(51)},
    }
    resp = client.post(f"/repos/{REPO}/check-runs", json=body)
    assert resp.status_code == 422
    assert resp.json()["message"] == "Validation Failed"
    [violation] = take_violations(fake)
    assert "annotations" in violation.message
    assert fake.check_runs(REPO, pull.head_sha) == []


def test_annotations_accumulate_across_patches(fake: FakeGitHub, client: httpx.Client) -> None:
    pull = fake.add_pull(REPO, 5)
    out = {"title": "t", "summary": "s", "annotations": _annotations(50)}
    created = client.post(
        f"/repos/{REPO}/check-runs",
        json={
            "name": "merge-gate",
            "head_sha": pull.head_sha,
            "status": "in_progress",
            "output": out,
        },
    )
    assert created.status_code == 201
    run_id = created.json()["id"]
    updated = client.patch(
        f"/repos/{REPO}/check-runs/{run_id}", json={"conclusion": "failure", "output": out}
    )
    assert updated.status_code == 200
    assert updated.json()["output"]["annotations_count"] == 100
    assert updated.json()["status"] == "completed"  # a conclusion completes the run
    [run] = fake.check_runs(REPO, pull.head_sha)
    assert (run.name, run.status, run.conclusion, len(run.annotations)) == (
        "merge-gate",
        "completed",
        "failure",
        100,
    )
    listed = client.get(
        f"/repos/{REPO}/commits/{pull.head_sha}/check-runs", params={"check_name": "merge-gate"}
    )
    assert listed.json()["total_count"] == 1
    assert listed.json()["check_runs"][0]["id"] == run_id
    assert client.get(f"/repos/{REPO}/check-runs/{run_id}").json()["conclusion"] == "failure"
    ann = client.get(f"/repos/{REPO}/check-runs/{run_id}/annotations", params={"per_page": 100})
    assert len(ann.json()) == 100


@pytest.mark.parametrize(
    ("extra", "violates_description"),
    [
        ({"output": {"title": "t", "summary": "x" * 65536}}, True),
        ({"output": {"title": "x" * 65536, "summary": "s"}}, False),
        ({"status": "in_progress", "conclusion": "success"}, False),
        ({"status": "completed"}, False),
    ],
    ids=[
        "summary-too-long",
        "title-too-long",
        "conclusion-not-completed",
        "completed-no-conclusion",
    ],
)
def test_check_run_limits(
    fake: FakeGitHub, client: httpx.Client, extra: dict[str, Any], violates_description: bool
) -> None:
    pull = fake.add_pull(REPO, 6)
    resp = client.post(
        f"/repos/{REPO}/check-runs", json={"name": "merge-gate", "head_sha": pull.head_sha, **extra}
    )
    assert resp.status_code == 422
    assert len(take_violations(fake)) == (1 if violates_description else 0)


def test_check_run_on_an_unknown_commit_is_422(fake: FakeGitHub, client: httpx.Client) -> None:
    resp = client.post(f"/repos/{REPO}/check-runs", json={"name": "x", "head_sha": "f" * 40})
    assert resp.status_code == 422
    assert "No commit found" in resp.json()["message"]


def test_latest_filter_keeps_the_newest_run_per_name(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    pull = fake.add_pull(REPO, 8)
    fake.add_check_run(REPO, pull.head_sha, "ci", conclusion="failure")
    newer = fake.add_check_run(REPO, pull.head_sha, "ci", conclusion="success")
    latest = client.get(f"/repos/{REPO}/commits/{pull.head_ref}/check-runs").json()
    assert [r["id"] for r in latest["check_runs"]] == [newer]
    every = client.get(
        f"/repos/{REPO}/commits/{pull.head_sha}/check-runs", params={"filter": "all"}
    )
    assert every.json()["total_count"] == 2


# -------------------------------------------------------------------- contents


def test_contents_blob_sha_etag_and_free_304(fake: FakeGitHub, client: httpx.Client) -> None:
    sha = fake.set_file(REPO, "main", ".github/CODEOWNERS", "hello\n")
    # `echo hello | git hash-object`
    assert sha == "ce013625030ba8dba906f756967f9e9ca394464a"
    first = client.get(f"/repos/{REPO}/contents/.github/CODEOWNERS", params={"ref": "main"})
    assert first.status_code == 200
    body = first.json()
    assert body["sha"] == sha
    assert body["encoding"] == "base64"
    assert base64.b64decode(body["content"]) == b"hello\n"
    etag = first.headers["etag"]
    remaining = int(first.headers["x-ratelimit-remaining"])

    again = client.get(
        f"/repos/{REPO}/contents/.github/CODEOWNERS",
        params={"ref": "main"},
        headers={"If-None-Match": etag},
    )
    assert again.status_code == 304
    assert again.content == b""
    assert int(again.headers["x-ratelimit-remaining"]) == remaining

    fake.set_file(REPO, "main", ".github/CODEOWNERS", "changed\n")
    changed = client.get(
        f"/repos/{REPO}/contents/.github/CODEOWNERS",
        params={"ref": "main"},
        headers={"If-None-Match": etag},
    )
    assert changed.status_code == 200
    assert int(changed.headers["x-ratelimit-remaining"]) == remaining - 1

    blob = client.get(f"/repos/{REPO}/git/blobs/{sha}").json()
    assert base64.b64decode(blob["content"]) == b"hello\n"
    assert blob["size"] == 6


def test_contents_refs_dirs_raw_and_404(fake: FakeGitHub, client: httpx.Client) -> None:
    pull = fake.add_pull(REPO, 9, base_sha="b" * 40)
    fake.set_file(REPO, "main", "docs/a.md", "on main")
    fake.set_file(REPO, pull.head_sha, "docs/a.md", "on head")
    fake.set_file(REPO, pull.head_sha, "docs/sub/b.md", "deep")

    def text(ref: str) -> bytes:
        resp = client.get(f"/repos/{REPO}/contents/docs/a.md", params={"ref": ref})
        return base64.b64decode(resp.json()["content"])

    assert text(pull.head_sha) == b"on head"
    assert text("b" * 40) == b"on main"  # base_sha is where main points
    assert text("refs/heads/main") == b"on main"
    listing = client.get(f"/repos/{REPO}/contents/docs", params={"ref": pull.head_sha}).json()
    assert [(e["name"], e["type"]) for e in listing] == [("a.md", "file"), ("sub", "dir")]
    raw = client.get(
        f"/repos/{REPO}/contents/docs/sub/b.md",
        params={"ref": pull.head_sha},
        headers={"Accept": "application/vnd.github.raw"},
    )
    assert raw.content == b"deep"
    root = client.get(f"/repos/{REPO}/contents/", params={"ref": pull.head_sha}).json()
    assert [(e["path"], e["type"]) for e in root] == [("docs", "dir")]
    assert client.get(f"/repos/{REPO}/contents/nope.txt").status_code == 404
    assert client.get(f"/repos/{REPO}/git/blobs/{'0' * 40}").status_code == 404


# ------------------------------------------------------------------------ auth


def test_jwt_and_installation_token_flow(fake: FakeGitHub) -> None:
    fake.token_lifetime = 600
    inst = fake.installation_id_for(REPO)
    with httpx.Client(base_url=fake.base_url) as c:
        assert c.get("/app").status_code == 401
        good = {"Authorization": f"Bearer {fake.app_jwt()}"}
        assert c.get("/app", headers=good).json()["id"] == fake.app_id
        assert c.get(f"/app/installations/{inst}", headers=good).json()["id"] == inst
        assert c.get(f"/repos/{REPO}/installation", headers=good).json()["id"] == inst

        before = time.time()
        resp = c.post(f"/app/installations/{inst}/access_tokens", headers=good)
        after = time.time()
        assert resp.status_code == 201
        tok = resp.json()["token"]
        # GitHub's format is UTC to the second: the expiry lies 600 s after the
        # moment of issue, which lies between ``before`` and ``after``.
        expires = calendar.timegm(time.strptime(resp.json()["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
        assert int(before) + 600 <= expires <= after + 600
        for scheme in ("token", "Bearer"):
            ok = c.get(f"/repos/{REPO}", headers={"Authorization": f"{scheme} {tok}"})
            assert ok.status_code == 200
        # The JWT is not an installation token, nor is a made-up one.
        assert c.get(f"/repos/{REPO}", headers=good).status_code == 401
        assert (
            c.get(f"/repos/{REPO}", headers={"Authorization": "token ghs_nope"}).status_code == 401
        )
        assert c.get(f"/repos/{REPO}").status_code == 401
        stale = fake.issue_token(inst, lifetime_s=-1)
        assert (
            c.get(f"/repos/{REPO}", headers={"Authorization": f"token {stale}"}).status_code == 401
        )
        fake.expire_tokens()
        gone = c.get(f"/repos/{REPO}", headers={"Authorization": f"token {tok}"})
        assert gone.status_code == 401
        assert gone.json()["message"] == "Bad credentials"


def test_jwts_github_would_refuse(fake: FakeGitHub) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    now = int(time.time())
    bad = {
        "wrong key": jwt.encode(
            {"iat": now - 60, "exp": now + 500, "iss": "1"}, other_pem, "RS256"
        ),
        "expired": jwt.encode(
            {"iat": now - 900, "exp": now - 300, "iss": "1"}, fake.app_private_key_pem, "RS256"
        ),
        "too long": jwt.encode(
            {"iat": now, "exp": now + 3600, "iss": "1"}, fake.app_private_key_pem, "RS256"
        ),
        "unknown app": jwt.encode(
            {"iat": now - 60, "exp": now + 500, "iss": "77"}, fake.app_private_key_pem, "RS256"
        ),
        "not rs256": jwt.encode({"iat": now, "exp": now + 500, "iss": "1"}, "k" * 32, "HS256"),
    }
    with httpx.Client(base_url=fake.base_url) as c:
        for why, token in bad.items():
            resp = c.get("/app", headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401, why
    # A registered App with its own key is accepted.
    public = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fake.register_app(77, public.decode())
    with httpx.Client(base_url=fake.base_url) as c:
        token = jwt.encode({"iat": now - 60, "exp": now + 500, "iss": "77"}, other_pem, "RS256")
        assert c.get("/app", headers={"Authorization": f"Bearer {token}"}).json()["id"] == 77


def test_token_narrowed_to_repositories(fake: FakeGitHub) -> None:
    fake.add_repo("org/other")
    inst = fake.installation_id_for(REPO)
    with httpx.Client(base_url=fake.base_url) as c:
        jwt_h = {"Authorization": f"Bearer {fake.app_jwt()}"}
        resp = c.post(
            f"/app/installations/{inst}/access_tokens",
            headers=jwt_h,
            json={"repositories": ["repo"]},
        )
        assert resp.json()["repository_selection"] == "selected"
        h = {"Authorization": f"token {resp.json()['token']}"}
        assert c.get(f"/repos/{REPO}", headers=h).status_code == 200
        assert c.get("/repos/org/other", headers=h).status_code == 404
        refused = c.post(
            f"/app/installations/{inst}/access_tokens",
            headers=jwt_h,
            json={"repositories": ["not-installed"]},
        )
        assert refused.status_code == 422


def test_githubkit_talks_to_the_fake(fake: FakeGitHub) -> None:
    """The product's client: JWT -> installation token -> parsed models."""
    pull = fake.add_pull(
        REPO,
        10,
        files=[PRFile("src/app.py", "modified", 2, 1, patch="@@ -1 +1,2 @@\n-a\n+b\n+c")],
    )
    fake.add_review(REPO, 10, user="alice", state="APPROVED")
    gh = GitHub(
        AppAuthStrategy(fake.app_id, fake.app_private_key_pem).as_installation(
            fake.installation_id_for(REPO)
        ),
        base_url=fake.base_url,
        # githubkit's default cache is process-wide; a fresh one keeps tests apart.
        cache_strategy=MemCacheStrategy(),
        auto_retry=False,
    )
    got = gh.rest.pulls.get("org", "repo", 10).parsed_data
    assert (got.number, got.head.sha, got.user and got.user.type) == (10, pull.head_sha, "Bot")
    files = gh.rest.pulls.list_files("org", "repo", 10).parsed_data
    assert [(f.filename, f.additions) for f in files] == [("src/app.py", 2)]
    reviews = gh.rest.pulls.list_reviews("org", "repo", 10).parsed_data
    assert [(r.state, r.user and r.user.login) for r in reviews] == [("APPROVED", "alice")]
    run = gh.rest.checks.create(
        "org",
        "repo",
        data={
            "name": "merge-gate",
            "head_sha": pull.head_sha,
            "status": "completed",
            "conclusion": "success",
            "output": {"title": "ok", "summary": "ok"},
        },
    ).parsed_data
    assert run.conclusion == "success"
    assert run.app is not None
    assert run.app.id == fake.app_id
    with pytest.raises(RequestFailed) as missing:
        gh.rest.repos.get_content("org", "repo", "src/app.py", ref=pull.head_sha)
    assert missing.value.response.status_code == 404
    fake.set_file(REPO, pull.head_sha, "src/app.py", "print('hi')\n")
    content = gh.rest.repos.get_content("org", "repo", "src/app.py", ref=pull.head_sha).parsed_data
    assert getattr(content, "sha", None) == blob_sha(b"print('hi')\n")
    token_path = f"/app/installations/{fake.installation_id_for(REPO)}/access_tokens"
    assert fake.calls[0].path == token_path


# ---------------------------------------------------------------------- faults


def test_fail_next_and_secondary_rate_limit(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.fail_next(2, status=502)
    assert [client.get(f"/repos/{REPO}").status_code for _ in range(3)] == [502, 502, 200]

    fake.secondary_rate_limit_next(1, retry_after=7)
    limited = client.get(f"/repos/{REPO}")
    assert limited.status_code == 403
    assert limited.headers["retry-after"] == "7"
    assert "secondary rate limit" in limited.json()["message"]

    fake.secondary_rate_limit_next(1, retry_after=1)
    gh = GitHub(
        TokenAuthStrategy(fake.issue_token()),
        base_url=fake.base_url,
        cache_strategy=MemCacheStrategy(),
        auto_retry=False,
    )
    with pytest.raises(SecondaryRateLimitExceeded):
        gh.rest.repos.get("org", "repo")


def test_chaos_mode_faults_a_share_of_requests_and_counts_them(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    mode = fake.chaos(rate=0.5, seed=3, kinds=("502", "503", "secondary_rate_limit"))
    statuses = [client.get(f"/repos/{REPO}").status_code for _ in range(200)]
    injected = fake.chaos_off()
    faulted = [s for s in statuses if s != 200]
    assert sum(injected.values()) == len(faulted) == sum(mode.injected.values())
    assert 60 < len(faulted) < 140  # about half
    assert set(faulted) == {502, 503, 403}
    assert injected["secondary_rate_limit"] == faulted.count(403)
    # Off again: every request is answered; the counts stay readable.
    assert {client.get(f"/repos/{REPO}").status_code for _ in range(20)} == {200}
    assert fake.faults_injected == injected


def test_chaos_mode_is_reproducible_and_spares_exempt_operations(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    def run(seed: int) -> list[int]:
        fake.chaos(rate=0.3, seed=seed, kinds=("502",))
        return [client.get(f"/repos/{REPO}").status_code for _ in range(40)]

    assert run(7) == run(7)
    fake.chaos(rate=1.0, exempt=["GET /repos/{owner}/{repo}"], kinds=("503",))
    assert client.get(f"/repos/{REPO}").status_code == 200
    assert client.get(f"/repos/{REPO}/pulls").status_code == 503
    assert fake.chaos_off() == {"503": 1}
    with pytest.raises(ValueError, match="kinds"):
        fake.chaos(kinds=("418",))


def test_a_chaos_timeout_acts_then_drops_the_connection(
    fake: FakeGitHub, client: httpx.Client
) -> None:
    pull = fake.add_pull(REPO, 1, files=["a.py"])
    fake.chaos(rate=1.0, kinds=("timeout",), hold=0.05)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(
            f"/repos/{REPO}/check-runs",
            json={
                "name": "merge-gate",
                "head_sha": pull.head_sha,
                "status": "completed",
                "conclusion": "success",
            },
        )
    assert fake.chaos_off() == {"timeout": 1}
    # The write happened although its answer never came: a retry must look it up.
    assert [r.conclusion for r in fake.check_runs(REPO, pull.head_sha)] == ["success"]
    assert client.get(f"/repos/{REPO}").status_code == 200


def test_primary_rate_limit_headers_and_budget(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.rate_limit = 10
    fake.rate_limit_remaining = 2
    first = client.get(f"/repos/{REPO}")
    assert first.headers["x-ratelimit-limit"] == "10"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert first.headers["x-ratelimit-used"] == "9"
    assert first.headers["x-ratelimit-resource"] == "core"
    assert int(first.headers["x-ratelimit-reset"]) > time.time()
    assert client.get(f"/repos/{REPO}").headers["x-ratelimit-remaining"] == "0"
    refused = client.get(f"/repos/{REPO}")
    assert refused.status_code == 403
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert "rate limit exceeded" in refused.json()["message"]
    gh = GitHub(
        TokenAuthStrategy(fake.issue_token()),
        base_url=fake.base_url,
        cache_strategy=MemCacheStrategy(),
        auto_retry=False,
        http_cache=False,
    )
    with pytest.raises(RequestFailed):
        gh.rest.repos.get("org", "repo")


def test_parallel_calls_overlap_their_latency(fake: FakeGitHub, token: str) -> None:
    fake.add_pull(REPO, 11)
    clients = [
        httpx.Client(base_url=fake.base_url, headers={"Authorization": f"token {token}"})
        for _ in range(2)
    ]
    url = f"/repos/{REPO}/pulls/11"
    for c in clients:  # warm up: connections open, validators built
        assert c.get(url).status_code == 200
    fake.latency = 1.0
    times: list[float] = []

    def call(c: httpx.Client) -> None:
        start = time.perf_counter()
        assert c.get(url).status_code == 200
        times.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=call, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for c in clients:
        c.close()
    assert len(times) == 2
    assert min(times) >= 1.0
    # Serialised they would take 2.0 s; the slack is for a loaded machine.
    assert elapsed < 1.6, f"two parallel calls took {elapsed:.2f}s; latency is not overlapping"


# --------------------------------------------------------------- reviews/teams


def test_requested_reviewers(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.add_pull(REPO, 12, author="agent[bot]")
    fake.set_team("org", "core", ["alice"])
    fake.teams_without_access.add("secret-team")
    url = f"/repos/{REPO}/pulls/12/requested_reviewers"
    refused = client.post(url, json={"team_reviewers": ["secret-team"]})
    assert refused.status_code == 422
    assert "collaborator" in refused.json()["message"]
    assert client.post(url, json={"reviewers": ["agent[bot]"]}).status_code == 422
    ok = client.post(url, json={"reviewers": ["bob"], "team_reviewers": ["core"]})
    assert ok.status_code == 201
    got = client.get(url).json()
    assert [u["login"] for u in got["users"]] == ["bob"]
    assert [t["slug"] for t in got["teams"]] == ["core"]
    assert fake.requested_reviewers(REPO, 12) == (["bob"], ["core"])


def test_team_members_and_memberships(fake: FakeGitHub, client: httpx.Client) -> None:
    fake.set_team("org", "core", [f"user{i}" for i in range(35)], maintainers=["lead"])
    page1 = client.get("/orgs/org/teams/core/members")
    assert len(page1.json()) == 30
    page2 = client.get(_links(page1)["next"])
    assert len(page2.json()) == 6
    assert [
        u["login"] for u in client.get("/orgs/org/teams/core/members?role=maintainer").json()
    ] == ["lead"]
    member = client.get("/orgs/org/teams/core/memberships/user3").json()
    assert (member["role"], member["state"]) == ("member", "active")
    assert client.get("/orgs/org/teams/core/memberships/lead").json()["role"] == "maintainer"
    assert client.get("/orgs/org/teams/core/memberships/stranger").status_code == 404
    assert client.get("/orgs/org/teams/ghost/members").status_code == 404
    assert client.get("/orgs/elsewhere/teams/core/members").status_code == 404


def test_fork_pull_is_found_from_its_head_sha(fake: FakeGitHub, client: httpx.Client) -> None:
    pull = fake.add_pull(REPO, 13, head_repo="someone/repo", head_ref="feature")
    fake.push(REPO, 13, "c" * 40, files=["x.py"], message="more\n\nCo-authored-by: A <a@b.c>")
    got = client.get(f"/repos/{REPO}/commits/{'c' * 40}/pulls").json()
    assert [p["number"] for p in got] == [13]
    assert got[0]["head"]["repo"]["full_name"] == "someone/repo"
    assert got[0]["head"]["label"] == "someone:feature"
    assert (
        client.get(f"/repos/{REPO}/commits/{pull.commits[0].sha}/pulls").json()[0]["number"] == 13
    )
    listed = client.get(f"/repos/{REPO}/pulls", params={"head": "someone:feature"}).json()
    assert [p["number"] for p in listed] == [13]
    assert [c.sha for c in fake.pull(REPO, 13).commits][-1] == "c" * 40


def test_compare_lists_a_merge_groups_commits(fake: FakeGitHub, client: httpx.Client) -> None:
    pull = fake.add_pull(REPO, 14)
    fake.set_compare(REPO, "main", "9" * 40, ["1" * 40, pull.head_sha])
    got = client.get(f"/repos/{REPO}/compare/main...{'9' * 40}").json()
    assert [c["sha"] for c in got["commits"]] == ["1" * 40, pull.head_sha]
    assert got["total_commits"] == 2
    fallback = client.get(f"/repos/{REPO}/compare/{pull.base_sha}...{pull.head_sha}").json()
    assert [c["sha"] for c in fallback["commits"]] == [pull.head_sha]
    assert client.get(f"/repos/{REPO}/compare/main...{'8' * 40}").status_code == 404


# ---------------------------------------------------------- protection/rules


def test_branch_protection_and_rules(fake: FakeGitHub, client: httpx.Client) -> None:
    assert client.get(f"/repos/{REPO}/branches/main/protection").status_code == 404
    fake.protect_branch(
        REPO, "release/1.x", required_checks=["merge-gate"], require_code_owner_reviews=True
    )
    prot = client.get(f"/repos/{REPO}/branches/release/1.x/protection").json()
    assert prot["required_status_checks"]["contexts"] == ["merge-gate"]
    assert prot["required_pull_request_reviews"]["require_code_owner_reviews"] is True

    rid = fake.add_ruleset(
        REPO,
        "gate",
        [
            {
                "type": "required_status_checks",
                "parameters": {
                    "strict_required_status_checks_policy": False,
                    "required_status_checks": [{"context": "merge-gate"}],
                },
            }
        ],
    )
    fake.add_ruleset(
        REPO, "releases", [{"type": "deletion"}], include=["refs/heads/release/*"], exclude=[]
    )
    main_rules = client.get(f"/repos/{REPO}/rules/branches/main").json()
    assert [(r["type"], r["ruleset_id"]) for r in main_rules] == [("required_status_checks", rid)]
    rel_rules = client.get(f"/repos/{REPO}/rules/branches/release/1.x").json()
    assert [r["type"] for r in rel_rules] == ["deletion"]
    assert [r["name"] for r in client.get(f"/repos/{REPO}/rulesets").json()] == ["gate", "releases"]
    full = client.get(f"/repos/{REPO}/rulesets/{rid}").json()
    assert full["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"]
    assert client.get(f"/repos/{REPO}/rulesets/999").status_code == 404


# ------------------------------------------------------------ hooks/manifest


def test_hook_deliveries_cursor_pagination_and_redelivery(fake: FakeGitHub) -> None:
    ids = [
        fake.add_delivery("pull_request", "opened", status_code=200 if i % 2 else 500)
        for i in range(5)
    ]
    h = {"Authorization": f"Bearer {fake.app_jwt()}"}
    with httpx.Client(base_url=fake.base_url, headers=h) as c:
        first = c.get("/app/hook/deliveries", params={"per_page": 2})
        assert [d["id"] for d in first.json()] == [ids[4], ids[3]]
        nxt = _links(first)["next"]
        assert "cursor=" in nxt
        second = c.get(nxt)
        assert [d["id"] for d in second.json()] == [ids[2], ids[1]]
        third = c.get(_links(second)["next"])
        assert [d["id"] for d in third.json()] == [ids[0]]
        assert "next" not in _links(third)
        failed = c.get("/app/hook/deliveries", params={"status": "failure"}).json()
        assert {d["status_code"] for d in failed} == {500}

        one = c.get(f"/app/hook/deliveries/{ids[0]}").json()
        assert one["event"] == "pull_request"
        assert one["status_code"] == 500
        assert c.post(f"/app/hook/deliveries/{ids[0]}/attempts").status_code == 202
        assert fake.redelivery_requests == [ids[0]]
        newest = c.get("/app/hook/deliveries", params={"per_page": 1}).json()[0]
        assert (newest["redelivery"], newest["guid"]) == (True, one["guid"])
        assert c.get("/app/hook/deliveries/1").status_code == 404


def test_manifest_conversion_registers_the_app_once(fake: FakeGitHub) -> None:
    fake.add_manifest_code("abc123", app_id=42, slug="merge-gate-test")
    with httpx.Client(base_url=fake.base_url) as c:
        resp = c.post("/app-manifests/abc123/conversions")
        assert resp.status_code == 201
        body = resp.json()
        assert (body["id"], body["slug"]) == (42, "merge-gate-test")
        assert body["pem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
        assert body["webhook_secret"]
        assert body["client_secret"]
        assert c.post("/app-manifests/abc123/conversions").status_code == 404
        token = jwt.encode(
            {"iat": int(time.time()) - 60, "exp": int(time.time()) + 500, "iss": "42"},
            body["pem"],
            "RS256",
        )
        assert c.get("/app", headers={"Authorization": f"Bearer {token}"}).json()["id"] == 42


# ------------------------------------------------------------------ deliveries


def test_examples_are_fresh_copies_with_patchable_fields() -> None:
    assert set(deliveries.events()) == {
        "check_run",
        "check_suite",
        "installation",
        "installation_repositories",
        "membership",
        "merge_group",
        "pull_request",
        "pull_request_review",
        "issue_comment",
    }
    a = deliveries.example("pull_request", "opened")
    a["number"] = -1
    assert deliveries.example("pull_request", "opened")["number"] != -1
    with pytest.raises(LookupError):
        deliveries.example("pull_request", "no-such-action")

    p = deliveries.build(
        "pull_request",
        "synchronize",
        repo="acme/widgets",
        repo_id=5,
        installation_id=77,
        number=42,
        head_sha="d" * 40,
        author="agent[bot]",
        author_type="Bot",
        sender="agent[bot]",
        sender_type="Bot",
    )
    pr = p["pull_request"]
    assert (p["number"], pr["number"], pr["head"]["sha"]) == (42, 42, "d" * 40)
    assert (pr["user"]["login"], pr["user"]["type"]) == ("agent[bot]", "Bot")
    assert p["repository"]["full_name"] == "acme/widgets"
    assert p["repository"]["id"] == 5
    assert p["repository"]["owner"]["login"] == "acme"
    assert pr["base"]["repo"]["full_name"] == "acme/widgets"
    assert pr["url"].endswith("/repos/acme/widgets/pulls/42")
    assert p["installation"]["id"] == 77
    assert p["sender"]["login"] == "agent[bot]"

    run = deliveries.build(
        "check_run", "created", repo="acme/widgets", number=42, head_sha="e" * 40
    )
    assert run["check_run"]["head_sha"] == "e" * 40
    assert run["check_run"]["pull_requests"]
    for ref in run["check_run"]["pull_requests"]:
        assert ref["number"] == 42
        assert ref["head"]["repo"]["name"] == "widgets"
        assert ref["url"].endswith("/repos/acme/widgets/pulls/42")

    review = deliveries.set_review(
        deliveries.example("pull_request_review", "submitted"), user="alice", state="APPROVED"
    )
    assert (review["review"]["user"]["login"], review["review"]["state"]) == ("alice", "approved")


def test_signature_is_githubs_hmac_sha256() -> None:
    # The worked example from GitHub's "Validating webhook deliveries" page.
    assert (
        deliveries.sign(b"Hello, World!", "It's a Secret to Everybody")
        == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )
    payload, body, headers = deliveries.delivery(
        "pull_request", "opened", secret="s3cret", delivery_id="d-1", number=7
    )
    assert payload["number"] == 7
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={expected}"
    assert headers["X-GitHub-Event"] == "pull_request"
    assert headers["X-GitHub-Delivery"] == "d-1"
    assert (
        deliveries.headers("ping", "x", body, "s3cret")["X-Hub-Signature-256"]
        == f"sha256={expected}"
    )
