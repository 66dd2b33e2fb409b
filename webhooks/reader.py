"""Reading a pull request from GitHub into the engine's types, once, at the edge.

- https://docs.github.com/rest/pulls/pulls#get-a-pull-request
- https://docs.github.com/rest/pulls/pulls#list-pull-requests-files (at most 3000 files)
- https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request
- https://docs.github.com/rest/pulls/pulls#list-commits-on-a-pull-request
- https://docs.github.com/rest/repos/contents#get-repository-content

Policy and CODEOWNERS are read from the base sha, never from the head: an agent
cannot loosen the rules in its own pull request.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gate.codeowners import LOCATIONS, CodeOwners
from gate.decide import Config, parse_policy
from gate.delegation import trailers
from gate.model import (
    GITHUB_FILE_LIMIT,
    ChangedFile,
    CoAuthor,
    Contents,
    FileStatus,
    PullSnapshot,
    Review,
    ReviewState,
    Teams,
    UserType,
)
from gate.policy import POLICY_PATH, InvalidPolicy, LoadedPolicy
from webhooks.github import GitHubApp, ListCut, NotFound

MAX_BLOB = 1024 * 1024
#: How long the organisation's policy is reused before it is read again (seconds).
ORG_POLICY_TTL = 300.0
#: File texts read for the detectors per decision, at most.
MAX_CONTENT_READS = 400
_STATUS = {"changed": FileStatus.MODIFIED, "unchanged": FileStatus.MODIFIED}


def _user_type(node: Mapping[str, Any] | None) -> UserType:
    kind = (node or {}).get("type", "User")
    return UserType(kind) if kind in UserType._value2member_map_ else UserType.USER


def file_from_json(item: Mapping[str, Any]) -> ChangedFile:
    raw = str(item.get("status", "modified"))
    status = _STATUS.get(raw) or FileStatus(raw)
    return ChangedFile(
        path=str(item["filename"]),
        status=status,
        previous_path=item.get("previous_filename"),
        patch=item.get("patch"),
        additions=int(item.get("additions", 0)),
        deletions=int(item.get("deletions", 0)),
    )


def review_from_json(item: Mapping[str, Any]) -> Review | None:
    user = item.get("user") or {}
    state = str(item.get("state", ""))
    if not user.get("login") or state not in ReviewState._value2member_map_:
        return None
    return Review(
        id=int(item["id"]),
        user=str(user["login"]),
        user_type=_user_type(user),
        state=ReviewState(state),
        commit_id=str(item.get("commit_id") or ""),
        submitted_at=str(item.get("submitted_at") or ""),
        author_association=str(item.get("author_association", "NONE")),
    )


def co_authors_of(message: str) -> list[CoAuthor]:
    """``Co-authored-by: Name <email>`` trailers, parsed without regular expressions."""
    found: list[CoAuthor] = []
    for line in message.splitlines():
        key, sep, value = line.partition(":")
        if not sep or key.strip().lower() != "co-authored-by":
            continue
        name, lt, rest = value.partition("<")
        if lt and ">" in rest:
            found.append(CoAuthor(name=name.strip(), email=rest.split(">", 1)[0].strip()))
    return found


#: Trailers kept from all of a pull request's commit messages, at most.
MAX_COMMIT_TRAILERS = 200


@dataclass(frozen=True, slots=True)
class CommitFacts:
    """What a pull request's commits say about who wrote them and for whom."""

    authors: frozenset[str]
    #: GitHub has no API naming who pushed; committers stand in for them
    #: (``web-flow`` is GitHub itself committing a web edit or merge).
    pushers: frozenset[str]
    co_authors: tuple[CoAuthor, ...]
    emails: frozenset[str]
    #: ``Key: value`` trailers (an agent's session, logs, who requested it).
    trailers: tuple[tuple[str, str], ...]


def commit_facts(commits: Iterable[Mapping[str, Any]]) -> CommitFacts:
    authors: set[str] = set()
    pushers: set[str] = set()
    emails: set[str] = set()
    co: list[CoAuthor] = []
    found: list[tuple[str, str]] = []
    for commit in commits:
        git = commit.get("commit") or {}
        for role in ("author", "committer"):
            email = (git.get(role) or {}).get("email")
            if email:
                emails.add(str(email))
        author = (commit.get("author") or {}).get("login")
        committer = (commit.get("committer") or {}).get("login")
        if author:
            authors.add(str(author))
        if committer and committer != "web-flow":
            pushers.add(str(committer))
        message = str(git.get("message", ""))
        co.extend(co_authors_of(message))
        if len(found) < MAX_COMMIT_TRAILERS:
            found.extend(trailers(message)[: MAX_COMMIT_TRAILERS - len(found)])
    return CommitFacts(
        authors=frozenset(authors),
        pushers=frozenset(pushers),
        co_authors=tuple(dict.fromkeys(co)),
        emails=frozenset(emails),
        trailers=tuple(dict.fromkeys(found)),
    )


def snapshot_of(
    pull: Mapping[str, Any],
    *,
    repo: str,
    files: list[Mapping[str, Any]],
    reviews: list[Mapping[str, Any]],
    commits: list[Mapping[str, Any]],
) -> PullSnapshot:
    """The engine's view of a pull request, from GitHub's JSON (translated once, here)."""
    listed = [file_from_json(item) for item in files]
    # ``changed_files`` is in the full pull request only; without it, a list that
    # reached GitHub's cap is taken as cut short.
    if "changed_files" in pull:
        complete = int(pull["changed_files"]) <= len(listed) <= GITHUB_FILE_LIMIT
    else:
        complete = len(listed) < GITHUB_FILE_LIMIT
    facts = commit_facts(commits)
    user = pull.get("user") or {}
    return PullSnapshot(
        repo=repo,
        number=int(pull["number"]),
        author=str(user.get("login", "")),
        author_type=_user_type(user),
        head_sha=str(pull["head"]["sha"]),
        base_ref=str(pull["base"]["ref"]),
        base_sha=str(pull["base"]["sha"]),
        files=tuple(listed),
        files_complete=complete,
        reviews=tuple(r for r in map(review_from_json, reviews) if r is not None),
        labels=frozenset(str(label.get("name")) for label in pull.get("labels", [])),
        commit_authors=facts.authors,
        commit_emails=facts.emails,
        co_authors=facts.co_authors,
        trailers=facts.trailers,
        pushers=facts.pushers,
        requested_users=frozenset(
            str(u["login"]) for u in pull.get("requested_reviewers", []) if "login" in u
        ),
        requested_teams=frozenset(
            str(t["slug"]) for t in pull.get("requested_teams", []) if "slug" in t
        ),
        draft=bool(pull.get("draft", False)),
    )


#: GitHub lists at most 250 commits of a pull request
#: (https://docs.github.com/rest/pulls/pulls#list-commits-on-a-pull-request).
GITHUB_COMMIT_LIMIT = 250


async def _whole(
    gh: GitHubApp, url: str, *, installation_id: int, route: str, name: str, cut: list[str]
) -> list[Any]:
    try:
        return await gh.paginate(url, installation_id=installation_id, route=route)
    except ListCut:
        cut.append(name)
        return []


@dataclass(frozen=True, slots=True)
class Lists:
    """A pull request's files, reviews and commits as GitHub listed them."""

    files: list[Any]
    reviews: list[Any]
    commits: list[Any]
    #: Lists that were longer than the reader takes ("files", "reviews", "commits").
    cut: tuple[str, ...]

    def moved_from(self, head: str) -> bool:
        """Whether these lists describe another commit than ``head``.

        GitHub lists a pull request's commits by date, not by ancestry (a cherry-picked
        commit keeps its old date), so the last one listed need not be the head: the
        lists are ``head``'s when it is among them and no listed commit descends from
        it. A list that may be cut short (GitHub's 250) proves nothing either way.

        The files list names the commit it was read at: each entry's
        ``contents_url`` ends in ``?ref=<head sha>``
        (https://docs.github.com/rest/pulls/pulls#list-pull-requests-files); files
        read at another commit (the lists are read concurrently, and a push may
        land between them) are another commit's too.
        """
        if any(ref != head for ref in _file_refs(self.files)):
            return True
        if not self.commits or len(self.commits) >= GITHUB_COMMIT_LIMIT:
            return False
        shas = {str(c.get("sha") or "") for c in self.commits}
        parents = {str(p.get("sha") or "") for c in self.commits for p in c.get("parents") or []}
        return head not in shas or head in parents


def _file_refs(files: Iterable[Mapping[str, Any]]) -> set[str]:
    """The commits a files list says it was read at (a removed file's entry is not asked)."""
    refs: set[str] = set()
    for item in files:
        url = item.get("contents_url")
        if item.get("status") == "removed" or not isinstance(url, str):
            continue
        query = url.partition("?")[2]
        for pair in query.split("&"):
            key, _, value = pair.partition("=")
            if key == "ref" and len(value) == 40:
                refs.add(value)
    return refs


class HeadMoved(Exception):
    """The pull request's head moved while it was read: its lists describe another commit."""


async def read_files(
    gh: GitHubApp, *, installation_id: int, repo: str, number: int
) -> tuple[list[Any], tuple[str, ...]]:
    """Pull request ``number``'s files, and ``("files",)`` when the list was cut short."""
    cut: list[str] = []
    files = await _whole(
        gh,
        f"/repos/{repo}/pulls/{number}/files",
        installation_id=installation_id,
        route="/pulls/{n}/files",
        name="files",
        cut=cut,
    )
    return files, tuple(cut)


async def read_lists(
    gh: GitHubApp,
    *,
    installation_id: int,
    repo: str,
    number: int,
    files: bool = True,
    reviews: bool = True,
    commits: bool = True,
) -> Lists:
    """Files, reviews and commits of pull request ``number``, read concurrently.

    A list not asked for (``False``: read elsewhere) comes back empty.
    """
    base = f"/repos/{repo}/pulls/{number}"
    cut: list[str] = []

    async def one(wanted: bool, name: str, route: str) -> list[Any]:
        if not wanted:
            return []
        return await _whole(
            gh, f"{base}/{name}", installation_id=installation_id, route=route, name=name, cut=cut
        )

    found = await asyncio.gather(
        one(files, "files", "/pulls/{n}/files"),
        one(reviews, "reviews", "/pulls/{n}/reviews"),
        one(commits, "commits", "/pulls/{n}/commits"),
    )
    return Lists(files=found[0], reviews=found[1], commits=found[2], cut=tuple(cut))


async def read_snapshot(
    gh: GitHubApp,
    *,
    installation_id: int,
    repo: str,
    pull: Mapping[str, Any],
    lists: Lists | None = None,
) -> PullSnapshot:
    """The engine's view of ``pull`` (a pull request object) with its lists.

    ``lists`` may have been read already, beside the look-up of the head's pull
    requests. A list GitHub or the reader cuts short is named in ``cut_lists``: the
    engine fails closed on it (an agent could bury a CHANGES_REQUESTED review under
    thousands of comments, or a human's commit past the 250th). Lists that end at
    another commit than the pull request's head raise :class:`HeadMoved`: they would
    judge one commit by another's content.
    """
    if lists is None:
        lists = await read_lists(
            gh, installation_id=installation_id, repo=repo, number=int(pull["number"])
        )
    head = str(pull["head"]["sha"])
    if lists.moved_from(head):
        raise HeadMoved(f"#{pull['number']} is no longer at {head[:12]}")
    cut = list(lists.cut)
    known = pull.get("commits")
    if len(lists.commits) >= GITHUB_COMMIT_LIMIT and not (
        isinstance(known, int) and known <= len(lists.commits)
    ):
        cut.append("commits")
    snapshot = snapshot_of(
        pull, repo=repo, files=lists.files, reviews=lists.reviews, commits=lists.commits
    )
    if "files" in cut:
        snapshot = dataclasses.replace(snapshot, files_complete=False)
    return dataclasses.replace(snapshot, cut_lists=tuple(sorted(set(cut) - {"files"})))


async def get_pull(
    gh: GitHubApp, *, installation_id: int, repo: str, number: int
) -> Mapping[str, Any]:
    answer = await gh.call(
        "GET",
        f"/repos/{repo}/pulls/{number}",
        installation_id=installation_id,
        route="GET /pulls/{n}",
    )
    data: Mapping[str, Any] = answer.data
    return data


async def open_pulls_at(
    gh: GitHubApp, *, installation_id: int, repo: str, sha: str
) -> list[Mapping[str, Any]]:
    """Open pull requests whose head is ``sha``, whatever their base: one call.

    https://docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-commit
    lists the open pull requests containing a commit that is not on the default
    branch; those whose head is the commit are the ones its check run speaks for.
    """
    answer = await gh.call(
        "GET",
        f"/repos/{repo}/commits/{sha}/pulls",
        installation_id=installation_id,
        params={"per_page": 100},
        route="GET /commits/{sha}/pulls",
    )
    return [
        p
        for p in answer.data or []
        if p.get("state") == "open" and (p.get("head") or {}).get("sha") == sha
    ]


async def open_pulls_scan(
    gh: GitHubApp, *, installation_id: int, repo: str, sha: str
) -> list[Mapping[str, Any]]:
    """Every open pull request with head ``sha``, by listing them all (fork heads).

    GitHub does not associate a fork's commits with the base repository's pull
    requests, so the cheap look-up misses them; this reads every page.
    """
    pulls = await gh.paginate(
        f"/repos/{repo}/pulls",
        installation_id=installation_id,
        params={"state": "open"},
        route="/pulls",
    )
    return [p for p in pulls if (p.get("head") or {}).get("sha") == sha]


class ConfigReader:
    """Policy and CODEOWNERS at a base sha, cached by (repo, sha) and by blob sha."""

    def __init__(self, gh: GitHubApp, *, size: int = 512) -> None:
        self._gh = gh
        self._by_sha: OrderedDict[tuple[str, str], Config] = OrderedDict()
        self._blobs: OrderedDict[str, str] = OrderedDict()
        self._policies: OrderedDict[str, LoadedPolicy | InvalidPolicy] = OrderedDict()
        self._orgs: dict[str, tuple[float, LoadedPolicy | InvalidPolicy | None]] = {}
        #: (repo, directory) -> (ETag, listing) of the last listing read. GitHub's ETag
        #: is a hash of the response, so it also matches the same listing at
        #: another commit: an unchanged .github/ at a new base sha costs a 304.
        self._listings: OrderedDict[tuple[str, str], tuple[str, dict[str, str]]] = OrderedDict()
        self._size = size

    async def read(self, *, installation_id: int, repo: str, sha: str) -> Config:
        key = (repo, sha)
        if key in self._by_sha:
            self._by_sha.move_to_end(key)
            return self._by_sha[key]
        # One directory listing names the files and their blob shas; unchanged
        # blobs are not fetched again.
        listing = await self._listing(
            installation_id=installation_id, repo=repo, sha=sha, directory=".github"
        )
        policy_blob = listing.get(POLICY_PATH)
        policy_text = await self._blob(installation_id, repo, policy_blob) if policy_blob else None
        codeowners = CodeOwners.empty()
        codeowners_blob = ""
        for location in LOCATIONS:
            directory = location.rpartition("/")[0]
            names = (
                listing
                if directory == ".github"
                else await self._listing(
                    installation_id=installation_id, repo=repo, sha=sha, directory=directory
                )
            )
            blob = names.get(location)
            if blob:
                codeowners = CodeOwners.parse(
                    await self._blob(installation_id, repo, blob), path=location
                )
                codeowners_blob = blob
                break
        parsed = await self._parsed(policy_text, policy_blob or "")
        org = None
        if policy_text is None or (
            isinstance(parsed, LoadedPolicy) and parsed.policy.extend == "org"
        ):
            org = await self._org_policy(installation_id, repo.split("/", 1)[0])
        config = Config(policy_text, policy_blob or "", codeowners, codeowners_blob, parsed, org)
        self._by_sha[key] = config
        if len(self._by_sha) > self._size:
            self._by_sha.popitem(last=False)
        return config

    async def _org_policy(
        self, installation_id: int, owner: str
    ) -> LoadedPolicy | InvalidPolicy | None:
        """``OWNER/.github``'s ``.github/merge-gate.yml`` on its default branch, or None.

        Cached for ``ORG_POLICY_TTL`` seconds: a change to it applies within that time.
        """
        now = time.monotonic()
        known = self._orgs.get(owner)
        if known is not None and now - known[0] <= ORG_POLICY_TTL:
            return known[1]
        found: LoadedPolicy | InvalidPolicy | None = None
        try:
            answer = await self._gh.call(
                "GET",
                f"/repos/{owner}/.github/contents/{POLICY_PATH}",
                installation_id=installation_id,
                route="GET /contents",
            )
        except NotFound:
            answer = None
        data = answer.data if answer is not None and isinstance(answer.data, Mapping) else None
        if data is not None and data.get("encoding") == "base64":
            text = base64.b64decode(data.get("content", "")).decode("utf-8", "replace")
            found = await self._parsed(
                text, str(data.get("sha", "")), path=f"{owner}/.github:{POLICY_PATH}"
            )
        self._orgs[owner] = (now, found)
        return found

    async def _parsed(
        self, text: str | None, blob: str, *, path: str = POLICY_PATH
    ) -> LoadedPolicy | InvalidPolicy:
        """Parse in a thread (a hostile policy must not stall the receiver), once per blob."""
        key = f"{path}@{blob}"
        if blob and key in self._policies:
            return self._policies[key]
        parsed = await asyncio.to_thread(parse_policy, text, blob=blob, path=path)
        if blob:
            self._policies[key] = parsed
            if len(self._policies) > self._size:
                self._policies.popitem(last=False)
        return parsed

    async def _listing(
        self, *, installation_id: int, repo: str, sha: str, directory: str
    ) -> dict[str, str]:
        url = f"/repos/{repo}/contents/{directory}" if directory else f"/repos/{repo}/contents/"
        known = self._listings.get((repo, directory))
        try:
            answer = await self._gh.call(
                "GET",
                url,
                installation_id=installation_id,
                params={"ref": sha},
                route="GET /contents",
                headers={"If-None-Match": known[0]} if known else None,
            )
        except NotFound:
            return {}
        if answer.status == 304 and known:
            return dict(known[1])
        if not isinstance(answer.data, list):
            return {}
        listing = {str(i["path"]): str(i["sha"]) for i in answer.data if i.get("type") == "file"}
        etag = answer.headers.get("etag")
        if etag:
            self._listings[(repo, directory)] = (etag, listing)
            if len(self._listings) > self._size:
                self._listings.popitem(last=False)
        return listing

    async def _blob(self, installation_id: int, repo: str, blob: str) -> str:
        if blob in self._blobs:
            return self._blobs[blob]
        answer = await self._gh.call(
            "GET",
            f"/repos/{repo}/git/blobs/{blob}",
            installation_id=installation_id,
            route="GET /git/blobs",
        )
        text = base64.b64decode(answer.data.get("content", "")).decode("utf-8", "replace")
        self._blobs[blob] = text
        if len(self._blobs) > self._size:
            self._blobs.popitem(last=False)
        return text

    def forget(self) -> None:
        self._by_sha.clear()
        self._orgs.clear()


class TeamReader:
    """Team members, cached for ``ttl`` seconds and dropped on membership events."""

    def __init__(self, gh: GitHubApp, *, ttl: float = 300.0) -> None:
        self._gh = gh
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def read(self, *, installation_id: int, teams: Iterable[str]) -> Teams:
        now = time.monotonic()
        wanted = sorted(set(teams))
        missing = [t for t in wanted if t not in self._cache or now - self._cache[t][0] > self._ttl]
        results = await asyncio.gather(*(self._members(installation_id, team) for team in missing))
        for team, members in zip(missing, results, strict=True):
            self._cache[team] = (now, members)
        return Teams.of({team: self._cache[team][1] for team in wanted})

    async def _members(self, installation_id: int, team: str) -> frozenset[str]:
        org, _, slug = team.partition("/")
        try:
            items = await self._gh.paginate(
                f"/orgs/{org}/teams/{slug}/members",
                installation_id=installation_id,
                route="/teams/members",
            )
        except NotFound:
            return frozenset()
        return frozenset(str(item["login"]).lower() for item in items if "login" in item)

    def forget(self) -> None:
        self._cache.clear()


class PermissionReader:
    """Who may write to a repository, asked per user and cached for ``ttl`` seconds.

    https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user:
    ``permission`` is admin, write, read or none (maintain reads as write).
    """

    def __init__(self, gh: GitHubApp, *, ttl: float = 60.0, size: int = 4096) -> None:
        self._gh = gh
        self._ttl = ttl
        self._size = size
        self._cache: OrderedDict[tuple[str, str], tuple[float, bool]] = OrderedDict()
        self._admins: dict[str, tuple[float, frozenset[str]]] = {}

    async def writers(
        self, *, installation_id: int, repo: str, logins: Iterable[str]
    ) -> frozenset[str]:
        wanted = sorted({login.lower() for login in logins})
        answers = await asyncio.gather(*(self._can_write(installation_id, repo, u) for u in wanted))
        return frozenset(u for u, ok in zip(wanted, answers, strict=True) if ok)

    async def _can_write(self, installation_id: int, repo: str, login: str) -> bool:
        now = time.monotonic()
        known = self._cache.get((repo, login))
        if known is not None and now - known[0] <= self._ttl:
            return known[1]
        try:
            answer = await self._gh.call(
                "GET",
                f"/repos/{repo}/collaborators/{login}/permission",
                installation_id=installation_id,
                route="GET /collaborators/{u}/permission",
            )
            ok = (answer.data or {}).get("permission") in ("admin", "maintain", "write")
        except NotFound:
            ok = False
        self._cache[(repo, login)] = (now, ok)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return ok

    async def admins(self, *, installation_id: int, repo: str) -> frozenset[str]:
        """The repository's admins (users, not Apps), cached for ``ttl`` seconds.

        https://docs.github.com/rest/collaborators/collaborators#list-repository-collaborators
        """
        now = time.monotonic()
        known = self._admins.get(repo)
        if known is not None and now - known[0] <= self._ttl:
            return known[1]
        people = await self._gh.paginate(
            f"/repos/{repo}/collaborators",
            installation_id=installation_id,
            params={"permission": "admin"},
            route="/collaborators",
        )
        found = frozenset(
            str(p["login"]).lower()
            for p in people
            if p.get("type", "User") == "User" and (p.get("permissions") or {}).get("admin")
        )
        self._admins[repo] = (now, found)
        return found

    def forget(self) -> None:
        self._cache.clear()
        self._admins.clear()


async def read_contents(
    gh: GitHubApp,
    *,
    installation_id: int,
    repo: str,
    wanted: Iterable[tuple[str, str]],
    base_sha: str,
    head_sha: str,
    limit: int = MAX_CONTENT_READS,
) -> Contents:
    """Texts the detectors asked for; files over 1 MB are marked too large, not read.

    At most ``limit`` files per decision: a pull request of thousands of manifests
    must not spend the installation's rate limit. The rest is ``unread``, and the
    engine fails closed on it.
    """

    async def one(side: str, path: str) -> tuple[tuple[str, str], str | None, bool]:
        ref = base_sha if side == "base" else head_sha
        try:
            answer = await gh.call(
                "GET",
                f"/repos/{repo}/contents/{path}",
                installation_id=installation_id,
                params={"ref": ref},
                route="GET /contents",
            )
        except NotFound:
            return (side, path), None, False
        data = answer.data if isinstance(answer.data, Mapping) else {}
        if int(data.get("size", 0)) > MAX_BLOB or data.get("encoding") != "base64":
            return (side, path), None, True
        text = base64.b64decode(data.get("content", "")).decode("utf-8", "replace")
        return (side, path), text, False

    ordered = sorted(set(wanted))
    results = await asyncio.gather(*(one(side, path) for side, path in ordered[:limit]))
    texts = {key: text for key, text, _large in results}
    large = frozenset(key for key, _text, too_large in results if too_large)
    return Contents(texts=texts, too_large=large, unread=frozenset(ordered[limit:]))
