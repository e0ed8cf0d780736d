"""Merkle tree over the ledger's leaf hashes: roots, inclusion and consistency proofs.

RFC 6962 §2.1 / RFC 9162 §2.1: MTH({}) = SHA-256(""); leaf = SHA-256(0x00 ‖ d) (the ledger's
leaf hash); node = SHA-256(0x01 ‖ left ‖ right), splitting n leaves at the largest power of two
smaller than n. Verifiers follow RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by
step, refuse any path element that is not exactly 32 bytes, and bound their work by the path
length a tree of that size can have (at most 64 elements). They return ``None`` or raise
:class:`~auditinf.errors.VerificationError`.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from ..errors import VerificationError

__all__ = ["EMPTY_ROOT", "node_hash", "root", "inclusion_proof", "consistency_proof", "verify_inclusion",
           "verify_consistency"]

EMPTY_ROOT = hashlib.sha256(b"").digest()
_MAX_PATH = 64


def node_hash(left: bytes, right: bytes) -> bytes:
    """Interior node hash, RFC 6962 §2.1."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of ``leaves`` (already leaf hashes, 32 bytes each)."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(root(leaves[:k]), root(leaves[k:]))


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 6962 §2.1.1, leaf to root order."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of size {n}")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(index, leaves[:k]) + [root(leaves[k:])]
    return inclusion_proof(index - k, leaves[k:]) + [root(leaves[:k])]


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def consistency_proof(first_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 6962 §2.1.2 for 0 < m < n."""
    if not 0 < first_size < len(leaves):
        raise ValueError(f"consistency proofs exist for 0 < m < n, not m={first_size}, n={len(leaves)}")
    return _subproof(first_size, leaves, True)


def _check_path(path: Sequence[bytes], what: str) -> None:
    if len(path) > _MAX_PATH:
        raise VerificationError(f"{what} path has {len(path)} elements, more than any tree allows",
                                seq=None, step=what)
    if any(not isinstance(p, bytes) or len(p) != 32 for p in path):
        raise VerificationError(f"{what} path element is not 32 bytes", seq=None, step=what)


def verify_inclusion(leaf_index: int, tree_size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes) -> None:
    """RFC 9162 §2.1.3.2: does ``path`` prove ``leaf`` at ``leaf_index`` in the tree with root
    ``expected_root`` and size ``tree_size``?"""
    _check_path(path, "inclusion")
    # 1. the index must be inside the tree (an aliasing index must never verify)
    if not 0 <= leaf_index < tree_size:
        raise VerificationError(f"leaf index {leaf_index} is not below tree size {tree_size}", seq=leaf_index,
                                step="inclusion")
    # 2.–3.
    fn, sn, r = leaf_index, tree_size - 1, leaf
    # 4.
    for p in path:
        if sn == 0:  # 4a: elements left over
            raise VerificationError("inclusion path is longer than the tree allows", seq=leaf_index, step="inclusion")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:  # 4c
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # 5.
    if sn != 0 or r != expected_root:
        raise VerificationError("inclusion proof does not lead to the root", seq=leaf_index, step="inclusion")


def verify_consistency(first_size: int, second_size: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: is the tree (``second_size``, ``second_root``) an append-only extension
    of (``first_size``, ``first_root``)? Size 0 proves nothing and is refused; equal sizes need
    equal roots and an empty path."""
    _check_path(path, "consistency")
    if first_size <= 0 or first_size > second_size:
        raise VerificationError(f"no consistency proof from size {first_size} to {second_size}", seq=None,
                                step="consistency")
    if first_size == second_size:
        if path or first_root != second_root:
            raise VerificationError("equal sizes need equal roots and an empty proof", seq=None, step="consistency")
        return
    # 1. an empty path proves nothing
    if not path:
        raise VerificationError("empty consistency proof", seq=None, step="consistency")
    # 2. a power-of-two first tree is itself the first node of the proof
    nodes = list(path)
    if first_size & (first_size - 1) == 0:
        nodes.insert(0, first_root)
    # 3.–4.
    fn, sn = first_size - 1, second_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # 5.
    fr = sr = nodes[0]
    # 6.
    for c in nodes[1:]:
        if sn == 0:
            raise VerificationError("consistency path is longer than the trees allow", seq=None, step="consistency")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # 7.
    if fr != first_root or sr != second_root or sn != 0:
        raise VerificationError("consistency proof does not match the two roots", seq=None, step="consistency")
