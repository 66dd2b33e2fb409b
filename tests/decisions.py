"""A signed, stored decision with everything a details page shows, for page tests.

File names, logins and reasons carry markup a pull request's author could choose:
pages must show them as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gate.defaults import load_policy
from gate.model import FileStatus
from gate.result import Decision
from tests.factories import HEAD, changed, decide, pull, review
from webhooks.keys import KeyRing, load_keyring
from webhooks.records import sign

SCRIPT = "<script>document.title='pwned'</script>"
IMG = '"><img src=x onerror="document.title=\'pwned\'">'
MARKDOWN = "[click](javascript:alert(1))"
HOSTILE_PATHS = (
    f"docs/{SCRIPT}.md",
    f"app/auth/{IMG}.py",
    f"app/{MARKDOWN}.py",
)
POLICY = """\
version: 1
tiers:
  - name: low
    paths: ["docs/**"]
    require: {approvals: 0}
  - name: medium
    require: {approvals: 1}
  - name: high
    paths: ["app/auth/**"]
    require: {approvals: 1, from: code_owners}
  - name: migrations
    paths: ["**/migrations/**"]
    require: {approvals: 1, from: code_owners, gates: [staged_rollout]}
    rollout: Apply to the staging database first, then to 10% of shards.
default_tier: medium
unseen_content_tier: medium
"""
CODEOWNERS = "/app/auth/ @acme/security\n/db/ @dba-lead\n"


def decision(*, author: str = "devin-ai-integration[bot]") -> Decision:
    files = [
        changed(".github/workflows/ci.yml"),
        changed("db/migrations/0042_drop_users.sql"),
        changed("app/auth/session.py"),
        changed("app/views.py", status=FileStatus.RENAMED, previous="app/old_views.py"),
        *(changed(path) for path in HOSTILE_PATHS),
    ]
    reviews = [
        review("alice", review_id=101),
        review(f"mallory{SCRIPT}", review_id=102, commit="b" * 40),
        review(author, review_id=103),
    ]
    return decide(
        load_policy(POLICY),
        pull(files, author=author, reviews=reviews),
        codeowners=CODEOWNERS,
        teams={"acme/security": ["alice"]},
    )


def stored(data_dir: Path, the_decision: Decision | None = None) -> tuple[dict[str, Any], KeyRing]:
    """``(stored record, keyring)`` as the worker stores it under ``decision/<id>``."""
    keyring = load_keyring(data_dir=data_dir)
    chosen = the_decision or decision()
    record = sign(
        chosen,
        keyring=keyring,
        evaluated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        delivery_id="d-1",
        app_id=1,
        installation_id=2,
    )
    return (
        {
            "decision": chosen.to_dict(),
            "envelope": record.envelope,
            "digest": record.digest,
            "at": "2026-01-02T03:04:05+00:00",
        },
        keyring,
    )


__all__ = ["HEAD", "HOSTILE_PATHS", "IMG", "MARKDOWN", "SCRIPT", "decision", "stored"]
