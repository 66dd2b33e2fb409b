"""The fake's REST endpoints; importing this package registers every route."""

from __future__ import annotations

from tests.fakegithub.endpoints import (
    apps,
    checks,
    collaborators,
    contents,
    hooks,
    issues,
    orgs,
    pulls,
    rules,
)

__all__ = [
    "apps",
    "checks",
    "collaborators",
    "contents",
    "hooks",
    "issues",
    "orgs",
    "pulls",
    "rules",
]
