"""Routes, the per-request context handlers get, and GitHub-style errors and pages.

Routes are registered with :func:`route` under the description's own path
template, so the validator can be told which operation a request is (needed
where a parameter such as the contents ``{path}`` or a ``{branch}`` may
contain slashes, which openapi-core's own matcher cannot see).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlencode

from tests.fakegithub.auth import InstallationToken
from tests.fakegithub.models import App, Repo
from tests.fakegithub.state import GitHubState

#: "user": a user access token (OAuth web flow); "installation_or_user": either token.
AuthKind = Literal["app", "installation", "installation_or_user", "user", "none"]
T = TypeVar("T")

DOCS = "https://docs.github.com/rest"


class ApiError(Exception):
    """Answered with GitHub's error shape: ``{"message", "documentation_url", "errors"?}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: Sequence[Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            out["errors"] = self.errors
        out["status"] = str(self.status)
        return out


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def unprocessable(message: str, *, errors: Sequence[Any] | None = None) -> ApiError:
    return ApiError(422, message, errors=errors)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    #: Sent as-is instead of JSON (``application/vnd.github.raw`` contents).
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    """Everything a handler may use; handlers run with ``state.lock`` held."""

    state: GitHubState
    api: str
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    json: Any
    headers: Mapping[str, str]
    token: InstallationToken | None = None
    app: App | None = None
    #: The user of a user access token, and the App it was issued for.
    user: str | None = None
    user_app: App | None = None

    def int_query(self, name: str, default: int) -> int:
        try:
            return int(self.query[name])
        except (KeyError, ValueError):
            return default

    def body(self) -> dict[str, Any]:
        return self.json if isinstance(self.json, dict) else {}

    def repo(self) -> Repo:
        """The ``{owner}/{repo}`` of the path, if it exists and the token may see it.

        GitHub answers 404, not 403, for a repository the caller cannot see.
        """
        full_name = f"{self.params['owner']}/{self.params['repo']}"
        repo = self.state.repos.get(full_name.lower())
        if repo is None:
            raise not_found()
        if self.token is not None:
            inst = self.state.installations.get(self.token.installation_id)
            if inst is None or not inst.covers(repo.full_name):
                raise not_found()
            if self.token.repositories is not None and repo.name not in self.token.repositories:
                raise not_found()
        if self.user is not None:
            # A user-to-server token reaches what both the user and the App can.
            app_id = self.user_app.id if self.user_app else None
            installed = any(
                i.app_id == app_id and i.covers(repo.full_name)
                for i in self.state.installations.values()
            )
            if not installed or not self.state.oauth.can_read(
                repo.full_name, self.user, private=repo.private
            ):
                raise not_found()
        return repo

    def page(
        self, items: Sequence[T], *, default_per_page: int = 30, cap: int | None = None
    ) -> tuple[list[T], dict[str, str]]:
        """One page of ``items`` and the RFC 5988 ``Link`` header GitHub would send.

        ``per_page`` is clamped to 100 as GitHub does; ``cap`` is a hard limit
        on everything listed (3000 files of a pull request, 250 commits).
        """
        if cap is not None:
            items = items[:cap]
        per_page = min(max(self.int_query("per_page", default_per_page), 1), 100)
        page = max(self.int_query("page", 1), 1)
        last = max(1, math.ceil(len(items) / per_page))
        chunk = list(items[(page - 1) * per_page : page * per_page])
        rels: list[tuple[str, int]] = []
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels += [("first", 1), ("prev", min(page - 1, last))]
        if not rels:
            return chunk, {}
        return chunk, {
            "Link": ", ".join(f'<{self.url_with(page=n)}>; rel="{rel}"' for rel, n in rels)
        }

    def url_with(self, **changes: object) -> str:
        query = {**self.query, **{k: str(v) for k, v in changes.items()}}
        return f"{self.api}{self.path}?{urlencode(query)}"


Handler = Callable[[Ctx], Reply]
#: Given a request the description rejected, the answer GitHub itself would give
#: (e.g. 422 for 51 annotations), or ``None`` for the fake's plain 400.
InvalidHook = Callable[[Ctx], ApiError | None]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    auth: AuthKind
    regex: re.Pattern[str]
    on_invalid: InvalidHook | None = None

    @property
    def operation(self) -> str:
        return f"{self.method} {self.pattern}"


ROUTES: list[Route] = []


def _compile(pattern: str, greedy: Sequence[str]) -> re.Pattern[str]:
    out: list[str] = []
    pos = 0
    for m in re.finditer(r"\{([^}]+)\}", pattern):
        name = m.group(1)
        out.append(re.escape(pattern[pos : m.start()]))
        # Greedy parameters may hold slashes and may be empty: GET .../contents/
        # is the repository's root directory.
        out.append(f"(?P<{name}>.*)" if name in greedy else f"(?P<{name}>[^/]+)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(out) + "$")


def route(
    method: str,
    pattern: str,
    *,
    auth: AuthKind = "installation",
    greedy: Sequence[str] = (),
    on_invalid: InvalidHook | None = None,
) -> Callable[[Handler], Handler]:
    """Register a handler for the description's ``METHOD pattern``.

    ``greedy`` names parameters that may contain ``/`` (a file path, a branch
    such as ``feature/x``).
    """

    def register(handler: Handler) -> Handler:
        ROUTES.append(
            Route(method.upper(), pattern, handler, auth, _compile(pattern, greedy), on_invalid)
        )
        return handler

    return register


def match(method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
    for r in ROUTES:
        if r.method != method:
            continue
        m = r.regex.match(raw_path)
        if m:
            return r, {k: unquote(v) for k, v in m.groupdict().items()}
    return None
