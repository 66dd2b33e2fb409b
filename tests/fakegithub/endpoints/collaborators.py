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
