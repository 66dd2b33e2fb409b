"""Pull requests: the PR, its files, commits, reviews and review requests.

https://docs.github.com/rest/pulls
"""

from __future__ import annotations

from tests.fakegithub import payloads
from tests.fakegithub.models import Pull
from tests.fakegithub.routing import Ctx, Reply, not_found, route, unprocessable

#: "Responses include a maximum of 3000 files" (list pull request files).
MAX_FILES = 3000
#: "...with a maximum of 250 commits" (list commits on a pull request).
MAX_COMMITS = 250


def _pull(ctx: Ctx) -> Pull:
    repo = ctx.repo()
    pull = ctx.state.pulls.get((repo.full_name.lower(), int(ctx.params["pull_number"])))
    if pull is None:
        raise not_found()
    return pull


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
def get_pull(ctx: Ctx) -> Reply:
    return Reply(body=payloads.pull_json(ctx.api, ctx.state, _pull(ctx)))


@route("GET", "/repos/{owner}/{repo}/pulls")
def list_pulls(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    state = ctx.query.get("state", "open")
    head = ctx.query.get("head")
    base = ctx.query.get("base")
    found = []
    for pull in ctx.state.pulls.values():
        if pull.repo.lower() != repo.full_name.lower():
            continue
        if state != "all" and pull.state != state:
            continue
        if head:
            # "user:ref-name" or "organization:ref-name"
            owner, _, ref = head.partition(":")
            if pull.head_repo.split("/")[0].lower() != owner.lower() or (
                ref and pull.head_ref != ref
            ):
                continue
        if base and pull.base_ref != base:
            continue
        found.append(pull)
    found.sort(key=lambda p: p.number, reverse=ctx.query.get("direction", "desc") == "desc")
    chunk, headers = ctx.page(found)
    return Reply(
        body=[payloads.pull_json(ctx.api, ctx.state, p, simple=True) for p in chunk],
        headers=headers,
    )


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/files")
def list_files(ctx: Ctx) -> Reply:
    pull = _pull(ctx)
    indexed = list(enumerate(pull.files))
    chunk, headers = ctx.page(indexed, cap=MAX_FILES)
    return Reply(
        body=[payloads.file_json(ctx.api, ctx.state, pull, f, i) for i, f in chunk], headers=headers
    )


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/commits")
def list_commits(ctx: Ctx) -> Reply:
    pull = _pull(ctx)
    chunk, headers = ctx.page(pull.commits, cap=MAX_COMMITS)
    return Reply(
        body=[payloads.commit_json(ctx.api, ctx.state, pull.head_repo, c) for c in chunk],
        headers=headers,
    )


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews")
def list_reviews(ctx: Ctx) -> Reply:
    pull = _pull(ctx)
    reviews = [
        r
        for r in ctx.state.reviews
        if r.repo.lower() == pull.repo.lower() and r.number == pull.number
    ]
    chunk, headers = ctx.page(reviews)
    return Reply(body=[payloads.review_json(ctx.api, ctx.state, r) for r in chunk], headers=headers)


def _requested(ctx: Ctx, pull: Pull) -> dict[str, object]:
    owner = pull.repo.split("/")[0]
    return {
        "users": [payloads.user_json(ctx.api, ctx.state.user(u)) for u in pull.requested_users],
        "teams": [
            payloads.team_json(ctx.api, payloads.team_or_stub(ctx.state, owner, t))
            for t in pull.requested_teams
        ],
    }


@route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")
def get_requested(ctx: Ctx) -> Reply:
    return Reply(body=_requested(ctx, _pull(ctx)))


@route("POST", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")
def request_reviewers(ctx: Ctx) -> Reply:
    pull = _pull(ctx)
    body = ctx.body()
    users: list[str] = list(body.get("reviewers") or [])
    teams: list[str] = list(body.get("team_reviewers") or [])
    owner = pull.repo.split("/")[0]
    if any(u.lower() == pull.author.lower() for u in users):
        raise unprocessable("Review cannot be requested from pull request author.")
    blocked = ctx.state.teams_without_access
    if any(t in blocked or f"{owner}/{t}" in blocked for t in teams):
        raise unprocessable(
            "Reviews may only be requested from collaborators. One or more of the teams you"
            f" specified is not a collaborator of the {pull.repo} repository."
        )
    for u in users:
        if u not in pull.requested_users:
            pull.requested_users.append(u)
    for t in teams:
        if t not in pull.requested_teams:
            pull.requested_teams.append(t)
    return Reply(201, payloads.pull_json(ctx.api, ctx.state, pull, simple=True))


@route("DELETE", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers")
def remove_requested(ctx: Ctx) -> Reply:
    pull = _pull(ctx)
    body = ctx.body()
    pull.requested_users = [
        u for u in pull.requested_users if u not in (body.get("reviewers") or [])
    ]
    pull.requested_teams = [
        t for t in pull.requested_teams if t not in (body.get("team_reviewers") or [])
    ]
    return Reply(body=payloads.pull_json(ctx.api, ctx.state, pull, simple=True))


@route("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls")
def pulls_for_commit(ctx: Ctx) -> Reply:
    # PRs whose commits contain the sha, whether this repo is their base or
    # (for a fork) their head: how an App finds the PR of a fork's check suite.
    repo = ctx.repo()
    sha = ctx.params["commit_sha"]
    found = [
        p
        for p in ctx.state.pulls.values()
        if repo.full_name.lower() in (p.repo.lower(), p.head_repo.lower())
        and (p.head_sha == sha or any(c.sha == sha for c in p.commits))
        and (ctx.state.associate_forks or p.head_repo.lower() == p.repo.lower())
    ]
    chunk, headers = ctx.page(found)
    return Reply(
        body=[payloads.pull_json(ctx.api, ctx.state, p, simple=True) for p in chunk],
        headers=headers,
    )
