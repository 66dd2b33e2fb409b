"""The hook's policy cache: each base policy parsed once, then read as plain JSON.

Content-addressed: an entry's name is the SHA-256 of the exact policy text it was built
from and of the blob sha its citations name (``builtin`` without a file), and a digest
of the code that gives a policy its meaning (``gate/policy.py``, ``gate/defaults.py``)
and of the view's format. A changed base policy therefore has another name and is
parsed afresh on its first call; an upgrade never reads a stale entry.

The state directory may be within an agent's reach, so an entry is never trusted on
its name alone: it records the digest of the text it was built from, checked against
the text just read from the base ref, and carries an HMAC-SHA256 under a random key
kept beside it (mode 0600, created once). A directory that is not the user's own or is
writable by others is not read. Whatever fails (a missing key, a wrong MAC, a renamed,
truncated or edited entry) costs a rebuild with the merge gate's own parser
(:func:`gate.defaults.load_policy`), the only path that imports pydantic: tampering
with the cache can never change a decision.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

from gate.agents.view import VIEW_VERSION, LoadedView, from_json, to_json
from webhooks.commands.hook_client import private_dir

_SOURCES = ("policy.py", "defaults.py")
KEY_FILE = ".key"
_KEY_BYTES = 32


class PolicyUnreadable(Exception):
    """The base branch's policy does not parse: the hook denies until it is fixed."""


def _code_digest() -> str:
    import gate

    here = Path(gate.__file__).parent
    digest = hashlib.sha256(f"view {VIEW_VERSION}".encode())
    for name in _SOURCES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def source_digest(text: str | None, blob: str = "", path: str | None = None) -> str:
    """SHA-256 of the exact text an entry is built from, of the blob sha its citations
    name (``builtin`` for no policy) and, for a policy read from another file than the
    base ref's (the organisation's), of that file's path, which its citations name too."""
    if text is None:
        return "builtin"
    head = blob if path is None else f"{path}\0{blob}"
    return hashlib.sha256(f"{head}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


def cache_key(text: str | None, blob: str = "", path: str | None = None) -> str:
    return f"{source_digest(text, blob, path)}-{_code_digest()}"


def parse_view(*, text: str | None, blob: str, ref: str, path: str | None = None) -> LoadedView:
    """Parse with the merge gate's parser; raises ``PolicyUnreadable`` naming the first error.

    ``path``: the organisation's policy file, cited instead of ``ref:POLICY_PATH``."""
    from gate.agents.view import view_of
    from gate.defaults import load_policy
    from gate.policy import POLICY_PATH, InvalidPolicy

    try:
        loaded = (
            load_policy(text, blob=blob)
            if path is None
            else load_policy(text, blob=blob, path=path)
        )
    except InvalidPolicy as error:
        first = error.errors[0].format(f"{ref}:{POLICY_PATH}" if path is None else path)
        more = f" (and {len(error.errors) - 1} more)" if len(error.errors) > 1 else ""
        what = "the policy on the base ref" if path is None else "the organisation's policy"
        raise PolicyUnreadable(f"{what} does not parse: {first}{more}") from None
    return view_of(loaded)


def _read_key(directory: Path) -> bytes | None:
    """The cache's MAC key, or None when it is absent, not ours or not private."""
    try:
        fd = os.open(directory / KEY_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if info.st_uid != os.getuid() or info.st_mode & 0o077 or info.st_size != _KEY_BYTES:
            return None
        key = os.read(fd, _KEY_BYTES + 1)
    finally:
        os.close(fd)
    return key if len(key) == _KEY_BYTES else None


def _new_key(directory: Path) -> bytes | None:
    """Create the key once (``O_EXCL``, mode 0600); None when another process won or
    it cannot be written (the next call reads theirs)."""
    key = os.urandom(_KEY_BYTES)
    try:
        fd = os.open(directory / KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return None
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


def _mac(key: bytes, source: str, view: object) -> str:
    body = json.dumps([source, view], sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _load(path: Path, *, key: bytes, source: str) -> LoadedView | None:
    """The entry at ``path`` when it is whole, built from ``source`` and MAC'd by us."""
    try:
        entry = json.loads(path.read_bytes())
        view, mac = entry["view"], entry["mac"]
        if entry["source"] != source or not isinstance(mac, str):
            return None
        if not hmac.compare_digest(mac, _mac(key, source, view)):
            return None
        return from_json(view)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_policy(
    *, text: str | None, blob: str, ref: str, cache_dir: Path | None, path: str | None = None
) -> LoadedView:
    """The view of the policy ``text``, from the cache when a verified entry is there.

    ``path``: the organisation's policy file (None: the base ref's policy); it is part
    of the key, as its citations name it."""
    if cache_dir is None:
        return parse_view(text=text, blob=blob, ref=ref, path=path)
    source = source_digest(text, blob, path)
    entry_path = cache_dir / f"{cache_key(text, blob, path)}.json"
    key = _read_key(cache_dir) if private_dir(str(cache_dir)) else None
    if key is not None:
        found = _load(entry_path, key=key, source=source)
        if found is not None:
            return found
    view = parse_view(text=text, blob=blob, ref=ref, path=path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not private_dir(str(cache_dir)):
            return view
        key = key or _read_key(cache_dir) or _new_key(cache_dir)
        if key is None:
            return view
        data = to_json(view)
        entry = {"source": source, "view": data, "mac": _mac(key, source, data)}
        partial = entry_path.with_suffix(f".{os.urandom(6).hex()}.tmp")  # per writer, threads too
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(entry, out)
        os.replace(partial, entry_path)  # atomic: a concurrent reader sees all or nothing
    except OSError:
        pass  # a cache that cannot be written only costs time
    return view
