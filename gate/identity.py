"""Who is an AI coding agent, and whose approval can never count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import re2

from gate.globs import Program
from gate.model import PullSnapshot, UserType
from gate.policy import Agents

_NOREPLY = re2.compile(r"^(?:\d+\+)?([A-Za-z0-9-]+(?:\[bot\])?)@users\.noreply\.github\.com$")


@lru_cache(maxsize=256)
def _login_program(patterns: tuple[str, ...]) -> Program | None:
    """Case-insensitive matcher for login/e-mail patterns ('*' and '?' are wildcards)."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        escaped = "".join(
            "[^\\s]*" if c == "*" else "[^\\s]" if c == "?" else re2.escape(c) for c in pattern
        )
        parts.append(f"(?:{escaped})")
    return re2.compile("(?i)^(?:" + "|".join(parts) + ")$")  # type: ignore[no-any-return]


def _matches(patterns: tuple[str, ...], text: str) -> bool:
    program = _login_program(patterns)
    return program is not None and program.match(text) is not None


def is_bot(login: str, user_type: UserType | None = None) -> bool:
    return user_type is UserType.BOT or login.lower().endswith("[bot]")


def is_agent(agents: Agents, login: str, user_type: UserType | None = None) -> bool:
    if _matches(agents.exclude, login):
        return False
    return (agents.bots and is_bot(login, user_type)) or _matches(agents.logins, login)


def _coauthor_login(email: str) -> str | None:
    found = _NOREPLY.match(email.strip())
    return str(found.group(1)) if found else None


def noreply_login(email: str) -> str | None:
    """The login of a GitHub no-reply address (``123+login@users.noreply.github.com``)."""
    return _coauthor_login(email)


def login_matcher(patterns: tuple[str, ...]) -> Program | None:
    """A case-insensitive matcher for login globs ('*' and '?' are wildcards)."""
    return _login_program(patterns)


@dataclass(frozen=True, slots=True)
class Governance:
    governed: bool
    agent: bool
    reason: str


def governance(*, agents: Agents, govern_humans: bool, pull: PullSnapshot) -> Governance:
    """Whether the policy governs ``pull`` and why, in words for the summary."""
    if is_agent(agents, pull.author, pull.author_type):
        kind = "a Bot account" if is_bot(pull.author, pull.author_type) else "an agent identity"
        return Governance(True, True, f"author @{pull.author} is {kind}")
    labels = sorted(set(agents.labels) & pull.labels)
    if labels:
        return Governance(True, True, f"label {labels[0]!r} marks an agent PR")
    if agents.co_authors:
        for login in sorted(pull.commit_authors):
            if is_agent(agents, login):
                return Governance(True, True, f"commits authored by agent @{login}")
        for email in sorted(pull.commit_emails):
            email_login = _coauthor_login(email)
            if (email_login and is_agent(agents, email_login)) or _matches(
                agents.co_author_emails, email
            ):
                return Governance(True, True, f"commits authored by agent e-mail <{email}>")
        for co in pull.co_authors:
            trailer_login = _coauthor_login(co.email)
            if (trailer_login and is_agent(agents, trailer_login)) or _matches(
                agents.co_author_emails, co.email
            ):
                return Governance(
                    True, True, f"commits co-authored by agent {co.name} <{co.email}>"
                )
    if govern_humans:
        return Governance(True, False, f"author @{pull.author} is human; the policy governs humans")
    return Governance(False, False, f"author @{pull.author} is human; human PRs are not governed")


def never_counts(*, pull: PullSnapshot) -> dict[str, str]:
    """Lowercased logins whose approval never counts, with the reason."""
    out: dict[str, str] = {}

    def add(logins: Iterable[str], why: str) -> None:
        for login in logins:
            out.setdefault(login.lower(), why)

    add([pull.author], "the PR author")
    add(pull.pushers, "pushed commits to the PR")
    add(pull.commit_authors, "authored commits in the PR")
    add(filter(None, map(_coauthor_login, pull.commit_emails)), "authored commits in the PR")
    # A trailer names an identity by e-mail and free-text name: both count, so a
    # co-author cannot approve under the login the trailer names.
    add(filter(None, (_coauthor_login(c.email) for c in pull.co_authors)), "co-authored the PR")
    add((c.name for c in pull.co_authors if c.name and " " not in c.name), "co-authored the PR")
    add(pull.delegates, "delegated the work to the agent")
    return out


def ineligible(
    *, agents: Agents, login: str, user_type: UserType | None, excluded: Mapping[str, str]
) -> str | None:
    """Why ``login``'s approval cannot count, or None when it can."""
    if login.lower() in excluded:
        return excluded[login.lower()]
    if is_bot(login, user_type):
        return "a Bot account"
    if is_agent(agents, login, user_type):
        return "an agent identity"
    return None
