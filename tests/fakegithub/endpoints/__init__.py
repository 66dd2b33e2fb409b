"""The fake's REST endpoints; importing this package registers every route."""

from __future__ import annotations

from tests.fakegithub.endpoints import (
    actions,
    apps,
    checks,
    collaborators,
    contents,
    hooks,
    issues,
    orgs,
    pulls,
    rules,
    users,
)

__all__ = [
    "actions",
    "apps",
    "checks",
    "collaborators",
    "contents",
    "hooks",
    "issues",
    "orgs",
    "pulls",
    "rules",
    "users",
]
