"""Repositories and their content: repo metadata, files/directories, blobs.

https://docs.github.com/rest/repos/contents#get-repository-content
"""

from __future__ import annotations

from tests.fakegithub import payloads
from tests.fakegithub.routing import Ctx, Reply, not_found, route

RAW_MEDIA_TYPES = ("application/vnd.github.raw", "application/vnd.github.v3.raw")


@route("GET", "/repos/{owner}/{repo}", auth="installation_or_user")
def get_repo(ctx: Ctx) -> Reply:
    return Reply(body=payloads.repo_json(ctx.api, ctx.state, ctx.repo(), schema="full-repository"))


@route("GET", "/repos/{owner}/{repo}/contents/{path}", greedy=("path",))
def get_content(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    ref = ctx.query.get("ref") or repo.default_branch
    path = ctx.params["path"].strip("/")
    data = ctx.state.read_file(repo.full_name, ref, path)
    if data is not None:
        if any(t in ctx.headers.get("accept", "") for t in RAW_MEDIA_TYPES):
            # The raw media type answers the bytes themselves.
            return Reply(raw=data, content_type="application/vnd.github.raw; charset=utf-8")
        return Reply(body=payloads.content_file_json(ctx.api, repo, path, data, ref))
    entries = _directory(ctx, ref, path)
    if entries is None:
        raise not_found()
    return Reply(body=payloads.content_dir_json(ctx.api, repo, entries, ref))


def _directory(ctx: Ctx, ref: str, path: str) -> list[tuple[str, bytes | None]] | None:
    """The direct children of ``path`` at ``ref``: files with bytes, dirs with None."""
    repo = ctx.repo()
    prefix = path + "/" if path else ""
    children: dict[str, bytes | None] = {}
    for key in reversed(ctx.state.tree_keys(repo, ref)):
        for file_path, data in repo.trees.get(key, {}).items():
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix) :]
            head, sep, _ = rest.partition("/")
            children[prefix + head] = None if sep else data
    if not children:
        return None
    return sorted(children.items())


@route("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}")
def get_blob(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    wanted = ctx.params["file_sha"]
    data = repo.blobs.get(wanted)
    if data is None:
        raise not_found()
    return Reply(body=payloads.blob_json(ctx.api, repo, wanted, data))


@route("GET", "/repos/{owner}/{repo}/compare/{basehead}", greedy=("basehead",))
def compare(ctx: Ctx) -> Reply:
    repo = ctx.repo()
    base, sep, head = ctx.params["basehead"].partition("...")
    if not sep:
        raise not_found()
    commits = ctx.state.compares.get((repo.full_name.lower(), base, head))
    files = ctx.state.compare_files.get((repo.full_name.lower(), base, head), [])
    if commits is None:
        head_sha = repo.branches.get(head, head)
        pull = next(
            (
                p
                for p in ctx.state.pulls.values()
                if p.repo.lower() == repo.full_name.lower() and p.head_sha == head_sha
            ),
            None,
        )
        if pull is None:
            raise not_found()
        commits = pull.commits
    if "page" in ctx.query or "per_page" in ctx.query:
        chunk, headers = ctx.page(commits)
    else:
        # Unpaginated, GitHub lists up to 250 commits of a comparison.
        chunk, headers = list(commits[:250]), {}
    base_sha = repo.branches.get(base, base)
    return Reply(
        body=payloads.comparison_json(
            ctx.api, ctx.state, repo, base, head, base_sha, chunk, len(commits), files=files
        ),
        headers=headers,
    )
