"""``POST /graphql``: GitHub's GraphQL API, validated against GitHub's own schema.

Every request is parsed and validated with graphql-core against the public
schema (``tests/fixtures/github/graphql-schema.graphql``, from the npm package
``@octokit/graphql-schema``): a query or mutation GitHub would reject is a
violation, as an invalid REST request is. What the fake implements:

- ``repository(owner, name) { viewerPermission pullRequest(number) { ... } }``;
- ``revertPullRequest(input: RevertPullRequestInput!)``
  (https://docs.github.com/graphql/reference/mutations#revertpullrequest): opens the
  revert pull request of a merged pull request, as the token's user, who needs
  write access; a draft when ``draft`` is true.

Only personal (user) tokens are accepted, as GitHub's revert needs a user.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_schema, graphql_sync, parse, validate

from tests.fakegithub.gitdata import fake_sha
from tests.fakegithub.models import Pull
from tests.fakegithub.state import GitHubState, iso

SCHEMA_FILE = Path(__file__).parents[1] / "fixtures" / "github" / "graphql-schema.graphql"
_WRITE = ("WRITE", "MAINTAIN", "ADMIN")
_ROLE = {"admin": "ADMIN", "maintain": "MAINTAIN", "write": "WRITE", "triage": "TRIAGE"}


@cache
def schema() -> GraphQLSchema:
    # GitHub's published SDL defines two fields twice; GitHub itself serves it.
    return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"), assume_valid_sdl=True)


def node_id(pull: Pull) -> str:
    """The pull request's global id, as its REST ``node_id`` spells it."""
    return base64.b64encode(f"PullRequest:{pull.id}".encode()).decode().rstrip("=")


def invalid(query: object, variables: object) -> str | None:
    """Why GitHub would reject the request before running it, or None."""
    if not isinstance(query, str) or not query.strip():
        return "a GraphQL request needs a 'query' string"
    if variables is not None and not isinstance(variables, dict):
        return "'variables' must be an object"
    try:
        document = parse(query)
    except GraphQLError as error:
        return f"GraphQL syntax: {error.message}"
    errors = validate(schema(), document)
    return "; ".join(e.message for e in errors) or None


class _Api:
    """Resolvers over the fake's state, for one request by ``viewer``."""

    def __init__(self, state: GitHubState, api: str, viewer: str) -> None:
        self.state = state
        self.api = api
        self.viewer = viewer

    def permission(self, repo: str) -> str:
        return _ROLE.get(self.state.permission_of(repo, self.viewer), "READ")

    def pull_node(self, pull: Pull) -> dict[str, Any]:
        return {
            "id": node_id(pull),
            "number": pull.number,
            "title": pull.title,
            "url": f"https://github.com/{pull.repo}/pull/{pull.number}",
            "merged": pull.merged,
            "isDraft": pull.draft,
            "state": "MERGED" if pull.merged else pull.state.upper(),
            "baseRefName": pull.base_ref,
            "headRefName": pull.head_ref,
            "mergeCommit": {"oid": pull.merge_commit_sha} if pull.merge_commit_sha else None,
            "author": {"login": pull.author},
        }

    def repository(self, _info: Any, owner: str, name: str, **_: Any) -> dict[str, Any] | None:
        full = f"{owner}/{name}"
        if full.lower() not in self.state.repos:
            return None

        def pull_request(_info: Any, number: int) -> dict[str, Any] | None:
            found = self.state.pulls.get((full.lower(), number))
            return self.pull_node(found) if found else None

        return {
            "nameWithOwner": self.state.repos[full.lower()].full_name,
            "viewerPermission": self.permission(full),
            "pullRequest": pull_request,
        }

    def revert(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        wanted = input["pullRequestId"]
        pull = next((p for p in self.state.pulls.values() if node_id(p) == wanted), None)
        if pull is None:
            raise GraphQLError(f"Could not resolve to a node with the global id of '{wanted}'")
        if self.permission(pull.repo) not in _WRITE:
            raise GraphQLError(
                f"{self.viewer} does not have the correct permissions to execute "
                "`RevertPullRequest`"
            )
        if not pull.merged:
            raise GraphQLError("Pull request must be merged to be reverted")
        used = [n for (r, n) in self.state.pulls if r == pull.repo.lower()]
        used += [i.number for i in self.state.issues if i.repo.lower() == pull.repo.lower()]
        number = max(used, default=0) + 1
        head = fake_sha(pull.repo, number, "revert")
        self.state.user(self.viewer)
        revert = Pull(
            repo=pull.repo,
            number=number,
            id=self.state._pull_ids(),
            author=self.viewer,
            author_type="User",
            head_sha=head,
            head_ref=f"revert-{pull.number}-{pull.head_ref}",
            head_repo=pull.repo,
            base_ref=pull.base_ref,
            base_sha=pull.merge_commit_sha or pull.base_sha,
            files=list(pull.files),
            draft=bool(input.get("draft", False)),
            title=str(input.get("title") or f'Revert "{pull.title}"'),
            body=str(input.get("body") or f"Reverts {pull.repo}#{pull.number}"),
            created_at=iso(),
            updated_at=iso(),
        )
        self.state.pulls[(pull.repo.lower(), number)] = revert
        self.state.repo(pull.repo).branches[revert.head_ref] = head
        return {
            "clientMutationId": input.get("clientMutationId"),
            "pullRequest": self.pull_node(pull),
            "revertPullRequest": self.pull_node(revert),
        }


def execute(
    state: GitHubState, api: str, *, viewer: str, query: str, variables: dict[str, Any] | None
) -> dict[str, Any]:
    """Run a valid request; errors are reported in the body, as GitHub does (HTTP 200)."""
    resolvers = _Api(state, api, viewer)
    root = {
        "viewer": {"login": viewer},
        "repository": resolvers.repository,
        "revertPullRequest": resolvers.revert,
    }
    result = graphql_sync(schema(), query, root_value=root, variable_values=variables)
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [
            {
                "type": "FORBIDDEN" if "permission" in e.message else "UNPROCESSABLE",
                "message": e.message,
                "path": e.path,
            }
            for e in result.errors
        ]
    return out
