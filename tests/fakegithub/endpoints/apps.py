"""The App itself: who am I, installations, installation tokens, manifest conversion.

https://docs.github.com/rest/apps/apps
"""

from __future__ import annotations

from typing import Any

from tests.fakegithub import auth, payloads
from tests.fakegithub.routing import ApiError, Ctx, Reply, not_found, route, unprocessable
from tests.fakegithub.state import iso


def _own_installation(ctx: Ctx) -> int:
    """The path's installation, if it belongs to the App that signed the JWT."""
    inst_id = int(ctx.params["installation_id"])
    inst = ctx.state.installations.get(inst_id)
    if inst is None or ctx.app is None or inst.app_id != ctx.app.id:
        raise not_found()
    return inst_id


@route("GET", "/app", auth="app")
def get_app(ctx: Ctx) -> Reply:
    assert ctx.app is not None
    return Reply(body=payloads.app_json(ctx.api, ctx.state, ctx.app))


@route("GET", "/app/installations", auth="app")
def list_installations(ctx: Ctx) -> Reply:
    assert ctx.app is not None
    mine = [i for i in ctx.state.installations.values() if i.app_id == ctx.app.id]
    chunk, headers = ctx.page(mine)
    return Reply(
        body=[payloads.installation_json(ctx.api, ctx.state, i) for i in chunk], headers=headers
    )


@route("GET", "/app/installations/{installation_id}", auth="app")
def get_installation(ctx: Ctx) -> Reply:
    inst = ctx.state.installations[_own_installation(ctx)]
    return Reply(body=payloads.installation_json(ctx.api, ctx.state, inst))


@route("POST", "/app/installations/{installation_id}/access_tokens", auth="app")
def create_token(ctx: Ctx) -> Reply:
    inst = ctx.state.installations[_own_installation(ctx)]
    body = ctx.body()
    names: list[str] = list(body.get("repositories") or [])
    ids: list[int] = list(body.get("repository_ids") or [])
    for repo_id in ids:
        repo = next((r for r in ctx.state.repos.values() if r.id == repo_id), None)
        if repo is None:
            names.append(f"#{repo_id}")  # reported below as not accessible
        else:
            names.append(repo.name)
    reachable = {r.name: r for r in ctx.state.repos.values() if inst.covers(r.full_name)}
    if any(n not in reachable for n in names):
        raise unprocessable(
            "There is at least one repository that does not exist or is not accessible"
            " to the parent installation."
        )
    permissions = body.get("permissions") or inst.permissions
    token = auth.issue_token(
        inst.id, ctx.state.token_lifetime, tuple(names) if names else None, dict(permissions)
    )
    out: dict[str, Any] = {
        "token": token.token,
        "expires_at": iso(token.expires_at),
        "permissions": token.permissions,
        "repository_selection": "selected" if names or inst.repositories is not None else "all",
    }
    if names:
        out["repositories"] = [payloads.repo_json(ctx.api, ctx.state, reachable[n]) for n in names]
    return Reply(201, out)


@route("GET", "/repos/{owner}/{repo}/installation", auth="app")
def repo_installation(ctx: Ctx) -> Reply:
    assert ctx.app is not None
    full_name = f"{ctx.params['owner']}/{ctx.params['repo']}"
    if full_name.lower() not in ctx.state.repos:
        raise not_found()
    for inst in ctx.state.installations.values():
        if inst.app_id == ctx.app.id and inst.covers(full_name):
            return Reply(body=payloads.installation_json(ctx.api, ctx.state, inst))
    raise not_found()


@route("GET", "/installation/repositories")
def installation_repositories(ctx: Ctx) -> Reply:
    assert ctx.token is not None
    inst = ctx.state.installations[ctx.token.installation_id]
    repos = [r for r in ctx.state.repos.values() if inst.covers(r.full_name)]
    if ctx.token.repositories is not None:
        repos = [r for r in repos if r.name in ctx.token.repositories]
    chunk, headers = ctx.page(repos)
    return Reply(
        body={
            "total_count": len(repos),
            "repository_selection": "all" if inst.repositories is None else "selected",
            "repositories": [payloads.repo_json(ctx.api, ctx.state, r) for r in chunk],
        },
        headers=headers,
    )


@route("POST", "/app-manifests/{code}/conversions", auth="none")
def convert_manifest(ctx: Ctx) -> Reply:
    # A code works once, as on GitHub (it also expires after an hour there).
    conv = ctx.state.manifest_codes.pop(ctx.params["code"], None)
    if conv is None:
        raise ApiError(404, "Not Found")
    app = ctx.state.register_app(
        conv["id"],
        slug=conv["slug"],
        name=conv["name"],
        client_id=conv["client_id"],
        owner=conv["owner"],
    )
    out = payloads.app_json(ctx.api, ctx.state, app)
    out.update(
        client_id=conv["client_id"],
        client_secret=conv["client_secret"],
        webhook_secret=conv["webhook_secret"],
        pem=conv["pem"],
    )
    return Reply(201, out)
