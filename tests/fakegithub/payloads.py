"""The JSON the fake answers with: a description skeleton, then our fields on top.

Starting from :func:`spec.skeleton` means every field GitHub marks required is
present (githubkit's models would refuse the response otherwise); the
builders only fill in what the fake actually knows. API URLs point at the
fake's own base so a client following them never leaves the loopback.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from tests.fakegithub.gitdata import blob_sha, fake_sha
from tests.fakegithub.models import (
    App,
    CheckRun,
    Delivery,
    Installation,
    PRCommit,
    PRFile,
    Pull,
    Repo,
    Review,
    Ruleset,
    Team,
    User,
)
from tests.fakegithub.spec import skeleton
from tests.fakegithub.state import GitHubState, iso

HTML = "https://github.com"


def _node_id(kind: str, ident: object) -> str:
    return base64.b64encode(f"{kind}:{ident}".encode()).decode().rstrip("=")


def user_json(api: str, user: User) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("simple-user")
    url = f"{api}/users/{user.login}"
    out.update(
        login=user.login,
        id=user.id,
        node_id=_node_id("User", user.id),
        type=user.type,
        site_admin=False,
        gravatar_id="",
        avatar_url=f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
        url=url,
        html_url=f"{HTML}/{user.login}",
        followers_url=f"{url}/followers",
        following_url=f"{url}/following{{/other_user}}",
        gists_url=f"{url}/gists{{/gist_id}}",
        starred_url=f"{url}/starred{{/owner}}{{/repo}}",
        subscriptions_url=f"{url}/subscriptions",
        organizations_url=f"{url}/orgs",
        repos_url=f"{url}/repos",
        events_url=f"{url}/events{{/privacy}}",
        received_events_url=f"{url}/received_events",
    )
    return out


def repo_json(
    api: str, state: GitHubState, repo: Repo, *, schema: str = "repository"
) -> dict[str, Any]:
    """``schema``: "repository" inside other objects, "full-repository" for GET /repos/{o}/{r}."""
    out: dict[str, Any] = skeleton(schema)
    url = f"{api}/repos/{repo.full_name}"
    for key, value in list(out.items()):
        # Every *_url field: point it at the fake, keep GitHub's suffix shape.
        if key.endswith("_url") and isinstance(value, str | type(None)):
            out[key] = f"{url}/{key.removesuffix('_url').replace('_', '/')}"
    out.update(
        id=repo.id,
        node_id=_node_id("Repository", repo.id),
        name=repo.name,
        full_name=repo.full_name,
        owner=user_json(api, state.user(repo.owner, "Organization")),
        private=repo.private,
        visibility="private" if repo.private else "public",
        fork=repo.fork,
        default_branch=repo.default_branch,
        url=url,
        html_url=f"{HTML}/{repo.full_name}",
        clone_url=f"{HTML}/{repo.full_name}.git",
        git_url=f"git://github.com/{repo.full_name}.git",
        ssh_url=f"git@github.com:{repo.full_name}.git",
        svn_url=f"{HTML}/{repo.full_name}",
        mirror_url=None,
        homepage=None,
        description=None,
        language=None,
        license=None,
        pushed_at=iso(),
        created_at="2024-01-01T00:00:00Z",
        updated_at=iso(),
    )
    return out


def _ref_json(api: str, state: GitHubState, repo: Repo, ref: str, sha: str) -> dict[str, Any]:
    return {
        "label": f"{repo.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user_json(api, state.user(repo.owner, "Organization")),
        "repo": repo_json(api, state, repo),
    }


def pull_json(api: str, state: GitHubState, pull: Pull, *, simple: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("pull-request-simple" if simple else "pull-request")
    base_repo = state.repo(pull.repo)
    url = f"{api}/repos/{pull.repo}/pulls/{pull.number}"
    html = f"{HTML}/{pull.repo}/pull/{pull.number}"
    issue = f"{api}/repos/{pull.repo}/issues/{pull.number}"
    links = {
        "self": url,
        "html": html,
        "issue": issue,
        "comments": f"{issue}/comments",
        "review_comments": f"{url}/comments",
        "review_comment": f"{api}/repos/{pull.repo}/pulls/comments{{/number}}",
        "commits": f"{url}/commits",
        "statuses": f"{api}/repos/{pull.repo}/statuses/{pull.head_sha}",
    }
    out.update(
        id=pull.id,
        node_id=_node_id("PullRequest", pull.id),
        number=pull.number,
        url=url,
        html_url=html,
        diff_url=f"{html}.diff",
        patch_url=f"{html}.patch",
        issue_url=issue,
        commits_url=links["commits"],
        review_comments_url=links["review_comments"],
        review_comment_url=links["review_comment"],
        comments_url=links["comments"],
        statuses_url=links["statuses"],
        _links={k: {"href": v} for k, v in links.items()},
        state=pull.state,
        locked=False,
        title=pull.title,
        body=pull.body,
        draft=pull.draft,
        user=user_json(api, state.user(pull.author, pull.author_type)),
        author_association=pull.author_association,
        labels=[_label_json(api, pull.repo, name) for name in pull.labels],
        head=_ref_json(api, state, state.repo(pull.head_repo), pull.head_ref, pull.head_sha),
        base=_ref_json(api, state, base_repo, pull.base_ref, pull.base_sha),
        requested_reviewers=[user_json(api, state.user(u)) for u in pull.requested_users],
        requested_teams=[
            team_json(api, team_or_stub(state, base_repo.owner, slug))
            for slug in pull.requested_teams
        ],
        assignee=user_json(api, state.user(pull.assignees[0])) if pull.assignees else None,
        assignees=[user_json(api, state.user(login)) for login in pull.assignees],
        milestone=None,
        auto_merge=None,
        active_lock_reason=None,
        created_at=pull.created_at,
        updated_at=pull.updated_at,
        closed_at=None if pull.state == "open" else pull.updated_at,
        merged_at=pull.updated_at if pull.merged else None,
        merge_commit_sha=pull.merge_commit_sha,
    )
    if not simple:
        out.update(
            merged=pull.merged,
            mergeable=None,
            mergeable_state="unknown",
            rebaseable=None,
            merged_by=user_json(api, state.user(pull.merged_by)) if pull.merged_by else None,
            comments=0,
            review_comments=0,
            maintainer_can_modify=False,
            commits=len(pull.commits),
            additions=sum(f.additions for f in pull.files),
            deletions=sum(f.deletions for f in pull.files),
            # The real count, even past the 3000 the files endpoint lists.
            changed_files=len(pull.files),
        )
    return out


def _label_json(api: str, repo: str, name: str) -> dict[str, Any]:
    ident = int(fake_sha("label", repo, name)[:8], 16)
    return {
        "id": ident,
        "node_id": _node_id("Label", ident),
        "url": f"{api}/repos/{repo}/labels/{name}",
        "name": name,
        # The description types it a plain string in pull-request-simple.
        "description": "",
        "color": "ededed",
        "default": False,
    }


def team_or_stub(state: GitHubState, org: str, slug: str) -> Team:
    team = state.teams.get((org.lower(), slug.lower()))
    # A requested team the test never defined still needs a shape to answer with.
    return team or Team(org, slug, int(fake_sha("team", org, slug)[:6], 16), slug)


def team_json(api: str, team: Team) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("team")
    url = f"{api}/orgs/{team.org}/teams/{team.slug}"
    out.update(
        id=team.id,
        node_id=_node_id("Team", team.id),
        url=url,
        html_url=f"{HTML}/orgs/{team.org}/teams/{team.slug}",
        members_url=f"{url}/members{{/member}}",
        repositories_url=f"{url}/repos",
        name=team.name,
        slug=team.slug,
        description=None,
        permission="pull",
        privacy="closed",
        notification_setting="notifications_enabled",
        parent=None,
        type="organization",
    )
    return out


def file_json(api: str, state: GitHubState, pull: Pull, f: PRFile, index: int) -> dict[str, Any]:
    sha = f.sha
    if sha is None and f.status != "removed":
        # The real blob when the test put the file at the head; else a stand-in.
        data = state.read_file(pull.repo, pull.head_sha, f.filename)
        sha = blob_sha(data if data is not None else f"{pull.head_sha}:{index}".encode())
    return _diff_entry(api, pull.head_repo, pull.head_sha, f, sha)


def _diff_entry(api: str, repo: str, head: str, f: PRFile, sha: str | None) -> dict[str, Any]:
    """A changed file as pull-request file lists and comparisons show it."""
    out: dict[str, Any] = skeleton("diff-entry")
    out.update(
        sha=sha,
        filename=f.filename,
        status=f.status,
        additions=f.additions,
        deletions=f.deletions,
        changes=f.additions + f.deletions,
        blob_url=f"{HTML}/{repo}/blob/{head}/{f.filename}",
        raw_url=f"{HTML}/{repo}/raw/{head}/{f.filename}",
        contents_url=f"{api}/repos/{repo}/contents/{f.filename}?ref={head}",
    )
    if f.patch is not None:
        out["patch"] = f.patch
    if f.previous_filename is not None:
        out["previous_filename"] = f.previous_filename
    return out


def commit_json(api: str, state: GitHubState, repo: str, c: PRCommit) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("commit")
    name = c.author_name or c.author_login or "Someone"
    email = c.author_email or (
        f"{c.author_login}@users.noreply.github.com" if c.author_login else "someone@example.com"
    )
    person = {"name": name, "email": email, "date": iso()}
    committer_login = c.committer_login
    url = f"{api}/repos/{repo}/commits/{c.sha}"
    out.update(
        sha=c.sha,
        node_id=_node_id("Commit", c.sha),
        url=url,
        html_url=f"{HTML}/{repo}/commit/{c.sha}",
        comments_url=f"{url}/comments",
        commit={
            "url": f"{api}/repos/{repo}/git/commits/{c.sha}",
            "author": person,
            "committer": (
                {"name": "GitHub", "email": "noreply@github.com", "date": person["date"]}
                if committer_login is None
                else person
            ),
            "message": c.message,
            "comment_count": 0,
            "tree": {"sha": fake_sha("tree", c.sha), "url": f"{api}/repos/{repo}/git/trees/x"},
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        author=user_json(api, state.user(c.author_login, c.author_type))
        if c.author_login
        else None,
        committer=user_json(api, state.user(committer_login)) if committer_login else None,
        parents=[
            {
                "sha": p,
                "url": f"{api}/repos/{repo}/commits/{p}",
                "html_url": f"{HTML}/{repo}/commit/{p}",
            }
            for p in c.parents
        ],
    )
    return out


def comparison_json(
    api: str,
    state: GitHubState,
    repo: Repo,
    base: str,
    head: str,
    base_sha: str,
    commits: Sequence[PRCommit],
    total: int,
    *,
    files: Sequence[PRFile] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("commit-comparison")
    base_commit = commit_json(api, state, repo.full_name, PRCommit(base_sha, "base"))
    html = f"{HTML}/{repo.full_name}/compare/{base}...{head}"
    out.update(
        url=f"{api}/repos/{repo.full_name}/compare/{base}...{head}",
        html_url=html,
        permalink_url=html,
        diff_url=f"{html}.diff",
        patch_url=f"{html}.patch",
        base_commit=base_commit,
        merge_base_commit=base_commit,
        status="ahead" if total else "identical",
        ahead_by=total,
        behind_by=0,
        total_commits=total,
        commits=[commit_json(api, state, repo.full_name, c) for c in commits],
        files=[_compare_file_json(api, repo.full_name, head, f) for f in files[:300]],
    )
    return out


def _compare_file_json(api: str, repo: str, head: str, f: PRFile) -> dict[str, Any]:
    """A diff entry of a comparison (GitHub lists at most 300 files there)."""
    return _diff_entry(api, repo, head, f, f.sha or blob_sha(f"{head}:{f.filename}".encode()))


def review_json(api: str, state: GitHubState, review: Review) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("pull-request-review")
    pr_url = f"{api}/repos/{review.repo}/pulls/{review.number}"
    html = f"{HTML}/{review.repo}/pull/{review.number}#pullrequestreview-{review.id}"
    out.update(
        id=review.id,
        node_id=_node_id("PullRequestReview", review.id),
        user=user_json(api, state.user(review.user, review.user_type)),
        body=review.body,
        state=review.state,
        commit_id=review.commit_id,
        html_url=html,
        pull_request_url=pr_url,
        _links={"html": {"href": html}, "pull_request": {"href": pr_url}},
        author_association=review.author_association,
    )
    if review.submitted_at is not None:
        out["submitted_at"] = review.submitted_at
    return out


def app_json(api: str, state: GitHubState, app: App) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("integration")
    out.update(
        id=app.id,
        slug=app.slug,
        client_id=app.client_id,
        node_id=_node_id("Integration", app.id),
        owner=user_json(api, state.user(app.owner, "Organization")),
        name=app.name,
        description="Gates pull requests opened by AI coding agents.",
        external_url="https://example.com/merge-gate",
        html_url=f"{HTML}/apps/{app.slug}",
        permissions=dict(app.permissions),
        events=list(app.events),
    )
    return out


def installation_json(api: str, state: GitHubState, inst: Installation) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("installation")
    app = state.apps[inst.app_id]
    account = state.user(inst.account, inst.account_type)
    out.update(
        id=inst.id,
        app_id=app.id,
        app_slug=app.slug,
        client_id=app.client_id,
        target_id=account.id,
        target_type=inst.account_type,
        account=user_json(api, account),
        repository_selection="all" if inst.repositories is None else "selected",
        access_tokens_url=f"{api}/app/installations/{inst.id}/access_tokens",
        repositories_url=f"{api}/installation/repositories",
        html_url=f"{HTML}/organizations/{inst.account}/settings/installations/{inst.id}",
        permissions=dict(inst.permissions),
        events=list(inst.events),
    )
    return out


def check_run_json(api: str, state: GitHubState, run: CheckRun) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("check-run")
    url = f"{api}/repos/{run.repo}/check-runs/{run.id}"
    app = state.apps.get(run.app_id)
    out.update(
        id=run.id,
        node_id=_node_id("CheckRun", run.id),
        head_sha=run.head_sha,
        name=run.name,
        url=url,
        html_url=f"{HTML}/{run.repo}/runs/{run.id}",
        details_url=run.details_url,
        status=run.status,
        conclusion=run.conclusion,
        started_at=run.started_at,
        completed_at=run.completed_at,
        external_id=run.external_id,
        check_suite={"id": int(fake_sha("suite", run.repo, run.head_sha)[:8], 16)},
        output={
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations_count": len(run.annotations),
            "annotations_url": f"{url}/annotations",
        },
        app=app_json(api, state, app) if app else None,
        pull_requests=[
            _pull_ref(api, state, p)
            for p in state.pulls.values()
            # GitHub leaves pull requests from forks out of this list.
            if p.repo.lower() == run.repo.lower()
            and not p.is_fork
            and p.head_sha == run.head_sha
            and p.state == "open"
        ],
    )
    return out


def _pull_ref(api: str, state: GitHubState, pull: Pull) -> dict[str, Any]:
    def side(full_name: str, ref: str, sha: str) -> dict[str, Any]:
        repo = state.repo(full_name)
        return {
            "ref": ref,
            "sha": sha,
            "repo": {"id": repo.id, "url": f"{api}/repos/{full_name}", "name": repo.name},
        }

    return {
        "id": pull.id,
        "number": pull.number,
        "url": f"{api}/repos/{pull.repo}/pulls/{pull.number}",
        "head": side(pull.head_repo, pull.head_ref, pull.head_sha),
        "base": side(pull.repo, pull.base_ref, pull.base_sha),
    }


def annotation_json(run: CheckRun, ann: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("check-annotation")
    out.update(
        path=ann["path"],
        blob_href=f"{HTML}/{run.repo}/blob/{run.head_sha}/{ann['path']}",
        start_line=ann["start_line"],
        end_line=ann["end_line"],
        start_column=ann.get("start_column"),
        end_column=ann.get("end_column"),
        annotation_level=ann["annotation_level"],
        title=ann.get("title"),
        message=ann["message"],
        raw_details=ann.get("raw_details"),
    )
    return out


def content_file_json(api: str, repo: Repo, path: str, data: bytes, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("content-file")
    sha = blob_sha(data)
    self_url = f"{api}/repos/{repo.full_name}/contents/{path}?ref={ref}"
    git_url = f"{api}/repos/{repo.full_name}/git/blobs/{sha}"
    html = f"{HTML}/{repo.full_name}/blob/{ref}/{path}"
    too_big = len(data) > 1_000_000
    out.update(
        type="file",
        name=path.rsplit("/", 1)[-1],
        path=path,
        sha=sha,
        size=len(data),
        url=self_url,
        git_url=git_url,
        html_url=html,
        download_url=f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}",
        _links={"self": self_url, "git": git_url, "html": html},
        # Past 1 MB GitHub leaves ``content`` empty and says encoding "none".
        encoding="none" if too_big else "base64",
        content="" if too_big else _b64_lines(data),
    )
    return out


def _b64_lines(data: bytes) -> str:
    # GitHub wraps base64 at 60 columns with "\n", as git's tooling does.
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def content_dir_json(
    api: str, repo: Repo, entries: Sequence[tuple[str, bytes | None]], ref: str
) -> list[Any]:
    """``entries``: (path, bytes) for files and (path, None) for sub-directories."""
    out = []
    for path, data in entries:
        kind = "dir" if data is None else "file"
        sha = fake_sha("tree", path) if data is None else blob_sha(data)
        self_url = f"{api}/repos/{repo.full_name}/contents/{path}?ref={ref}"
        git_url = f"{api}/repos/{repo.full_name}/git/{'trees' if data is None else 'blobs'}/{sha}"
        html = f"{HTML}/{repo.full_name}/{'tree' if data is None else 'blob'}/{ref}/{path}"
        item: dict[str, Any] = {
            "type": kind,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": 0 if data is None else len(data),
            "url": self_url,
            "git_url": git_url,
            "html_url": html,
            "download_url": None
            if data is None
            else f"https://raw.githubusercontent.com/{repo.full_name}/{ref}/{path}",
            "_links": {"self": self_url, "git": git_url, "html": html},
        }
        out.append(item)
    return out


def blob_json(api: str, repo: Repo, sha: str, data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("blob")
    out.update(
        sha=sha,
        node_id=_node_id("Blob", sha),
        url=f"{api}/repos/{repo.full_name}/git/blobs/{sha}",
        size=len(data),
        content=_b64_lines(data),
        encoding="base64",
    )
    return out


def delivery_json(d: Delivery, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("hook-delivery" if full else "hook-delivery-item")
    out.update(
        id=d.id,
        guid=d.guid,
        delivered_at=d.delivered_at,
        redelivery=d.redelivery,
        duration=d.duration,
        status=d.status,
        status_code=d.status_code,
        event=d.event,
        action=d.action,
        installation_id=d.installation_id,
        repository_id=d.repository_id,
        throttled_at=None,
    )
    if full:
        out["url"] = "https://merge-gate.example/webhooks/github"
        out["request"] = {
            "headers": d.request_headers
            or {"X-GitHub-Event": d.event, "X-GitHub-Delivery": d.guid},
            "payload": d.payload,
        }
        out["response"] = {"headers": d.response_headers, "payload": d.response_body}
    return out


def branch_protection(
    *,
    required_checks: Sequence[str],
    strict: bool,
    required_approvals: int | None,
    require_code_owner_reviews: bool,
    dismiss_stale_reviews: bool,
    require_last_push_approval: bool,
    enforce_admins: bool,
) -> dict[str, Any]:
    """Classic protection in GitHub's answer shape; URLs are filled when served."""
    out: dict[str, Any] = {
        "enabled": True,
        "enforce_admins": {"url": "", "enabled": enforce_admins},
        "required_linear_history": {"enabled": False},
        "allow_force_pushes": {"enabled": False},
        "allow_deletions": {"enabled": False},
        "block_creations": {"enabled": False},
        "required_conversation_resolution": {"enabled": False},
        "required_signatures": {"url": "", "enabled": False},
        "lock_branch": {"enabled": False},
        "allow_fork_syncing": {"enabled": False},
    }
    if required_checks:
        out["required_status_checks"] = {
            "url": "",
            "strict": strict,
            "contexts": list(required_checks),
            "contexts_url": "",
            "checks": [{"context": name, "app_id": None} for name in required_checks],
        }
    if required_approvals is not None:
        out["required_pull_request_reviews"] = {
            "url": "",
            "dismiss_stale_reviews": dismiss_stale_reviews,
            "require_code_owner_reviews": require_code_owner_reviews,
            "required_approving_review_count": required_approvals,
            "require_last_push_approval": require_last_push_approval,
        }
    return out


def protection_json(api: str, repo: Repo, branch: str, raw: dict[str, Any]) -> dict[str, Any]:
    url = f"{api}/repos/{repo.full_name}/branches/{branch}/protection"
    out = {"url": url, **raw}
    for key, sub in (
        ("enforce_admins", "enforce_admins"),
        ("required_signatures", "required_signatures"),
        ("required_status_checks", "required_status_checks"),
        ("required_pull_request_reviews", "required_pull_request_reviews"),
    ):
        if isinstance(out.get(key), dict) and not out[key].get("url"):
            out[key] = {**out[key], "url": f"{url}/{sub}"}
    checks = out.get("required_status_checks")
    if isinstance(checks, dict) and not checks.get("contexts_url"):
        checks["contexts_url"] = f"{url}/required_status_checks/contexts"
    return out


def ruleset_json(api: str, repo: Repo, rs: Ruleset, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = skeleton("repository-ruleset")
    out.update(
        id=rs.id,
        name=rs.name,
        target=rs.target,
        source_type="Repository",
        source=repo.full_name,
        enforcement=rs.enforcement,
        node_id=_node_id("RepositoryRuleset", rs.id),
        _links={
            "self": {"href": f"{api}/repos/{repo.full_name}/rulesets/{rs.id}"},
            "html": {"href": f"{HTML}/{repo.full_name}/rules/{rs.id}"},
        },
        created_at="2024-01-01T00:00:00Z",
        updated_at="2024-01-01T00:00:00Z",
    )
    if full:
        out.update(
            bypass_actors=list(rs.bypass_actors),
            current_user_can_bypass="never",
            conditions={"ref_name": {"include": list(rs.include), "exclude": list(rs.exclude)}},
            rules=[dict(rule) for rule in rs.rules],
        )
    return out


def rule_detailed_json(repo: Repo, rs: Ruleset, rule: dict[str, Any]) -> dict[str, Any]:
    return {
        **rule,
        "ruleset_source_type": "Repository",
        "ruleset_source": repo.full_name,
        "ruleset_id": rs.id,
    }
