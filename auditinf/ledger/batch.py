"""Stamp, hash and sign one batch of records for the sequencer.

Stamping is sequential — each body carries the leaf hash of the one before (``prev``) — and cheap.
Ed25519 signing (RFC 8032, ``cryptography``) is the dominant cost. It holds the GIL (two threads
signing take as long as one doing both halves, measured), so a batch is signed on the writer thread
alone; several writer processes are what use several cores.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Sequence

from .body import PreparedContent, stamp
from .keys import Signer

__all__ = ["StampedRecord", "stamp_batch", "sign_batch"]


@dataclass(frozen=True)
class StampedRecord:
    """A record ready to insert: ``seq``, canonical ``body``, its 32-byte leaf hash (RFC 6962 §2.1)."""

    seq: int
    body: bytes
    leaf: bytes


def stamp_batch(contents: Sequence[PreparedContent], *, base: int, prev: str, kid: str, ts: str) -> list[StampedRecord]:
    """Stamp ``contents`` as records ``base``, ``base + 1``, … chained from ``prev`` (hex leaf hash
    of record ``base − 1``, or the genesis value)."""
    out = []
    for offset, prepared in enumerate(contents):
        body = stamp(prepared, seq=base + offset, prev=prev, kid=kid, ts=ts)
        leaf = hashlib.sha256(b"\x00" + body).digest()
        prev = leaf.hex()
        out.append(StampedRecord(base + offset, body, leaf))
    return out


def sign_batch(signer: Signer, records: Sequence[StampedRecord]) -> list[str]:
    """Base64 Ed25519 signatures (RFC 8032) over each record's body, in order."""
    return [base64.b64encode(signer.sign(r.body)).decode() for r in records]
