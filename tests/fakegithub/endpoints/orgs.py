"""Teams: members and one member's membership.

https://docs.github.com/rest/teams/members
"""

from __future__ import annotations

from tests.fakegithub import payloads
from tests.fakegithub.models import Team
from tests.fakegithub.routing import Ctx, Reply, not_found, route


def _team(ctx: Ctx) -> Team:
    org = ctx.params["org"]
    if ctx.token is not None:
        inst = ctx.state.installations.get(ctx.token.installation_id)
        if inst is None or inst.account.lower() != org.lower():
            raise not_found()
    team = ctx.state.teams.get((org.lower(), ctx.params["team_slug"].lower()))
    if team is None:
        raise not_found()
    return team


@route("GET", "/orgs/{org}/teams/{team_slug}/members")
def list_members(ctx: Ctx) -> Reply:
    team = _team(ctx)
    role = ctx.query.get("role", "all")
    if role == "maintainer":
        logins = list(team.maintainers)
    elif role == "member":
        logins = [m for m in team.members if m not in team.maintainers]
    else:
        logins = list(team.members)
    chunk, headers = ctx.page(logins)
    return Reply(
        body=[payloads.user_json(ctx.api, ctx.state.user(login)) for login in chunk],
        headers=headers,
    )


@route("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}")
def get_membership(ctx: Ctx) -> Reply:
    team = _team(ctx)
    username = ctx.params["username"]
    match = next((m for m in team.members if m.lower() == username.lower()), None)
    if match is None:
        raise not_found()
    return Reply(
        body={
            "url": f"{ctx.api}/organizations/{team.org}/team/{team.id}/memberships/{match}",
            "role": "maintainer" if match in team.maintainers else "member",
            "state": "active",
        }
    )
