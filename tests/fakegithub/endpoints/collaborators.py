"""A user's permission on a repository.

https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user
(``permission`` is admin, write, read or none; maintain reads as write, triage as read).
"""

from __future__ import annotations

from tests.fakegithub import payloads
from tests.fakegithub.routing import Ctx, Reply, route

_LEGACY = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read"}


@route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
def get_permission(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    login = ctx.params["username"]
    role = ctx.state.permission_of(repo.full_name, login)
    body = {
        "permission": _LEGACY.get(role, role),
        "role_name": role,
        "user": {**payloads.user_json(ctx.api, ctx.state.user(login)), "role_name": role},
    }
    return Reply(body=body)


_RANK = {"read": 0, "triage": 1, "write": 2, "maintain": 3, "admin": 4}


@route("GET", "/repos/{owner}/{repo}/collaborators")
def list_collaborators(ctx: Ctx) -> Reply:
    """Users given a role on the repository explicitly, at least ``permission``."""
    repo = ctx.repo()
    floor = _RANK.get(ctx.query.get("permission", "read"), 0)
    found = sorted(
        login
        for (name, login), role in ctx.state.permissions.items()
        if name == repo.full_name.lower() and _RANK.get(role, -1) >= floor
    )
    chunk, headers = ctx.page(found)
    body = []
    for login in chunk:
        role = ctx.state.permission_of(repo.full_name, login)
        user = ctx.state.user(login)
        body.append(
            {
                **payloads.user_json(ctx.api, user),
                "role_name": role,
                "permissions": {
                    "admin": role == "admin",
                    "maintain": _RANK[role] >= 3,
                    "push": _RANK[role] >= 2,
                    "triage": _RANK[role] >= 1,
                    "pull": True,
                },
            }
        )
    return Reply(body=body, headers=headers)
