"""The GitHub adapter: githubkit underneath, one narrow seam above.

- App JWT and installation tokens come from githubkit's App auth, which caches
  them until shortly before they expire; a 401 drops the installation's client
  (and its cached token) and retries once.
- 5xx and rate limits (secondary: ``Retry-After``; primary: ``x-ratelimit-reset``)
  are retried inside a request while the wait is at most ``MAX_WAIT`` seconds;
  a longer wait raises ``Backoff`` so the job goes back to the queue instead of
  holding a worker. https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
- Every installation answer's rate-limit headers go to ``budgets``
  (:mod:`webhooks.budget`): workers defer a job whose installation is nearly spent.
- Conditional requests: callers pass ``If-None-Match``; a 304 comes back as an
  answer, not an error (304s do not count against the rate limit).
- REST, and GraphQL (``GitHubApp.graphql``, :class:`GraphQL`) with its own budget
  and counters; responses are returned as JSON for the edge to translate once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestError, RequestFailed
from githubkit.typing import RetryOption

from webhooks.budget import RESERVE, Budgets

log = logging.getLogger("merge_gate.github")

MAX_WAIT = 10.0
#: Installations with a live client (and token); the least recently created go first.
MAX_CLIENTS = 256
MAX_RETRIES = 3
API_VERSION = "2022-11-28"


class GitHubError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(f"GitHub answered {status}: {message}")


class NotFound(GitHubError):
    pass


class ListCut(Exception):
    """A paged list is longer than the reader takes: the caller must fail closed."""

    def __init__(self, route: str, pages: int) -> None:
        self.route = route
        self.pages = pages
        super().__init__(f"{route} has {pages} pages; merge-gate reads at most the first ones")


class Backoff(Exception):
    """GitHub asked us to wait longer than a worker should block; retry the job later.

    ``waiting``: nothing was attempted that may have half-happened (a rate limit, a
    busy commit), so the job may wait in the queue without counting an attempt.
    Otherwise (a lost answer, a 5xx) the retry counts, and looks up what the last
    attempt may already have written.
    """

    def __init__(self, retry_in: float, reason: str, *, waiting: bool = False) -> None:
        self.retry_in = retry_in
        self.waiting = waiting
        super().__init__(f"{reason}; retry in {retry_in:.0f}s")


#: Methods a lost answer may be repeated for (RFC 9110 §9.2.2): the server ends in
#: the same state. A check run's POST is not: repeated, it could create a second run.
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def retry_decision(exc: GitHubException, count: int) -> RetryOption:
    """Retry briefly inside the request; anything longer becomes a ``Backoff``."""
    if count >= MAX_RETRIES:
        return RetryOption(False)
    if isinstance(exc, RateLimitExceeded):
        wait = exc.retry_after.total_seconds()
        return RetryOption(wait <= MAX_WAIT, timedelta(seconds=wait))
    if isinstance(exc, RequestFailed):
        if exc.response.status_code >= 500:
            return RetryOption(True, timedelta(seconds=min(0.2 * 2**count, MAX_WAIT)))
        return RetryOption(False)
    if isinstance(exc, RequestError):
        inner = exc.exc
        if isinstance(inner, GitHubException):
            # The installation token's own request failed (githubkit's auth flow
            # wraps it): judged like any answer; a retry fetches the token again.
            return retry_decision(inner, count)
        if isinstance(inner, httpx.TransportError) and _method(inner) in IDEMPOTENT:
            # A timeout or a dropped connection on a read: ask again, as for a 5xx.
            return RetryOption(True, timedelta(seconds=min(0.2 * 2**count, MAX_WAIT)))
    return RetryOption(False)


def _method(error: httpx.TransportError) -> str:
    try:
        return error.request.method
    except RuntimeError:  # no request attached: nothing says a retry is safe
        return ""


class SharedTransport(httpx.AsyncBaseTransport):
    """One connection pool for every githubkit client of the App.

    githubkit opens a new httpx client per request unless used as a context
    manager, and each new client built a TLS context (~25 ms of CPU) and a new
    connection. Clients get this transport instead; their ``aclose()`` after
    each request must not close the shared pool, so only ``close()`` does.
    """

    def __init__(self, pool: httpx.AsyncBaseTransport | None = None) -> None:
        self._pool = pool or httpx.AsyncHTTPTransport(http2=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._pool.handle_async_request(request)

    async def aclose(self) -> None:
        return None

    async def close(self) -> None:
        await self._pool.aclose()


@dataclass
class Answer:
    status: int
    headers: httpx.Headers
    data: Any


@dataclass
class CallStats:
    """Counters the metrics endpoint and the benchmarks read."""

    calls: int = 0
    by_route: dict[str, int] = field(default_factory=dict)
    rate_limit_remaining: int | None = None
    #: GraphQL has its own budget, in points: counted apart from REST's calls.
    graphql_calls: int = 0
    graphql_failures: int = 0
    graphql_points: int = 0
    graphql_remaining: int | None = None


class GitHubApp:
    """Requests as the App (JWT) or as one of its installations (token)."""

    def __init__(
        self,
        *,
        app_id: int,
        private_key: str,
        base_url: str,
        timeout: float = 10.0,
        on_call: Callable[[str, str, int], None] | None = None,
        on_graphql: Callable[[int, int], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limit_reserve: int = RESERVE,
    ) -> None:
        """``transport`` replaces the network (an in-process GitHub in tests);
        ``rate_limit_reserve``: see :mod:`webhooks.budget`; ``on_call(method, route,
        status)`` counts a REST call, ``on_graphql(status, points)`` a GraphQL query."""
        self.app_id = app_id
        self._key = private_key
        self._base_url = base_url.rstrip("/") + "/"
        self._timeout = timeout
        self._clients: dict[int | None, GitHub[Any]] = {}
        self._warm: set[int | None] = set()
        self._locks: dict[int | None, asyncio.Lock] = {}
        self._on_call = on_call
        #: GitHub's GraphQL endpoint (:class:`GraphQL`), counted apart from REST.
        self.graphql = GraphQL(self, on_graphql)
        self._transport = SharedTransport(transport)
        self.stats = CallStats()
        #: Each installation's rate-limit windows, from the answers' headers.
        self.budgets = Budgets(reserve=rate_limit_reserve)

    def _client(self, installation_id: int | None) -> GitHub[Any]:
        client = self._clients.get(installation_id)
        if client is None:
            auth: AppAuthStrategy | AppInstallationAuthStrategy
            if installation_id is None:
                auth = AppAuthStrategy(self.app_id, self._key)
            else:
                auth = AppInstallationAuthStrategy(self.app_id, self._key, installation_id)
            client = GitHub(
                auth,
                base_url=self._base_url,
                timeout=self._timeout,
                auto_retry=retry_decision,
                # No HTTP response cache: it kept every response (file lists with
                # patches) in memory. Configuration is cached above it by base sha
                # and blob sha, content-addressed, so it needs no request at all.
                http_cache=False,
                # A cache per client: forget() must drop this installation's token;
                # githubkit's default cache is shared by the whole process.
                cache_strategy=MemCacheStrategy(),
                async_transport=self._transport,
                user_agent="merge-gate",
            )
            self._clients[installation_id] = client
            if len(self._clients) > MAX_CLIENTS:
                evicted = next(iter(self._clients))
                self.forget(evicted)
        return client

    def forget(self, installation_id: int | None = None) -> None:
        """Drop cached clients and tokens (installation changed, or a 401)."""
        if installation_id is None:
            self._clients.clear()
            self.graphql.forget()
            self._warm.clear()
        else:
            self._clients.pop(installation_id, None)
            self.graphql.forget(installation_id)
            self._warm.discard(installation_id)

    async def call(
        self,
        method: str,
        url: str,
        *,
        installation_id: int | None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        route: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One REST call; ``installation_id=None`` authenticates as the App (JWT)."""
        if installation_id not in self._warm:
            # The first call fetches the token; concurrent first calls would each
            # fetch one, so they wait for it.
            lock = self._locks.setdefault(installation_id, asyncio.Lock())
            async with lock:
                if installation_id not in self._warm:
                    answer = await self._call(
                        method, url, installation_id, params, json, route, headers
                    )
                    self._warm.add(installation_id)
                    return answer
        return await self._call(method, url, installation_id, params, json, route, headers)

    async def _call(
        self,
        method: str,
        url: str,
        installation_id: int | None,
        params: Mapping[str, Any] | None,
        json: Any,
        route: str,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        for attempt in (1, 2):
            client = self._client(installation_id)
            try:
                response = await client.arequest(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=json,
                    headers={
                        "X-GitHub-Api-Version": API_VERSION,
                        "Accept": "application/vnd.github+json",
                        **(headers or {}),
                    },
                )
            except RateLimitExceeded as error:
                self._count(
                    method,
                    route,
                    error.response.status_code,
                    error.response.headers,
                    installation_id=installation_id,
                )
                raise Backoff(
                    error.retry_after.total_seconds() or 60.0, "GitHub rate limit", waiting=True
                ) from None
            except RequestFailed as error:
                status = error.response.status_code
                self._count(
                    method, route, status, error.response.headers, installation_id=installation_id
                )
                if status == 401 and attempt == 1:
                    self.forget(installation_id)
                    continue
                if status >= 500:
                    raise Backoff(30.0, f"GitHub {status} after retries") from None
                message = _message(error.response.raw_response)
                if status == 404:
                    raise NotFound(status, message) from None
                raise GitHubError(status, message) from None
            except RequestError as error:
                raise Backoff(10.0, f"cannot reach GitHub: {error}") from None
            self._count(
                method,
                route,
                response.status_code,
                response.headers,
                installation_id=installation_id,
            )
            status = response.status_code
            data = response.raw_response.json() if response.content and status != 304 else None
            return Answer(status=response.status_code, headers=response.headers, data=data)
        raise GitHubError(401, "unauthorized after refreshing the installation token")

    def _count(
        self,
        method: str,
        route: str,
        status: int,
        headers: httpx.Headers,
        *,
        installation_id: int | None = None,
    ) -> None:
        # Only the caller's fixed route template, never the URL: the URL carries
        # repository names and shas, and these counters must stay bounded.
        self.stats.calls += 1
        key = f"{method} {route or 'unnamed'}"
        self.stats.by_route[key] = self.stats.by_route.get(key, 0) + 1
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None and remaining.isdigit():
            self.stats.rate_limit_remaining = int(remaining)
        self.budgets.note(installation_id, headers)
        if self._on_call:
            self._on_call(method, route, status)

    async def as_user(self, method: str, url: str, *, token: str, route: str) -> Answer:
        """One REST call with a user's access token (from the App's OAuth web flow).

        The token's access is what both the user and the App may do, on repositories
        where the App is installed; a repository the user cannot see answers 404.
        https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-with-a-github-app-on-behalf-of-a-user
        """
        client: GitHub[Any] = GitHub(
            TokenAuthStrategy(token),
            base_url=self._base_url,
            timeout=self._timeout,
            auto_retry=False,
            http_cache=False,
            async_transport=self._transport,
            user_agent="merge-gate",
        )
        try:
            response = await client.arequest(
                method,
                url,
                headers={
                    "X-GitHub-Api-Version": API_VERSION,
                    "Accept": "application/vnd.github+json",
                },
            )
        except RequestFailed as error:
            status = error.response.status_code
            self._count(method, route, status, error.response.headers)
            message = _message(error.response.raw_response)
            if status == 404:
                raise NotFound(status, message) from None
            raise GitHubError(status, message) from None
        except RequestError as error:
            raise GitHubError(502, f"cannot reach GitHub: {error}") from None
        self._count(method, route, response.status_code, response.headers)
        data = response.raw_response.json() if response.content else None
        return Answer(status=response.status_code, headers=response.headers, data=data)

    async def exchange_code(
        self, *, web_url: str, client_id: str, client_secret: str, code: str, redirect_uri: str
    ) -> str:
        """The user access token for an OAuth web-flow ``code`` (step 2 of the flow).

        GitHub answers 200 with ``error`` for a bad, expired or reused code.
        https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app#using-the-web-application-flow-to-generate-a-user-access-token
        """
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as http:
            try:
                response = await http.post(
                    f"{web_url.rstrip('/')}/login/oauth/access_token",
                    json={
                        "client_id": client_id,
                        "client_secret": client_secret,
                        "code": code,
                        "redirect_uri": redirect_uri,
                    },
                    headers={"Accept": "application/json", "User-Agent": "merge-gate"},
                )
            except httpx.HTTPError as error:
                raise GitHubError(502, f"cannot reach GitHub: {error}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, Mapping):
            raise GitHubError(response.status_code, f"code exchange: {response.text[:200]}")
        token = data.get("access_token")
        if response.status_code != 200 or not isinstance(token, str) or not token:
            why = str(data.get("error_description") or data.get("error"))[:200]
            raise GitHubError(response.status_code, f"code exchange refused: {why}")
        return token

    async def paginate(
        self,
        url: str,
        *,
        installation_id: int | None,
        params: Mapping[str, Any] | None = None,
        max_pages: int = 30,
        route: str = "",
    ) -> list[Any]:
        """Every item of a paged list: page 1, then the rest concurrently via Link rel=last.

        Never a silent cut: a list longer than ``max_pages`` raises :class:`ListCut`.
        """
        query = {"per_page": 100, **(params or {})}
        first = await self.call(
            "GET", url, installation_id=installation_id, params=query, route=route
        )
        items = _items(first.data)
        last = _last_page(first.headers.get("link", ""))
        if last is None or last <= 1:
            return items
        if last > max_pages:
            raise ListCut(route or url, last)
        pages = range(2, last + 1)
        answers = await asyncio.gather(
            *(
                self.call(
                    "GET",
                    url,
                    installation_id=installation_id,
                    params={**query, "page": p},
                    route=route,
                )
                for p in pages
            )
        )
        for answer in answers:
            items.extend(_items(answer.data))
        return items

    async def close(self) -> None:
        self._clients.clear()
        await self._transport.close()


class GraphQL:
    """GitHub's GraphQL endpoint, as an installation.

    https://docs.github.com/graphql/guides/forming-calls-with-graphql: one POST,
    answered 200 even when the query failed, with ``errors`` in the body; any
    ``errors`` is a failure here (partial data is never used). Not retried: the
    caller has a REST path and takes it at once. GraphQL's budget is its own
    (``x-ratelimit-resource: graphql``, in points), counted apart from REST's:
    while an installation has fewer points left than the reserve
    (:mod:`webhooks.budget`), no query is sent until the reset and its reads go by
    REST; jobs are not deferred for it (REST can still read everything).
    The token is the REST client's (one cache), so no extra token is minted.
    """

    def __init__(self, app: GitHubApp, on_count: Callable[[int, int], None] | None) -> None:
        self._app = app
        self._on_count = on_count
        self._clients: dict[int, GitHub[Any]] = {}
        #: Installation -> the reset (epoch seconds) of a GraphQL budget below the reserve.
        self._spent: OrderedDict[int, float] = OrderedDict()

    def forget(self, installation_id: int | None = None) -> None:
        if installation_id is None:
            self._clients.clear()
        else:
            self._clients.pop(installation_id, None)

    async def query(
        self, query: str, *, variables: Mapping[str, Any], installation_id: int, route: str
    ) -> Any:
        """One query as an installation: its ``data``, or :class:`GitHubError`.

        ``on_count``'s status is 0 for an answer refused for its ``errors`` or shape.
        """
        app = self._app
        until = self._spent.get(installation_id)
        if until is not None:
            if time.time() < until:
                raise GitHubError(429, f"GraphQL {route}: points nearly spent until {until:.0f}")
            del self._spent[installation_id]
        if installation_id not in app._warm:
            # The first request fetches the token (shared with REST's client).
            lock = app._locks.setdefault(installation_id, asyncio.Lock())
            async with lock:
                if installation_id not in app._warm:
                    data = await self._query(query, variables, installation_id, route)
                    app._warm.add(installation_id)
                    return data
        return await self._query(query, variables, installation_id, route)

    async def _query(
        self, query: str, variables: Mapping[str, Any], installation_id: int, route: str
    ) -> Any:
        client = self._client(installation_id)
        points = 0
        try:
            response = await client.arequest(
                "POST",
                self._url(),
                json={"query": query, "variables": dict(variables)},
                headers={"Accept": "application/json"},
            )
        except RequestFailed as error:
            status = error.response.status_code
            self._count(status, 0, error.response.headers, installation_id)
            if status == 401:
                self._app.forget(installation_id)
            raise GitHubError(status, f"GraphQL {route}") from None
        except (RateLimitExceeded, RequestError, GitHubException) as error:
            response_of = getattr(error, "response", None)
            if response_of is not None:
                self._count(response_of.status_code, 0, response_of.headers, installation_id)
            raise GitHubError(503, f"GraphQL {route}: {error}") from None
        status = response.status_code
        body = response.raw_response.json() if response.content else None
        cost = (body or {}).get("data", {}) if isinstance(body, Mapping) else {}
        limit = cost.get("rateLimit") if isinstance(cost, Mapping) else None
        if isinstance(limit, Mapping) and isinstance(limit.get("cost"), int):
            points = int(limit["cost"])
        if not isinstance(body, Mapping) or body.get("errors") or "data" not in body:
            self._count(0, points, response.headers, installation_id)
            errors = body.get("errors") if isinstance(body, Mapping) else None
            raise GitHubError(status, f"GraphQL {route}: {str(errors)[:300]}")
        self._count(status, points, response.headers, installation_id)
        return body["data"]

    def _url(self) -> str:
        """``/graphql``; on GitHub Enterprise Server, ``/api/graphql`` beside ``/api/v3``."""
        base = httpx.URL(self._app._base_url)
        path = base.path.rstrip("/")
        if path.endswith("/api/v3"):
            path = path.removesuffix("/v3")
        return str(base.copy_with(path=f"{path}/graphql", query=None))

    def _client(self, installation_id: int) -> GitHub[Any]:
        """A client that shares the REST client's token cache but never retries."""
        client = self._clients.get(installation_id)
        if client is None:
            app = self._app
            rest = app._client(installation_id)
            client = GitHub(
                AppInstallationAuthStrategy(app.app_id, app._key, installation_id),
                base_url=app._base_url,
                timeout=app._timeout,
                auto_retry=False,
                http_cache=False,
                cache_strategy=rest.config.cache_strategy,
                async_transport=app._transport,
                user_agent="merge-gate",
            )
            self._clients[installation_id] = client
        return client

    def _count(
        self, status: int, points: int, headers: httpx.Headers, installation_id: int
    ) -> None:
        stats = self._app.stats
        stats.graphql_calls += 1
        stats.graphql_points += points
        if not 200 <= status < 300:
            stats.graphql_failures += 1
        remaining, reset = headers.get("x-ratelimit-remaining"), headers.get("x-ratelimit-reset")
        if headers.get("x-ratelimit-resource") == "graphql" and remaining and remaining.isdigit():
            stats.graphql_remaining = int(remaining)
            if int(remaining) >= self._app.budgets.reserve:
                self._spent.pop(installation_id, None)
            elif reset and reset.isdigit():
                self._spent[installation_id] = float(reset)
                if len(self._spent) > MAX_CLIENTS:
                    self._spent.popitem(last=False)
        if self._on_count:
            self._on_count(status, points)


def _items(data: Any) -> list[Any]:
    return list(data) if isinstance(data, list) else []


def _last_page(link: str) -> int | None:
    """The page number of rel="last" in an RFC 8288 Link header."""
    for part in link.split(","):
        if 'rel="last"' in part:
            url = part.split(";")[0].strip().strip("<>")
            query = httpx.URL(url).params
            page = query.get("page")
            return int(page) if page and page.isdigit() else None
    return None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("message", ""))[:500] if isinstance(data, Mapping) else str(data)[:200]
