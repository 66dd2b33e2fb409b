"""A head sha's open pull requests, and the lists read on the way.

One GraphQL query (:mod:`webhooks.graphql_reader`) returns a head's pull
requests with their reviews and commits, beside the pull requests named by the
delivery and those delivered at this head (a fork's, which GitHub does not
associate); the named pull request's files are read by REST at the same time.
When the query fails in any way, the REST path answers the same:
``GET /repos/{o}/{r}/commits/{sha}/pulls`` (which returns each pull request
object), a ``GET`` of each pull request delivered at the head that it left out,
and the named pull request's three lists beside them. Only when the named pull
request is not at the head (it moved on) is its new head read too, and, for a
fork's head found nowhere, the list of open pull requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from webhooks import indexes
from webhooks.github import Backoff, GitHubError, NotFound
from webhooks.graphql_reader import Found, Partial, Unusable, read_head
from webhooks.reader import (
    Lists,
    get_pull,
    open_pulls_at,
    open_pulls_scan,
    read_files,
    read_lists,
)
from webhooks.service import Service

log = logging.getLogger("merge_gate.heads")


@dataclass(frozen=True, slots=True)
class Head:
    """A head sha and the open pull requests whose head it is."""

    sha: str
    pulls: tuple[Mapping[str, Any], ...]
    #: Lists already read, by pull request number (whole, or GraphQL's part of them).
    lists: Mapping[int, Lists | Partial] = field(default_factory=dict)


def number_of(pull: Mapping[str, Any]) -> int:
    return int(pull["number"])


class HeadReader:
    def __init__(self, service: Service, *, graphql: bool = True) -> None:
        """``graphql``: one GraphQL query (REST when it fails); False: REST only."""
        self._gh = service.gh
        self._store = service.store
        self._graphql = graphql

    async def head(self, *, installation_id: int, repo: str, sha: str, number: int | None) -> Head:
        """The current head of pull request ``number`` (or ``sha``) and its pull requests.

        One GraphQL query, with the named pull request's files read beside it; the
        REST path when the query fails (an HTTP error, ``errors``, a shape or a
        length it cannot stand for): the same pull requests either way.
        """
        if self._graphql:
            try:
                return await self._head_graphql(installation_id, repo, sha, number)
            except Unusable as error:
                log.info("GraphQL read refused, reading by REST", extra={"reason": str(error)})
        return await self._head_rest(installation_id, repo, sha, number)

    async def _head_graphql(
        self, installation_id: int, repo: str, sha: str, number: int | None
    ) -> Head:
        gh = self._gh
        if number is None:
            found = await self._found(installation_id, repo, sha, ())
            pulls = list(found.pulls)
            if not pulls:
                pulls = await open_pulls_scan(
                    gh, installation_id=installation_id, repo=repo, sha=sha
                )
            return Head(sha, tuple(pulls), found.lists)
        found, files = await asyncio.gather(
            self._found(installation_id, repo, sha, (number,)),
            self._prefetch_files(installation_id, repo, number),
        )
        pulls, lists = list(found.pulls), dict(found.lists)
        current = sha
        if not any(number_of(p) == number for p in pulls):
            pull = found.named.get(number)
            if pull is None:
                raise NotFound(404, f"pull request #{number} not found")
            if pull.get("state") != "open":
                return Head(sha, tuple(pulls), lists)
            current = str(pull["head"]["sha"])
            found = await self._found(installation_id, repo, current, (number,))
            pulls, lists = list(found.pulls), dict(found.lists)
            if not any(number_of(p) == number for p in pulls):
                # It moved again while read: as the REST path, list them all.
                pulls = await open_pulls_scan(
                    gh, installation_id=installation_id, repo=repo, sha=current
                )
                if not any(number_of(p) == number for p in pulls):
                    pulls.append(pull)
        partial = lists.get(number)
        if files is not None and isinstance(partial, Partial):
            # On an error it is completed when judged (read again, with errors, then).
            with contextlib.suppress(GitHubError, Backoff):
                lists[number] = await self.complete(installation_id, repo, number, partial, files)
        return Head(current, tuple(pulls), lists)

    async def _found(
        self, installation_id: int, repo: str, sha: str, numbers: Iterable[int]
    ) -> Found:
        """GraphQL's answer for ``sha``, naming ``numbers`` and those delivered at it.

        GitHub's association may leave out a fork's pull request; a delivery named
        it, so the pull requests delivered at this head are asked for by number.
        """
        delivered = await indexes.head_pulls(self._store, repo=repo, head=sha)
        return await read_head(
            self._gh,
            installation_id=installation_id,
            repo=repo,
            sha=sha,
            numbers={*numbers, *delivered},
        )

    async def _prefetch_files(
        self, installation_id: int, repo: str, number: int
    ) -> tuple[list[Any], tuple[str, ...]] | None:
        """The files, or None when they cannot be read now (read again, with errors, later)."""
        try:
            return await read_files(
                self._gh, installation_id=installation_id, repo=repo, number=number
            )
        except (GitHubError, Backoff):
            return None

    async def complete(
        self,
        installation_id: int,
        repo: str,
        number: int,
        partial: Partial,
        files: tuple[list[Any], tuple[str, ...]] | None = None,
    ) -> Lists:
        """GraphQL's reviews and commits, with the files and any list it left to REST."""
        if files is not None and partial.reviews is not None and partial.commits is not None:
            return Lists(
                files=files[0],
                reviews=list(partial.reviews),
                commits=list(partial.commits),
                cut=files[1],
            )
        rest = await read_lists(
            self._gh,
            installation_id=installation_id,
            repo=repo,
            number=number,
            files=files is None,
            reviews=partial.reviews is None,
            commits=partial.commits is None,
        )
        cut = [*rest.cut, *(files[1] if files is not None else ())]
        return Lists(
            files=files[0] if files is not None else rest.files,
            reviews=list(partial.reviews) if partial.reviews is not None else rest.reviews,
            commits=list(partial.commits) if partial.commits is not None else rest.commits,
            cut=tuple(cut),
        )

    async def _head_rest(
        self, installation_id: int, repo: str, sha: str, number: int | None
    ) -> Head:
        """The REST path: the head's pull requests, and the named one's lists beside them.

        The lists serve only if they end at the head the look-up finds
        (see :func:`webhooks.reader.read_snapshot`).
        """
        if number is None:
            return await self._rest_pulls(installation_id, repo, sha, None)
        head, lists = await asyncio.gather(
            self._rest_pulls(installation_id, repo, sha, number),
            self._prefetch(installation_id, repo, number),
        )
        if lists is None:
            return head
        return Head(head.sha, head.pulls, {number: lists})

    async def _prefetch(self, installation_id: int, repo: str, number: int) -> Lists | None:
        """The lists, or None when they cannot be read now (read again, with errors, later)."""
        try:
            return await read_lists(
                self._gh, installation_id=installation_id, repo=repo, number=number
            )
        except (GitHubError, Backoff):
            return None

    async def _rest_pulls(
        self, installation_id: int, repo: str, sha: str, number: int | None
    ) -> Head:
        gh = self._gh
        pulls = await self._at(installation_id, repo, sha)
        if number is None:
            if not pulls:
                pulls = await open_pulls_scan(
                    gh, installation_id=installation_id, repo=repo, sha=sha
                )
            return Head(sha, tuple(pulls))
        if any(number_of(p) == number for p in pulls):
            return Head(sha, tuple(pulls))
        pull = await get_pull(gh, installation_id=installation_id, repo=repo, number=number)
        if pull.get("state") != "open":
            return Head(sha, tuple(pulls))
        current = str(pull["head"]["sha"])
        if current != sha:
            pulls = await self._at(installation_id, repo, current)
        if not any(number_of(p) == number for p in pulls):
            pulls = await open_pulls_scan(
                gh, installation_id=installation_id, repo=repo, sha=current
            )
            if not any(number_of(p) == number for p in pulls):
                pulls.append(pull)
        return Head(current, tuple(pulls))

    async def _at(self, installation_id: int, repo: str, sha: str) -> list[Mapping[str, Any]]:
        """Open pull requests at ``sha``: GitHub's association, and those delivered at it.

        The association may not name a fork's pull request; a delivery always did,
        so a pull request delivered at this head that is still open there is one of
        its pull requests too (one ``GET`` each, only for those the association missed).
        """
        gh = self._gh
        pulls = await open_pulls_at(gh, installation_id=installation_id, repo=repo, sha=sha)
        listed = {number_of(p) for p in pulls}
        for number in await indexes.head_pulls(self._store, repo=repo, head=sha):
            if number in listed:
                continue
            try:
                pull = await get_pull(gh, installation_id=installation_id, repo=repo, number=number)
            except NotFound:
                continue
            if pull.get("state") == "open" and (pull.get("head") or {}).get("sha") == sha:
                pulls.append(pull)
        return pulls
