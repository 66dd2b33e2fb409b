"""Issues and issue comments (a pull request's conversation is its issue's).

https://docs.github.com/rest/issues/comments#create-an-issue-comment
https://docs.github.com/rest/issues/issues#create-an-issue
"""

from __future__ import annotations

from typing import Any

from tests.fakegithub import payloads
from tests.fakegithub.models import Issue, IssueComment
from tests.fakegithub.routing import ApiError, Ctx, Reply, not_found, route, unprocessable
from tests.fakegithub.spec import skeleton
from tests.fakegithub.state import GitHubState, iso

#: "Resource not accessible by integration": the installation lacks the permission.
_FORBIDDEN = "Resource not accessible by integration"


def _granted(ctx: Ctx, permission: str) -> bool:
    if ctx.token is None:  # a user's token: repository access was checked by ctx.repo()
        return True
    inst = ctx.state.installations.get(ctx.token.installation_id)
    installed = inst.permissions if inst else {}
    # What the token was minted with, and what the installation grants now.
    minted = ctx.token.permissions or installed
    return all(p.get(permission) in ("write", "admin") for p in (minted, installed))


def comment_json(api: str, state: GitHubState, c: IssueComment) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("issue-comment")
    url = f"{api}/repos/{c.repo}/issues/comments/{c.id}"
    out.update(
        id=c.id,
        node_id=f"IC_{c.id}",
        url=url,
        html_url=f"https://github.com/{c.repo}/pull/{c.number}#issuecomment-{c.id}",
        issue_url=f"{api}/repos/{c.repo}/issues/{c.number}",
        body=c.body,
        user=payloads.user_json(api, state.user(c.user, c.user_type)),
        created_at=c.created_at,
        updated_at=c.created_at,
        author_association="NONE",
    )
    return out


def issue_json(api: str, state: GitHubState, issue: Issue) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("issue")
    out.update(
        id=issue.id,
        node_id=f"I_{issue.id}",
        number=issue.number,
        url=f"{api}/repos/{issue.repo}/issues/{issue.number}",
        repository_url=f"{api}/repos/{issue.repo}",
        labels_url=f"{api}/repos/{issue.repo}/issues/{issue.number}/labels{{/name}}",
        comments_url=f"{api}/repos/{issue.repo}/issues/{issue.number}/comments",
        events_url=f"{api}/repos/{issue.repo}/issues/{issue.number}/events",
        html_url=f"https://github.com/{issue.repo}/issues/{issue.number}",
        title=issue.title,
        body=issue.body,
        state="open",
        user=payloads.user_json(api, state.user(issue.user, issue.user_type)),
        created_at=issue.created_at,
        updated_at=issue.created_at,
        author_association="NONE",
    )
    return out


@route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def create_comment(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    number = int(ctx.params["issue_number"])
    is_pull = (repo.full_name.lower(), number) in ctx.state.pulls
    known = is_pull or any(
        i.number == number and i.repo.lower() == repo.full_name.lower() for i in ctx.state.issues
    )
    if not known:
        raise not_found()
    # Issues: write, or on a pull request's conversation Pull requests: write.
    if not (_granted(ctx, "issues") or (is_pull and _granted(ctx, "pull_requests"))):
        raise ApiError(403, _FORBIDDEN)
    body = ctx.body().get("body")
    if not isinstance(body, str) or not body:
        raise unprocessable("Validation Failed", errors=[{"field": "body", "code": "missing"}])
    author = f"{ctx.state.apps[1].slug}[bot]" if ctx.token is not None else "operator"
    comment = IssueComment(
        id=ctx.state._comment_ids(),
        repo=repo.full_name,
        number=number,
        user=author,
        user_type="Bot" if ctx.token is not None else "User",
        body=body,
        created_at=iso(),
    )
    ctx.state.comments.append(comment)
    return Reply(status=201, body=comment_json(ctx.api, ctx.state, comment))


@route("POST", "/repos/{owner}/{repo}/issues")
def create_issue(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    if not _granted(ctx, "issues"):
        raise ApiError(403, _FORBIDDEN)
    data = ctx.body()
    title = data.get("title")
    if not isinstance(title, str) or not title:
        raise unprocessable("Validation Failed", errors=[{"field": "title", "code": "missing"}])
    used = [n for (r, n) in ctx.state.pulls if r == repo.full_name.lower()]
    used += [i.number for i in ctx.state.issues if i.repo.lower() == repo.full_name.lower()]
    issue = Issue(
        repo=repo.full_name,
        number=max(used, default=0) + 1,
        id=ctx.state._issue_ids(),
        title=title,
        body=str(data.get("body") or ""),
        user=f"{ctx.state.apps[1].slug}[bot]",
        created_at=iso(),
    )
    ctx.state.issues.append(issue)
    return Reply(status=201, body=issue_json(ctx.api, ctx.state, issue))
