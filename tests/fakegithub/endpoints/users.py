"""The signed-in user of a user access token.

https://docs.github.com/rest/users/users#get-the-authenticated-user
"""

from __future__ import annotations

from tests.fakegithub import payloads
from tests.fakegithub.routing import Ctx, Reply, route
from tests.fakegithub.spec import skeleton


@route("GET", "/user", auth="user")
def get_authenticated_user(ctx: Ctx) -> Reply:
    assert ctx.user is not None
    body = skeleton("public-user")
    body.update(payloads.user_json(ctx.api, ctx.state.user(ctx.user)), user_view_type="public")
    return Reply(body=body)
