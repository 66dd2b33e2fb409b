"""On whose behalf an agent worked: the human who asked does not approve the result.

An agent's pull request is someone's request. Whoever delegated the work shaped
it and wants it merged, so their approval is not the independent review the
policy asks for. GitHub and the commits say who that is in several ways, each
recorded with where it came from:

- ``co-author``: a human ``Co-authored-by`` trailer on an agent's commits
  (https://docs.github.com/pull-requests/committing-changes-to-your-project/creating-and-editing-commits/creating-a-commit-with-multiple-authors);
- ``assignee``: a human assigned to an agent's pull request: a coding agent that
  takes an issue opens its pull request assigned to the person who handed it over
  (https://docs.github.com/copilot/using-github-copilot/coding-agent);
- ``trailer``: ``Agent-Logs-Url`` / ``Agent-Session-Id`` / ``Requested-by`` trailers of
  the pull request's description or commits, naming the session and its requester;
- ``policy``: the policy's ``agents.delegates`` mapping (agent login or glob -> human).

Pure: the edge passes the facts in :class:`gate.model.PullSnapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable

import re2

from gate import identity
from gate.model import PullSnapshot
from gate.policy import Policy
from gate.result import Delegate

#: Trailer keys (lower case) naming an agent session's logs, its id, or its requester.
LOGS_KEYS = frozenset({"agent-logs-url"})
SESSION_KEYS = frozenset({"agent-session-id", "session-id", "agent-session"})
#: (Not ``On-behalf-of``: GitHub uses it for the organization a commit is made for.)
REQUESTER_KEYS = frozenset({"requested-by", "delegated-by"})
_LOGIN = re2.compile(r"@?([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\b")
_MAX_TRAILERS = 200


def trailers(text: str) -> list[tuple[str, str]]:
    """``Key: value`` lines of a commit message or description (key lower case).

    Like :func:`webhooks.reader.co_authors_of`, parsed without regular expressions.
    """
    found: list[tuple[str, str]] = []
    for line in text.splitlines()[:2000]:
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key and " " not in key and value.strip():
            found.append((key, value.strip()[:500]))
            if len(found) >= _MAX_TRAILERS:
                break
    return found


def _session(pairs: Iterable[tuple[str, str]]) -> tuple[str, str]:
    session = logs = ""
    for key, value in pairs:
        if key in SESSION_KEYS and not session:
            session = value
        elif key in LOGS_KEYS and not logs:
            logs = value
    if logs and not session:  # the logs URL names the session: its last path segment
        session = logs.rstrip("/").rsplit("/", 1)[-1]
    return session, logs


def find(*, policy: Policy, pull: PullSnapshot) -> tuple[Delegate, ...]:
    """Every human an agent's pull request says it was done for (none for a human PR)."""
    agents = policy.agents
    governed = identity.governance(agents=agents, govern_humans=False, pull=pull)
    if not governed.agent:
        return ()
    session, logs = _session(pull.trailers)
    found: dict[str, Delegate] = {}

    def add(login: str, source: str) -> None:
        if not login or identity.is_agent(agents, login):
            return
        found.setdefault(login.lower(), Delegate(login, source, session, logs))

    people = [pull.author, *sorted(pull.commit_authors)]
    for pattern, human in agents.delegates.items():
        program = identity.login_matcher((pattern,))
        if program is not None and any(program.match(p) for p in people if p):
            add(human.lstrip("@"), "policy")
    for key, value in pull.trailers:
        if key in REQUESTER_KEYS:
            match = _LOGIN.match(value)
            if match:
                add(str(match.group(1)), "trailer")
    for co in pull.co_authors:
        login = identity.noreply_login(co.email)
        if login:
            add(login, "co-author")
    if identity.is_agent(agents, pull.author, pull.author_type):
        for login in sorted(pull.assignees):
            add(login, "assignee")
    if not found and (session or logs):
        # The session is known even when its requester is not: keep it for the trace.
        return (Delegate("", "trailer", session, logs),)
    return tuple(found.values())


def logins(found: Iterable[Delegate]) -> frozenset[str]:
    return frozenset(d.login for d in found if d.login)
