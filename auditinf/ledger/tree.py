"""An append-only RFC 6962 Merkle tree that keeps every completed subtree hash.

:mod:`.merkle` defines the tree and verifies proofs; it computes roots and proofs from the full
list of leaves, O(n) hashing per call. This module produces the *same* roots and proofs
(property-tested against :mod:`.merkle`) from stored completed subtrees, so a request costs
O(log² n) hash operations and an append O(1) amortised:

- level ``l`` holds the hashes of the complete, aligned subtrees of ``2^l`` leaves: node ``i`` of
  level ``l`` covers leaves ``[i·2^l, (i+1)·2^l)``; level 0 holds the leaf hashes themselves;
- every node of the RFC 6962 tree of size n (splitting at the largest power of two smaller than
  the range) covers a range ``[start, end)`` whose start is aligned to the largest power of two
  not above ``end − start``, so its hash folds the range's binary decomposition into completed
  subtrees from the right (RFC 9162 §2.1.1).

Memory: about 64 bytes per leaf (two 32-byte hashes). Thread-safe: one lock guards every read
and mutation.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Iterable, Sequence

from .merkle import EMPTY_ROOT, node_hash

__all__ = ["MerkleTree", "root_of"]

_H = 32


def _split(n: int) -> int:
    """Largest power of two smaller than ``n`` (n ≥ 2), RFC 6962 §2.1."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of ``leaves`` computed level by level — pair neighbours, carry an odd last node up
    unchanged — which builds exactly the RFC 6962 left-balanced tree; for a one-off root over
    many leaves (no proofs), about twice as fast as building a :class:`MerkleTree`."""
    if not leaves:
        return EMPTY_ROOT
    sha256, level = hashlib.sha256, list(leaves)
    while len(level) > 1:
        paired = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return level[0]


class MerkleTree:
    """Completed subtree hashes of an append-only list of 32-byte leaf hashes."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self._lock = threading.Lock()
        self.extend(leaves)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    # -- mutation ------------------------------------------------------------------------------
    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (32 bytes)."""
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order; raises ``ValueError`` for one that is not 32 bytes."""
        with self._lock:
            levels = self._levels
            for leaf in leaves:
                if len(leaf) != _H:
                    raise ValueError("a leaf hash is 32 bytes")
                index = self._size
                levels[0] += leaf
                level = 0
                while index & 1:  # a right child completes its parent: carry upwards
                    row = levels[level]
                    parent = node_hash(bytes(row[-2 * _H:-_H]), bytes(row[-_H:]))
                    if len(levels) == level + 1:
                        levels.append(bytearray())
                    levels[level + 1] += parent
                    index >>= 1
                    level += 1
                self._size += 1

    def truncate(self, size: int) -> None:
        """Forget every leaf from ``size`` on (an uncommitted batch that failed)."""
        with self._lock:
            if not 0 <= size <= self._size:
                raise ValueError(f"cannot truncate a tree of {self._size} leaves to {size}")
            for level, row in enumerate(self._levels):
                del row[(size >> level) * _H:]
            self._size = size

    # -- reads ---------------------------------------------------------------------------------
    def leaf(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        with self._lock:
            self._check(index + 1)
            return bytes(self._levels[0][index * _H:(index + 1) * _H])

    def leaves(self, start: int, end: int) -> list[bytes]:
        """Leaf hashes ``[start, end)``."""
        with self._lock:
            self._check(end)
            if not 0 <= start <= end:
                raise ValueError(f"bad leaf range [{start}, {end})")
            row = self._levels[0]
            return [bytes(row[i * _H:(i + 1) * _H]) for i in range(start, end)]

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (all by default); SHA-256("") for none."""
        with self._lock:
            size = self._size if size is None else size
            self._check(size)
            return self._range(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) of RFC 6962 §2.1.1, leaf-to-root order."""
        with self._lock:
            self._check(size)
            if not 0 <= index < size:
                raise ValueError(f"leaf index {index} outside a tree of size {size}")
            path, start, end = [], 0, size
            while end - start > 1:
                k = _split(end - start)
                if index < start + k:
                    path.append(self._range(start + k, end))
                    end = start + k
                else:
                    path.append(self._range(start, start + k))
                    start += k
            return path[::-1]

    def consistency_proof(self, first: int, size: int) -> list[bytes]:
        """PROOF(first, D[size]) of RFC 6962 §2.1.2 for 0 < first < size."""
        with self._lock:
            self._check(size)
            if not 0 < first < size:
                raise ValueError(f"consistency proofs exist for 0 < m < n, not m={first}, n={size}")
            path, start, end, m, complete = [], 0, size, first, True
            while m != end - start:
                k = _split(end - start)
                if m <= k:
                    path.append(self._range(start + k, end))
                    end = start + k
                else:
                    path.append(self._range(start, start + k))
                    start, m, complete = start + k, m - k, False
            if not complete:
                path.append(self._range(start, end))
            return path[::-1]

    # -- internals (lock held) -----------------------------------------------------------------
    def _check(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ValueError(f"tree has {self._size} leaves, not {size}")

    def _range(self, start: int, end: int) -> bytes:
        """Hash of the RFC 6962 node covering leaves ``[start, end)`` (end > start)."""
        pieces = []
        while start < end:
            level = (end - start).bit_length() - 1
            row = self._levels[level]
            index = start >> level
            pieces.append(bytes(row[index * _H:(index + 1) * _H]))
            start += 1 << level
        acc = pieces.pop()
        while pieces:
            acc = node_hash(pieces.pop(), acc)
        return acc
