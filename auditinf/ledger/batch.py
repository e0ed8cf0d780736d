"""Stamp, hash and sign one batch of records for the sequencer.

Stamping is sequential — each body carries the leaf hash of the one before (``prev``) — and cheap.
Ed25519 signing (RFC 8032, ``cryptography``) is the dominant cost and releases the GIL, so a
large batch is signed in two halves at once: one on the writer thread, one on a helper thread.
"""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from .body import PreparedContent, stamp
from .keys import Signer

__all__ = ["StampedRecord", "stamp_batch", "BatchSigner"]

_PARALLEL_FROM = 16  # below this, handing half to another thread costs more than it saves


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


class BatchSigner:
    """Signs batches with ``signer``, two halves in parallel when the batch is large."""

    def __init__(self) -> None:
        self._helper: ThreadPoolExecutor | None = None

    def sign(self, signer: Signer, records: Sequence[StampedRecord]) -> list[str]:
        """Base64 Ed25519 signatures over each record's body, in order."""
        if len(records) < _PARALLEL_FROM:
            return _sign_all(signer, records)
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="auditinf-ledger-signer")
        half = len(records) // 2
        second = self._helper.submit(_sign_all, signer, records[half:])
        return _sign_all(signer, records[:half]) + second.result()

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None


def _sign_all(signer: Signer, records: Sequence[StampedRecord]) -> list[str]:
    return [base64.b64encode(signer.sign(r.body)).decode() for r in records]
