"""The hook's policy cache: each base policy parsed once, then read as plain JSON.

Key: the policy's git blob sha (``builtin`` without a file) and a digest of the code
that gives a policy its meaning (``gate/policy.py``, ``gate/defaults.py``) and of the
view's format, so an upgrade never reads a stale entry. A cache miss parses the text
with the merge gate's own parser (:func:`gate.defaults.load_policy`), which is the only
path that imports pydantic; a corrupt entry is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from gate.agents.view import VIEW_VERSION, LoadedView, from_json, to_json

_SOURCES = ("policy.py", "defaults.py")


class PolicyUnreadable(Exception):
    """The base branch's policy does not parse: the hook denies until it is fixed."""


def _code_digest() -> str:
    import gate

    here = Path(gate.__file__).parent
    digest = hashlib.sha256(f"view {VIEW_VERSION}".encode())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def cache_key(blob: str) -> str:
    return f"{blob or 'builtin'}-{_code_digest()}"


def parse_view(*, text: str | None, blob: str, ref: str) -> LoadedView:
    """Parse with the merge gate's parser; raises ``PolicyUnreadable`` naming the first error."""
    from gate.agents.view import view_of
    from gate.defaults import load_policy
    from gate.policy import POLICY_PATH, InvalidPolicy

    try:
        loaded = load_policy(text, blob=blob)
    except InvalidPolicy as error:
        first = error.errors[0].format(f"{ref}:{POLICY_PATH}")
        more = f" (and {len(error.errors) - 1} more)" if len(error.errors) > 1 else ""
        raise PolicyUnreadable(
            f"the policy on the base ref does not parse: {first}{more}"
        ) from None
    return view_of(loaded)


def cached_policy(*, text: str | None, blob: str, ref: str, cache_dir: Path | None) -> LoadedView:
    """The view of the base policy, from the cache when it is there."""
    if cache_dir is None:
        return parse_view(text=text, blob=blob, ref=ref)
    path = cache_dir / f"{cache_key(blob if text is not None else '')}.json"
    try:
        return from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError):
        pass
    view = parse_view(text=text, blob=blob, ref=ref)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(to_json(view)), encoding="utf-8")
        os.replace(partial, path)  # atomic: a concurrent reader sees all or nothing
    except OSError:
        pass  # a cache that cannot be written only costs time
    return view
