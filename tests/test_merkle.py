"""RFC 9162 Merkle trees (gate.merkle) against published vectors and a naive model.

Known answers are the Certificate Transparency reference data (RFC 6962 hashing, which
RFC 9162 keeps): the 8 leaf inputs, the root of every prefix, and the inclusion and
consistency proofs, as published in transparency-dev/merkle (testonly/constants.go,
proof/verify_test.go), which carries them over from google/certificate-transparency.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # size 0
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",  # size 8
    )
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (leaf index, tree size, audit path); verify_test.go numbers leaves from 1.
INCLUSION = [
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
# (old size, new size, consistency proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


# --- a naive model: RFC 9162 §2.1 written as recursion, straight from the text ---------


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: list[bytes]) -> bytes:
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = split(len(entries))
    return hashlib.sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def path(m: int, entries: list[bytes]) -> list[bytes]:
    if len(entries) == 1:
        return []
    k = split(len(entries))
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def subproof(m: int, entries: list[bytes], complete: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if complete else [mth(entries)]
    k = split(n)
    if m <= k:
        return [*subproof(m, entries[:k], complete), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]


def tree_of(entries: list[bytes]) -> MerkleTree:
    return MerkleTree(leaf_hash(e) for e in entries)


# --- known answers ---------------------------------------------------------------------


def test_hashing_primitives() -> None:
    assert ROOTS[0] == EMPTY_ROOT
    assert leaf_hash(b"") == ROOTS[1] == hashlib.sha256(b"\x00").digest()
    assert node_hash(leaf_hash(b""), leaf_hash(b"\x00")) == ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    leaves = [leaf_hash(e) for e in LEAVES[:size]]
    assert mth(LEAVES[:size]) == ROOTS[size]  # the naive model agrees with the vectors
    assert root_hash(leaves) == ROOTS[size]
    assert tree_of(LEAVES).root(size) == ROOTS[size]
    assert tree_of(LEAVES[:size]).root() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_reference_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    tree = tree_of(LEAVES)
    assert tree.inclusion_proof(index, size) == proof
    leaf = leaf_hash(LEAVES[index])
    verify_inclusion(index=index, size=size, leaf=leaf, proof=proof, root=ROOTS[size])
    # Corruptions in the spirit of the reference tests: each must fail.
    bad = [
        (index + 1, size, leaf, proof, ROOTS[size]),
        (index ^ 2, size, leaf, proof, ROOTS[size]),
        (index, size * 2, leaf, proof, ROOTS[size]),
        (index, size // 2, leaf, proof, ROOTS[size]),
        (index, size, leaf_hash(b"WrongLeaf"), proof, ROOTS[size]),
        (index, size, leaf, proof, EMPTY_ROOT),
        (index, size, leaf, [*proof, ROOTS[size]], ROOTS[size]),
        (index, size, leaf, [ROOTS[size], *proof], ROOTS[size]),
        (index, size, leaf, proof[:-1], ROOTS[size]),
        *[
            (
                index,
                size,
                leaf,
                [*proof[:i], bytes([p[0] ^ 8]) + p[1:], *proof[i + 1 :]],
                ROOTS[size],
            )
            for i, p in enumerate(proof)
        ],
    ]
    for i, s, lf, pf, root in bad:
        with pytest.raises(ProofError):
            verify_inclusion(index=i, size=s, leaf=lf, proof=pf, root=root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_reference_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    tree = tree_of(LEAVES)
    assert tree.consistency_proof(old, new) == proof
    verify_consistency(
        old_size=old, new_size=new, old_root=ROOTS[old], new_root=ROOTS[new], proof=proof
    )
    if not proof:
        return
    bad = [
        (old - 1, new, ROOTS[old], ROOTS[new], proof),
        (old + 1, new, ROOTS[old], ROOTS[new], proof),
        (old, new * 2, ROOTS[old], ROOTS[new], proof),
        (old, new, ROOTS[new], ROOTS[old], proof),
        (old, new, ROOTS[old], ROOTS[new], []),
        (old, new, ROOTS[old], ROOTS[new], [*proof, ROOTS[old]]),
        (old, new, ROOTS[old], ROOTS[new], [ROOTS[new], *proof]),
        (old, new, ROOTS[old], ROOTS[new], proof[:-1]),
        *[
            (
                old,
                new,
                ROOTS[old],
                ROOTS[new],
                [*proof[:i], bytes([p[0] ^ 16]) + p[1:], *proof[i + 1 :]],
            )
            for i, p in enumerate(proof)
        ],
    ]
    for o, n, r1, r2, pf in bad:
        with pytest.raises(ProofError):
            verify_consistency(old_size=o, new_size=n, old_root=r1, new_root=r2, proof=pf)


def test_consistency_edge_cases() -> None:
    verify_consistency(old_size=0, new_size=0, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT, proof=[])
    verify_consistency(old_size=0, new_size=5, old_root=EMPTY_ROOT, new_root=ROOTS[5], proof=[])
    with pytest.raises(ProofError):  # time travel
        verify_consistency(old_size=2, new_size=1, old_root=ROOTS[2], new_root=ROOTS[1], proof=[])
    with pytest.raises(ProofError):  # equal sizes, different roots: a fork
        verify_consistency(old_size=3, new_size=3, old_root=ROOTS[3], new_root=ROOTS[4], proof=[])
    with pytest.raises(ProofError):  # equal sizes need no proof
        verify_consistency(
            old_size=1, new_size=1, old_root=ROOTS[1], new_root=ROOTS[1], proof=[EMPTY_ROOT]
        )


def test_inclusion_edge_cases() -> None:
    leaf = leaf_hash(b"data")
    verify_inclusion(index=0, size=1, leaf=leaf, proof=[], root=leaf)
    for index, size in ((0, 0), (1, 1), (2, 1)):
        with pytest.raises(ProofError):
            verify_inclusion(index=index, size=size, leaf=leaf, proof=[], root=leaf)
    with pytest.raises(ProofError):
        verify_inclusion(index=0, size=1, leaf=b"", proof=[], root=b"")
    with pytest.raises(ProofError):
        MerkleTree([leaf]).inclusion_proof(1)
    with pytest.raises(ProofError):
        MerkleTree([leaf]).consistency_proof(2)


# --- against the naive model, every shape ----------------------------------------------


def test_every_proof_for_every_size_up_to_40_matches_the_model() -> None:
    entries = [bytes([i, i * 7 % 256]) for i in range(40)]
    tree = tree_of(entries)
    for size in range(1, len(entries) + 1):
        prefix = entries[:size]
        root = mth(prefix)
        assert tree.root(size) == root
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == path(index, prefix)
            verify_inclusion(
                index=index, size=size, leaf=leaf_hash(entries[index]), proof=proof, root=root
            )
        for old in range(1, size):
            proof = tree.consistency_proof(old, size)
            assert proof == subproof(old, prefix, True)
            verify_consistency(
                old_size=old, new_size=size, old_root=mth(entries[:old]), new_root=root, proof=proof
            )


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(st.binary(max_size=8), min_size=1, max_size=300),
    data=st.data(),
)
def test_random_trees(entries: list[bytes], data: st.DataObject) -> None:
    tree = tree_of(entries)
    size = data.draw(st.integers(1, len(entries)))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    root = tree.root(size)
    assert root == mth(entries[:size])
    proof = tree.inclusion_proof(index, size)
    assert (
        root_from_inclusion_proof(
            index=index, size=size, leaf=leaf_hash(entries[index]), proof=proof
        )
        == root
    )
    consistency = tree.consistency_proof(old, size)
    verify_consistency(
        old_size=old, new_size=size, old_root=tree.root(old), new_root=root, proof=consistency
    )
    # A forged tree (one entry changed) is not consistent with the real one.
    forged = list(entries[:size])
    victim = data.draw(st.integers(0, size - 1))
    forged[victim] = forged[victim] + b"!"
    forged_tree = tree_of(forged)
    if 0 < old < size and victim < old:
        with pytest.raises(ProofError):
            verify_consistency(
                old_size=old,
                new_size=size,
                old_root=tree.root(old),
                new_root=forged_tree.root(size),
                proof=forged_tree.consistency_proof(old, size),
            )


def test_compact_range_matches_the_tree_at_every_size() -> None:
    compact = CompactRange()
    tree = MerkleTree()
    for i in range(1100):
        leaf = leaf_hash(i.to_bytes(4, "big"))
        compact.append(leaf)
        tree.append(leaf)
        assert compact.size == tree.size == i + 1
        if i % 37 == 0 or i in (255, 256, 1023, 1024):
            assert compact.root() == tree.root()
    # Never more hashes than bits in the size.
    assert len(compact._hashes) == bin(compact.size).count("1")


def test_a_hundred_thousand_leaves_quickly() -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(100_000)]
    tree = MerkleTree(leaves)
    assert tree.root() == root_hash(leaves)
    proof = tree.inclusion_proof(54_321)
    assert len(proof) == 17
    verify_inclusion(index=54_321, size=100_000, leaf=leaves[54_321], proof=proof, root=tree.root())
    old = tree.root(65_537)
    verify_consistency(
        old_size=65_537,
        new_size=100_000,
        old_root=old,
        new_root=tree.root(),
        proof=tree.consistency_proof(65_537),
    )
