"""A head's open pull requests, with their reviews and commits, in one GraphQL query.

The REST path costs one call to find a head's pull requests
(``GET /repos/{o}/{r}/commits/{sha}/pulls``) and then three per pull request
(files, reviews, commits). One GraphQL query
(https://docs.github.com/graphql/reference/objects#commit, field
``associatedPullRequests``) returns the pull requests, their labels, review
requests, assignees, reviews and commits together; only the files stay on REST
(the patches the detectors read are REST-only). Its budget is GraphQL's own
(https://docs.github.com/graphql/overview/rate-limits-and-node-limits-for-the-graphql-api):
the query asks for no connection nested in a connection of pull requests' lists
(no commit parents), so it costs 1 point.

GraphQL's answer is translated here, once, into the REST shapes the rest of the
service already reads (:func:`webhooks.reader.snapshot_of`): the pull request
mapping and the review and commit lists. Two differences are bridged:

- GraphQL spells a GitHub App's login without ``[bot]`` (``dependabot``; REST:
  ``dependabot[bot]``); the suffix is put back for every ``Bot``;
- a commit's ``GitActor.user`` is a ``User``: null for an App. Its no-reply
  address (``123+name[bot]@users.noreply.github.com``) is how GitHub links the
  commit to the App, so the login is read from it.

Fail closed: an answer with ``errors``, of an unexpected shape, or with more pull
requests, labels, review requests or assignees than one page holds is refused
(:class:`Unusable`): the caller reads by REST instead. Reviews or commits longer
than one page are left to the REST list of that one pull request (``None``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gate.identity import noreply_login
from webhooks.github import GitHubApp, GitHubError

#: Pull requests associated with a commit read in one query. More than that
#: (a commit many open pull requests contain) is read by REST.
ASSOCIATED = 10
#: Pull requests named by number beside the association (the delivery's, and
#: those delivered at this head, e.g. a fork's that GitHub does not associate).
MAX_NAMED = 10
#: Items of each list per pull request; GraphQL's ``first`` is at most 100.
PAGE = 100

_FRAGMENT = """
fragment pull on PullRequest {
  number
  state
  isDraft
  body
  changedFiles
  headRefOid
  headRefName
  headRepository { nameWithOwner }
  baseRefName
  baseRefOid
  author { __typename login }
  labels(first: {page}) { totalCount nodes { name } }
  assignees(first: {page}) { totalCount nodes { login } }
  reviewRequests(first: {page}) {
    totalCount
    nodes {
      requestedReviewer {
        __typename
        ... on User { login }
        ... on Bot { login }
        ... on Mannequin { login }
        ... on Team { slug }
      }
    }
  }
  reviews(first: {page}) {
    totalCount
    nodes {
      databaseId
      state
      submittedAt
      authorAssociation
      author { __typename login }
      commit { oid }
    }
  }
  commits(first: {page}) {
    totalCount
    nodes {
      commit {
        oid
        message
        author { name email user { login } }
        committer { name email user { login } }
      }
    }
  }
}
""".replace("{page}", str(PAGE))


class Unusable(Exception):
    """GraphQL's answer cannot stand for REST's: the caller reads by REST."""


def query_for(numbers: Iterable[int]) -> str:
    """The query for a head sha and the pull requests named by ``numbers``.

    Numbers are written into the query as aliases (``n12: pullRequest(number: 12)``):
    integers only, so nothing from a delivery is spliced in as text.
    """
    wanted = sorted(set(map(int, numbers)))
    named = "".join(f"\n    n{n}: pullRequest(number: {n}) {{ ...pull }}" for n in wanted)
    return (
        "query($owner: String!, $name: String!, $oid: GitObjectID!) {\n"
        "  rateLimit { cost remaining }\n"
        "  repository(owner: $owner, name: $name) {\n"
        "    object(oid: $oid) {\n"
        "      ... on Commit {\n"
        f"        associatedPullRequests(first: {ASSOCIATED}) {{\n"
        "          totalCount nodes { ...pull }\n"
        "        }\n"
        "      }\n"
        f"    }}{named}\n"
        "  }\n"
        "}\n" + _FRAGMENT
    )


@dataclass(frozen=True, slots=True)
class Partial:
    """A pull request's reviews and commits as GraphQL listed them.

    ``None``: longer than one page; that list is read by REST. Files are always REST's.
    """

    reviews: list[Mapping[str, Any]] | None
    commits: list[Mapping[str, Any]] | None


@dataclass(frozen=True, slots=True)
class Found:
    """What one query says about a head sha."""

    #: Open pull requests whose head is the sha (REST-shaped), by number.
    pulls: list[Mapping[str, Any]]
    #: Each pull request named by number, whatever its state and head; absent: none.
    named: dict[int, Mapping[str, Any]]
    #: Reviews and commits of every pull request read, by number.
    lists: dict[int, Partial] = field(default_factory=dict)


def _connection(node: Mapping[str, Any], name: str) -> tuple[list[Any], int]:
    conn = node.get(name)
    if not isinstance(conn, Mapping):
        raise Unusable(f"{name} missing")
    nodes, total = conn.get("nodes"), conn.get("totalCount")
    if not isinstance(nodes, list) or not isinstance(total, int):
        raise Unusable(f"{name} malformed")
    return nodes, total


def _whole(node: Mapping[str, Any], name: str) -> list[Any]:
    """A list the pull request mapping needs whole: a longer one is refused."""
    nodes, total = _connection(node, name)
    if total > len(nodes):
        raise Unusable(f"{name}: {total} > {len(nodes)}")
    return [n for n in nodes if isinstance(n, Mapping)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _actor(actor: Any) -> dict[str, str] | None:
    """A GraphQL ``Actor`` as REST's user: ``Bot`` logins get their ``[bot]`` back."""
    if not isinstance(actor, Mapping) or not isinstance(actor.get("login"), str):
        return None
    login, kind = str(actor["login"]), str(actor.get("__typename", "User"))
    if kind == "Bot":
        return {"login": login if login.endswith("[bot]") else f"{login}[bot]", "type": "Bot"}
    return {"login": login, "type": "Organization" if kind == "Organization" else "User"}


def _git_user(person: Mapping[str, Any]) -> dict[str, str] | None:
    """The account GitHub links a commit's author or committer to, as REST names it."""
    user = person.get("user")
    if isinstance(user, Mapping) and isinstance(user.get("login"), str):
        return {"login": str(user["login"]), "type": "User"}
    login = noreply_login(str(person.get("email") or ""))
    if login and login.lower().endswith("[bot]"):
        return {"login": login, "type": "Bot"}
    return None


def _commit(node: Any) -> dict[str, Any]:
    commit = node.get("commit") if isinstance(node, Mapping) else None
    if not isinstance(commit, Mapping) or not isinstance(commit.get("oid"), str):
        raise Unusable("commit malformed")
    author = _mapping(commit.get("author"))
    committer = _mapping(commit.get("committer"))
    return {
        "sha": commit["oid"],
        "commit": {
            "message": str(commit.get("message") or ""),
            "author": {"name": author.get("name"), "email": author.get("email")},
            "committer": {"name": committer.get("name"), "email": committer.get("email")},
        },
        "author": _git_user(author),
        "committer": _git_user(committer),
        # Not asked for (a connection in a connection would cost ~100 times the
        # points); these lists and the head come from one answer.
        "parents": [],
    }


def _review(node: Any) -> dict[str, Any]:
    if not isinstance(node, Mapping) or not isinstance(node.get("databaseId"), int):
        raise Unusable("review malformed")
    commit = _mapping(node.get("commit"))
    return {
        "id": node["databaseId"],
        "user": _actor(node.get("author")),
        "state": str(node.get("state") or ""),
        "commit_id": commit.get("oid"),
        "submitted_at": node.get("submittedAt"),
        "author_association": str(node.get("authorAssociation") or "NONE"),
    }


def _pull(node: Any) -> tuple[dict[str, Any], Partial]:
    """A GraphQL ``PullRequest`` as REST's pull request object, and its lists."""
    if not isinstance(node, Mapping) or not isinstance(node.get("number"), int):
        raise Unusable("pull request malformed")
    for key in ("headRefOid", "baseRefOid", "baseRefName", "state"):
        if not isinstance(node.get(key), str):
            raise Unusable(f"pull request without {key}")
    requested = [
        n.get("requestedReviewer")
        for n in _whole(node, "reviewRequests")
        if isinstance(n.get("requestedReviewer"), Mapping)
    ]
    users = [
        user for r in requested if r.get("__typename") != "Team" and (user := _actor(r)) is not None
    ]
    teams = [{"slug": str(r["slug"])} for r in requested if isinstance(r.get("slug"), str)]
    reviews, review_count = _connection(node, "reviews")
    commits, commit_count = _connection(node, "commits")
    head_repo = node.get("headRepository")
    state = str(node["state"]).lower()
    pull: dict[str, Any] = {
        "number": node["number"],
        # REST has no "merged" state: a merged pull request is closed.
        "state": "open" if state == "open" else "closed",
        "draft": bool(node.get("isDraft")),
        "body": node.get("body"),
        "user": _actor(node.get("author")) or {"login": "", "type": "User"},
        "head": {
            "sha": node["headRefOid"],
            "ref": str(node.get("headRefName") or ""),
            "repo": (
                {"full_name": str(head_repo.get("nameWithOwner"))}
                if isinstance(head_repo, Mapping)
                else None
            ),
        },
        "base": {"ref": node["baseRefName"], "sha": node["baseRefOid"]},
        "labels": [{"name": str(n.get("name"))} for n in _whole(node, "labels")],
        "assignees": [{"login": str(n.get("login"))} for n in _whole(node, "assignees")],
        "requested_reviewers": users,
        "requested_teams": teams,
        "commits": commit_count,
    }
    if isinstance(node.get("changedFiles"), int):
        pull["changed_files"] = node["changedFiles"]
    lists = Partial(
        reviews=[_review(n) for n in reviews] if review_count <= len(reviews) else None,
        commits=[_commit(n) for n in commits] if commit_count <= len(commits) else None,
    )
    return pull, lists


def translate(data: Any, *, sha: str, numbers: Sequence[int]) -> Found:
    """GraphQL's ``data`` for :func:`query_for` as :class:`Found`, or :class:`Unusable`."""
    repo = data.get("repository") if isinstance(data, Mapping) else None
    if not isinstance(repo, Mapping):
        raise Unusable("no repository")
    commit = repo.get("object")
    nodes: list[Any] = []
    if commit is not None:
        if not isinstance(commit, Mapping):
            raise Unusable("object malformed")
        nodes, total = _connection(commit, "associatedPullRequests")
        if total > len(nodes):
            raise Unusable(f"{total} associated pull requests")
    lists: dict[int, Partial] = {}
    pulls: dict[int, Mapping[str, Any]] = {}
    named: dict[int, Mapping[str, Any]] = {}
    for node in nodes:
        pull, partial = _pull(node)
        if pull["state"] == "open" and pull["head"]["sha"] == sha:
            pulls[int(pull["number"])] = pull
            lists[int(pull["number"])] = partial
    for number in numbers:
        alias = f"n{int(number)}"
        if alias not in repo:
            raise Unusable(f"{alias} missing")
        if repo[alias] is None:
            continue
        pull, partial = _pull(repo[alias])
        named[number] = pull
        if pull["state"] == "open" and pull["head"]["sha"] == sha:
            pulls.setdefault(number, pull)
            lists.setdefault(number, partial)
    return Found(pulls=[pulls[n] for n in sorted(pulls)], named=named, lists=lists)


async def read_head(
    gh: GitHubApp, *, installation_id: int, repo: str, sha: str, numbers: Iterable[int]
) -> Found:
    """One query: ``sha``'s open pull requests and those named by ``numbers``.

    Raises :class:`Unusable` for anything but a whole, well-formed answer.
    """
    wanted = sorted(set(numbers))
    if len(wanted) > MAX_NAMED:
        raise Unusable(f"{len(wanted)} pull requests named")
    owner, _, name = repo.partition("/")
    try:
        data = await gh.graphql.query(
            query_for(wanted),
            variables={"owner": owner, "name": name, "oid": sha},
            installation_id=installation_id,
            route="head pulls",
        )
    except GitHubError as error:
        raise Unusable(str(error)) from None
    return translate(data, sha=sha, numbers=wanted)
