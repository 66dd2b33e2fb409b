"""Branch protection and rulesets, as a setup checker reads them.

- https://docs.github.com/rest/branches/branch-protection#get-branch-protection
- https://docs.github.com/rest/repos/rules
"""

from __future__ import annotations

import fnmatch

from tests.fakegithub import payloads
from tests.fakegithub.models import Repo, Ruleset
from tests.fakegithub.routing import ApiError, Ctx, Reply, not_found, route


@route("GET", "/repos/{owner}/{repo}/branches/{branch}/protection", greedy=("branch",))
def get_protection(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    branch = ctx.params["branch"]
    raw = repo.protection.get(branch)
    if raw is None:
        raise ApiError(404, "Branch not protected")
    return Reply(body=payloads.protection_json(ctx.api, repo, branch, raw))


def _applies(repo: Repo, rs: Ruleset, branch: str) -> bool:
    ref = f"refs/heads/{branch}"

    def hit(pattern: str) -> bool:
        if pattern == "~ALL":
            return True
        if pattern == "~DEFAULT_BRANCH":
            return branch == repo.default_branch
        return fnmatch.fnmatchcase(ref, pattern)

    return (
        rs.target == "branch"
        and rs.enforcement == "active"
        and any(hit(p) for p in rs.include)
        and not any(hit(p) for p in rs.exclude)
    )


@route("GET", "/repos/{owner}/{repo}/rules/branches/{branch}", greedy=("branch",))
def rules_for_branch(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    branch = ctx.params["branch"]
    rules = [
        payloads.rule_detailed_json(repo, rs, rule)
        for rs in repo.rulesets
        if _applies(repo, rs, branch)
        for rule in rs.rules
    ]
    chunk, headers = ctx.page(rules)
    return Reply(body=chunk, headers=headers)


@route("GET", "/repos/{owner}/{repo}/rulesets")
def list_rulesets(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    chunk, headers = ctx.page(repo.rulesets)
    return Reply(
        body=[payloads.ruleset_json(ctx.api, repo, rs, full=False) for rs in chunk], headers=headers
    )


@route("GET", "/repos/{owner}/{repo}/rulesets/{ruleset_id}")
def get_ruleset(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    wanted = int(ctx.params["ruleset_id"])
    for rs in repo.rulesets:
        if rs.id == wanted:
            return Reply(body=payloads.ruleset_json(ctx.api, repo, rs, full=True))
    raise not_found()
