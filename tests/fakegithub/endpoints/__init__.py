"""The fake's REST endpoints; importing this package registers every route."""

from __future__ import annotations

from tests.fakegithub.endpoints import (
    apps,
    checks,
    collaborators,
    contents,
    hooks,
    orgs,
    pulls,
    rules,
    users,
)

__all__ = [
    "apps",
    "checks",
    "collaborators",
    "contents",
    "hooks",
    "orgs",
    "pulls",
    "rules",
    "users",
]
