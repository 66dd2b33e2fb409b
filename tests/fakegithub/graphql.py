"""``POST /graphql``: GitHub's GraphQL API, validated against GitHub's own schema.

Every request is parsed and validated with graphql-core against the public
schema (``tests/fixtures/github/graphql-schema.graphql``, from the npm package
``@octokit/graphql-schema``): a query or mutation GitHub would reject is a
violation, as an invalid REST request is. What the fake implements:

- ``repository(owner, name) { viewerPermission pullRequest(number) { ... } }``, a
  pull request with its labels, assignees, review requests, reviews and commits
  (the facts ``endpoints/pulls.py`` serves by REST, in GraphQL's spelling: an App's
  login without ``[bot]``, a commit's ``GitActor.user`` null for an App);
- ``repository { object(oid) { ... on Commit { associatedPullRequests } } }``: the
  pull requests ``GET /commits/{sha}/pulls`` names (same rule, ``associate_forks``);
- ``rateLimit``: GraphQL's own budget, in points, computed as GitHub documents
  (https://docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api);
- ``revertPullRequest(input: RevertPullRequestInput!)``
  (https://docs.github.com/graphql/reference/mutations#revertpullrequest): opens the
  revert pull request of a merged pull request, as the token's user, who needs
  write access; a draft when ``draft`` is true.

Personal (user) tokens and installation tokens are accepted; an installation
reaches the repositories it is installed on, and cannot revert (GitHub's revert
needs a user).
"""

from __future__ import annotations

import base64
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    build_schema,
    parse,
    validate,
)
from graphql import execute as run_document

from tests.fakegithub import payloads
from tests.fakegithub.gitdata import fake_sha
from tests.fakegithub.models import PRCommit, Pull
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
    return _problems(query)


@lru_cache(maxsize=128)
def _document(query: str) -> DocumentNode:
    """A query parsed once (documents are immutable; the service sends a few shapes)."""
    return parse(query)


@lru_cache(maxsize=128)
def _problems(query: str) -> str | None:
    try:
        document = _document(query)
    except GraphQLError as error:
        return f"GraphQL syntax: {error.message}"
    errors = validate(schema(), document)
    return "; ".join(e.message for e in errors) or None


def cost(query: str, variables: dict[str, Any] | None) -> int:
    """The points a valid query costs, by GitHub's rule: every connection (a field
    with ``first``/``last``) is one request per node of the connections around it;
    the sum over 100, rounded, at least 1. A mutation costs 1 here."""
    document = _document(query)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    values = variables or {}

    def size(field: FieldNode) -> int | None:
        for arg in field.arguments:
            if arg.name.value not in ("first", "last"):
                continue
            if isinstance(arg.value, IntValueNode):
                return int(arg.value.value)
            if isinstance(arg.value, VariableNode):
                return int(values.get(arg.value.name.value) or 0)
        return None

    def walk(selections: SelectionSetNode | None, around: int) -> int:
        total = 0
        for node in selections.selections if selections else ():
            if isinstance(node, FieldNode):
                n = size(node)
                if n is None:
                    total += walk(node.selection_set, around)
                else:
                    total += around + walk(node.selection_set, around * n)
            elif isinstance(node, InlineFragmentNode):
                total += walk(node.selection_set, around)
            elif isinstance(node, FragmentSpreadNode):
                total += walk(fragments[node.name.value].selection_set, around)
        return total

    requests = sum(
        walk(d.selection_set, 1)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode) and d.operation.value == "query"
    )
    return max(1, round(requests / 100))


def _page(
    items: list[Any], first: int | None = None, last: int | None = None, **_: Any
) -> dict[str, Any]:
    """A connection of ``items``: ``nodes``, ``totalCount`` (cursors are not served)."""
    chosen = items[:first] if first is not None else items[-last:] if last else items
    return {"totalCount": len(items), "nodes": chosen}


def _connection(items: list[Any]) -> Any:
    return lambda _info, **args: _page(items, **args)


def _graph_login(login: str, kind: str) -> str:
    """GraphQL spells an App's login without ``[bot]`` (REST: ``name[bot]``)."""
    return login.removesuffix("[bot]") if kind == "Bot" else login


class _Api:
    """Resolvers over the fake's state, for one request by ``viewer`` (a user) or
    ``installation`` (an installation token's)."""

    def __init__(
        self,
        state: GitHubState,
        api: str,
        viewer: str | None,
        installation: int | None = None,
        repositories: tuple[str, ...] | None = None,
    ) -> None:
        self.state = state
        self.api = api
        self.viewer = viewer
        self.installation = installation
        self.repositories = repositories

    def permission(self, repo: str) -> str:
        if self.viewer is None:
            return "READ"
        return _ROLE.get(self.state.permission_of(repo, self.viewer), "READ")

    def reaches(self, full: str) -> bool:
        if self.installation is None:
            return True
        inst = self.state.installations.get(self.installation)
        if inst is None or not inst.covers(full):
            return False
        names = {r.lower() for r in self.repositories or ()}
        return (
            self.repositories is None
            or full.lower() in names
            or full.split("/")[1].lower() in names
        )

    def actor(self, login: str, kind: str | None = None) -> dict[str, Any]:
        kind = kind or self.state.user(login).type
        typename = kind if kind in ("Bot", "Organization") else "User"
        return {"__typename": typename, "login": _graph_login(login, typename)}

    def git_actor(self, c: PRCommit, role: str) -> dict[str, Any]:
        """A commit's author or committer as ``endpoints/pulls.py`` serves it by REST."""
        name = c.author_name or c.author_login or "Someone"
        email = c.author_email or (
            f"{c.author_login}@users.noreply.github.com"
            if c.author_login
            else "someone@example.com"
        )
        login, kind = c.author_login, c.author_type
        if role == "committer":
            if c.committer_login is None:
                return {"name": "GitHub", "email": "noreply@github.com", "user": None}
            login, kind = c.committer_login, self.state.user(c.committer_login).type
        # ``GitActor.user`` is a User: null for an App.
        user = {"login": login} if login and kind != "Bot" else None
        return {"name": name, "email": email, "user": user}

    def full_pull(self, pull: Pull) -> dict[str, Any]:
        """Every field the fake serves of a pull request (``pull_node`` and its lists)."""
        owner = pull.repo.split("/")[0]
        reviews = [
            {
                "databaseId": r.id,
                "state": r.state,
                "submittedAt": r.submitted_at,
                "authorAssociation": r.author_association,
                "author": self.actor(r.user, r.user_type),
                "commit": {"oid": r.commit_id} if r.commit_id else None,
            }
            for r in self.state.reviews
            if r.repo.lower() == pull.repo.lower() and r.number == pull.number
        ]
        commits = [
            {
                "commit": {
                    "oid": c.sha,
                    "message": c.message,
                    "author": self.git_actor(c, "author"),
                    "committer": self.git_actor(c, "committer"),
                    "parents": _connection([{"oid": p} for p in c.parents]),
                }
            }
            for c in pull.commits
        ]
        requested = [{"requestedReviewer": self.actor(u)} for u in pull.requested_users] + [
            {
                "requestedReviewer": {
                    "__typename": "Team",
                    "slug": payloads.team_or_stub(self.state, owner, t).slug,
                }
            }
            for t in pull.requested_teams
        ]
        return {
            **self.pull_node(pull),
            "author": self.actor(pull.author, pull.author_type),
            "body": pull.body,
            "changedFiles": len(pull.files),
            "headRefOid": pull.head_sha,
            "baseRefOid": pull.base_sha,
            "headRepository": {"nameWithOwner": self.state.repo(pull.head_repo).full_name},
            "labels": _connection([{"name": n} for n in pull.labels]),
            "assignees": _connection([{"login": a} for a in pull.assignees]),
            "reviewRequests": _connection(requested),
            "reviews": _connection(reviews),
            "commits": _connection(commits),
        }

    def commit(self, full: str, sha: str) -> dict[str, Any]:
        """A commit and the pull requests ``GET /commits/{sha}/pulls`` would name."""
        found = sorted(
            (
                p
                for p in self.state.pulls.values()
                if full.lower() in (p.repo.lower(), p.head_repo.lower())
                and (p.head_sha == sha or any(c.sha == sha for c in p.commits))
                and (self.state.associate_forks or p.head_repo.lower() == p.repo.lower())
            ),
            key=lambda p: p.number,
        )
        return {
            "__typename": "Commit",
            "oid": sha,
            "associatedPullRequests": _connection([self.full_pull(p) for p in found]),
        }

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
        if full.lower() not in self.state.repos or not self.reaches(full):
            raise GraphQLError(f"Could not resolve to a Repository with the name '{full}'.")

        def pull_request(_info: Any, number: int) -> dict[str, Any] | None:
            found = self.state.pulls.get((full.lower(), number))
            if found is None:
                raise GraphQLError(
                    f"Could not resolve to a PullRequest with the number of {number}."
                )
            return self.full_pull(found)

        return {
            "nameWithOwner": self.state.repos[full.lower()].full_name,
            "viewerPermission": self.permission(full),
            "pullRequest": pull_request,
            "object": lambda _info, oid=None, **_: self.commit(full, oid) if oid else None,
        }

    def revert(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        if self.viewer is None:
            raise GraphQLError("Resource not accessible by integration")
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
    state: GitHubState,
    api: str,
    *,
    viewer: str | None,
    query: str,
    variables: dict[str, Any] | None,
    installation: int | None = None,
    repositories: tuple[str, ...] | None = None,
    points: int = 1,
) -> dict[str, Any]:
    """Run a valid request; errors are reported in the body, as GitHub does (HTTP 200).

    ``points``: what the query costs (already taken from the budget).
    """
    resolvers = _Api(state, api, viewer, installation, repositories)
    root = {
        "viewer": {"login": viewer} if viewer else None,
        "repository": resolvers.repository,
        "revertPullRequest": resolvers.revert,
        "rateLimit": lambda _info, **_: {
            "cost": points,
            "limit": state.graphql_rate_limit,
            "remaining": state.graphql_rate_limit_remaining,
            "used": state.graphql_rate_limit - state.graphql_rate_limit_remaining,
            "resetAt": iso(state.rate_limit_reset),
            "nodeCount": 0,
        },
    }
    # Parsed and validated already (invalid()); run the document as graphql_sync would.
    result = run_document(schema(), _document(query), root_value=root, variable_values=variables)
    assert isinstance(result, ExecutionResult)
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        out["errors"] = [
            {
                "type": "FORBIDDEN"
                if "permission" in e.message or "integration" in e.message
                else "NOT_FOUND"
                if e.message.startswith("Could not resolve")
                else "UNPROCESSABLE",
                "message": e.message,
                "path": e.path,
            }
            for e in result.errors
        ]
    return out
