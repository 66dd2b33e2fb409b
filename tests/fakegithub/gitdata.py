"""Git object ids, computed the way git computes them."""

from __future__ import annotations

import hashlib


def blob_sha(data: bytes) -> str:
    """The id git gives a blob: sha1 over ``blob <size>\\0`` and the bytes.

    Same as ``git hash-object``; GitHub reports it as ``sha`` in the contents
    API and in a pull request's file list.
    """
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def fake_sha(*seed: object) -> str:
    """A stable 40-hex commit id for a test that does not care which."""
    text = "\0".join(str(s) for s in seed)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
