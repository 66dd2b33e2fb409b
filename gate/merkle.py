"""RFC 9162 Merkle trees: tree heads, inclusion proofs and consistency proofs.

Hashing (RFC 9162 §2.1.1, unchanged from RFC 6962 §2.1), with SHA-256:

- ``MTH({}) = SHA-256()``, ``MTH({d0}) = SHA-256(0x00 || d0)`` (the leaf hash);
- ``MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`` for the largest power of
  two ``k < n``.

Every tree head is then a fold of the perfect subtrees that make up ``n`` in binary,
which is what makes everything here cheap:

- :class:`CompactRange` keeps only those at most log2(n) subtree hashes, so appending
  and taking the root are O(log n) and need O(log n) memory (streaming verification);
- :class:`MerkleTree` keeps every perfect subtree hash (2n hashes, 64 bytes a leaf, in
  flat ``bytearray`` s), so any older root and any proof costs O(log^2 n) hash look-ups.

Proof generation follows RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF); verification
follows §2.1.3.2 and §2.1.4.2 step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or a request for a proof that cannot exist."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The right edge of an append-only tree: one hash per set bit of its size."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._size = 0
        # Perfect subtree roots, largest (leftmost) first; sizes are the set bits of _size.
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merges as many equal-sized subtrees as the carry says."""
        node = leaf
        size = self._size
        while size & 1:
            node = node_hash(self._hashes.pop(), node)
            size >>= 1
        self._hashes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._hashes:
            return EMPTY_ROOT
        node = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            node = node_hash(left, node)
        return node


def root_hash(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over a sequence of leaf hashes, in O(log n) memory."""
    compact = CompactRange()
    for leaf in leaf_hashes:
        compact.append(leaf)
    return compact.root()


class MerkleTree:
    """An append-only tree keeping every perfect subtree hash, for proofs of any size."""

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._size = 0
        # _levels[h] holds the hashes of the perfect subtrees of 2**h leaves, left to right.
        self._levels: list[bytearray] = [bytearray()]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> int:
        """Append a leaf hash; returns its index."""
        if len(leaf) != HASH_SIZE:
            raise ValueError("leaf hash must be 32 bytes")
        index = self._size
        self._levels[0] += leaf
        count, height = index + 1, 0
        while count % 2 == 0:  # a subtree just became perfect at the next height up
            level = self._levels[height]
            if height + 1 == len(self._levels):
                self._levels.append(bytearray())
            # node_hash(left, right) over the level's last 64 bytes, without slicing twice.
            self._levels[height + 1] += hashlib.sha256(b"\x01" + level[-64:]).digest()
            count //= 2
            height += 1
        self._size = index + 1
        return index

    def leaf(self, index: int) -> bytes:
        self._check(index, self._size, "leaf index")
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all)."""
        size = self._size if size is None else size
        self._check(size, self._size + 1, "tree size")
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size])."""
        size = self._size if size is None else size
        self._check(size, self._size + 1, "tree size")
        self._check(index, size, "leaf index")
        return self._path(index, 0, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:new_size]); empty when 0 or equal."""
        new_size = self._size if new_size is None else new_size
        self._check(new_size, self._size + 1, "tree size")
        self._check(old_size, new_size + 1, "old tree size")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    @staticmethod
    def _check(value: int, bound: int, what: str) -> None:
        if isinstance(value, bool) or not 0 <= value < bound:
            raise ProofError(f"{what} {value} out of range (must be below {bound})")

    def _perfect(self, height: int, index: int) -> bytes:
        level = self._levels[height]
        return bytes(level[index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _range(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range the RFC recursion produces (start aligned)."""
        parts: list[bytes] = []
        while start < end:
            height = (end - start).bit_length() - 1  # binary digits of the size, largest first
            if start % (1 << height):
                raise ValueError("range is not a subtree of the log")
            parts.append(self._perfect(height, start >> height))
            start += 1 << height
        node = parts[-1]
        for left in reversed(parts[:-1]):
            node = node_hash(left, node)
        return node

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self._range(start + k, end)]
        return [*self._path(m - k, start + k, end), self._range(start, start + k)]

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self._range(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self._range(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self._range(start, start + k)]


def root_from_inclusion_proof(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-5: the root an inclusion proof leads to."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} not in a tree of size {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise :class:`ProofError` unless ``leaf`` is at ``index``."""
    if root_from_inclusion_proof(index=index, size=size, leaf=leaf, proof=proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise :class:`ProofError` unless the new tree extends the old."""
    if not 0 <= old_size <= new_size:
        raise ProofError(f"old size {old_size} is not within new size {new_size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    if old_size == 0 or old_size == new_size:
        # Edge cases outside §2.1.4.2 (which assumes 0 < first < second): nothing to prove.
        if proof:
            raise ProofError("consistency proof must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("the empty tree's root is SHA-256 of nothing")
        if old_size == new_size and old_root != new_root:
            raise ProofError("trees of equal size have different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: an exact power of two
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ProofError("consistency proof does not match the roots")
