"""A repository's GitHub Actions workflow permissions.

https://docs.github.com/rest/actions/permissions#get-default-workflow-permissions-for-a-repository
(fine-grained: "Actions" repository permission, read).
"""

from __future__ import annotations

from tests.fakegithub.routing import ApiError, Ctx, Reply, route


@route("GET", "/repos/{owner}/{repo}/actions/permissions/workflow")
def workflow_permissions(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    if ctx.token is not None:
        inst = ctx.state.installations.get(ctx.token.installation_id)
        if (inst.permissions if inst else {}).get("actions") not in ("read", "write"):
            raise ApiError(403, "Resource not accessible by integration")
    return Reply(
        body={
            "default_workflow_permissions": "read",
            "can_approve_pull_request_reviews": repo.actions_can_approve,
        }
    )
