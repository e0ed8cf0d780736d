"""Canonical bytes, leaf hashes and salted commitments for audit records.

- Body bytes: RFC 8785 JSON Canonicalization Scheme (``rfc8785``). Integers beyond ±(2^53−1) are
  refused by JCS, so wei and uint256 values are carried as decimal strings.
- Leaf hash: SHA-256(0x00 ‖ body) — the RFC 6962 §2.1 leaf hash, also the ``prev`` link of the
  next record, so one stream is both a hash chain and the leaves of a Merkle tree.
- Commitment: SHA-256(domain tag ‖ 0x00 ‖ 32-byte salt ‖ content), with a fresh random salt, so a
  low-entropy input (a guessable approve call) cannot be confirmed by hashing candidates.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, NewType

import rfc8785

__all__ = ["LeafHash", "canonical_bytes", "leaf_hash", "commit", "GENESIS_PREV"]

LeafHash = NewType("LeafHash", str)
"""64 lowercase hex digits."""

GENESIS_PREV = LeafHash("00" * 32)


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 canonical JSON of ``obj``; raises ``rfc8785.CanonicalizationError`` on floats
    that are not finite or integers beyond 2^53."""
    return rfc8785.dumps(obj)


def leaf_hash(body: bytes) -> LeafHash:
    """RFC 6962 §2.1 leaf hash of ``body``, as hex."""
    return LeafHash(hashlib.sha256(b"\x00" + body).hexdigest())


def commit(tag: str, content: bytes, salt: bytes | None = None) -> tuple[str, bytes]:
    """Return (``sha256:<hex>`` commitment, salt) for ``content`` under domain ``tag``."""
    salt = os.urandom(32) if salt is None else salt
    digest = hashlib.sha256(tag.encode() + b"\x00" + salt + content).hexdigest()
    return f"sha256:{digest}", salt
