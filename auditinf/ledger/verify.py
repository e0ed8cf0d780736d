"""Offline verification of a ledger with only the verifier (public) key.

For each stored row, in ``seq`` order, the steps are:

1. ``seq`` is contiguous from 0 (a gap names the first missing seq: a deletion);
2. the body is RFC 8785 canonical — re-canonicalising its JSON gives the same bytes (an edit that
   keeps valid JSON but changes formatting is caught here);
3. the body's own ``seq`` equals the row's (rows moved or swapped);
4. the body's ``prev`` equals the leaf hash of the record before (32 zero bytes at seq 0);
5. the stored leaf hash equals SHA-256(0x00 ‖ body) (RFC 6962 §2.1);
6. the body's ``kid`` and the row's kid name a known key, and the Ed25519 signature over the body
   verifies (RFC 8032).

:func:`verify_rows` returns the number of records checked or raises
:class:`~auditinf.errors.VerificationError` with the first bad ``seq`` and the failed step.
Truncation of the newest records can only be caught against a size the auditor already holds
(``expected_size``); signed checkpoints make that routine.
"""

from __future__ import annotations

import base64
import json
from typing import Iterable, Protocol

from ..errors import VerificationError
from .canonical import GENESIS_PREV, canonical_bytes, leaf_hash
from .keys import Verifier

__all__ = ["verify_rows"]


class _Row(Protocol):
    seq: int
    leaf_hash: str
    body: bytes
    signature: str
    kid: str


def verify_rows(rows: Iterable[_Row], verifiers: dict[str, Verifier], *, expected_size: int | None = None) -> int:
    """Verify ``rows`` (in seq order) against ``verifiers`` (by kid). Returns the count checked."""
    expected_seq = 0
    prev = GENESIS_PREV
    for row in rows:
        seq = row.seq
        # 1. contiguous seq
        if seq != expected_seq:
            raise VerificationError(f"seq {expected_seq} is missing (next stored is {seq})",
                                    seq=expected_seq, step="contiguous_seq")
        # a BLOB edited with SQL text functions comes back as TEXT: still checked byte for byte
        body = row.body.encode() if isinstance(row.body, str) else bytes(row.body)
        # 2. canonical JSON
        try:
            parsed = json.loads(body)
            canonical = canonical_bytes(parsed)
        except (ValueError, TypeError) as exc:
            raise VerificationError(f"seq {seq}: body is not valid JSON", seq=seq, step="canonical_json") from exc
        except Exception as exc:  # rfc8785 raises its own errors for non-JCS values
            raise VerificationError(f"seq {seq}: body cannot be canonicalised: {type(exc).__name__}",
                                    seq=seq, step="canonical_json") from exc
        if canonical != body or not isinstance(parsed, dict):
            raise VerificationError(f"seq {seq}: body is not RFC 8785 canonical JSON", seq=seq, step="canonical_json")
        # 3. body seq
        if parsed.get("seq") != seq:
            raise VerificationError(f"seq {seq}: body says seq {parsed.get('seq')!r}", seq=seq, step="body_seq")
        # 4. chain link
        if parsed.get("prev") != prev:
            raise VerificationError(f"seq {seq}: prev does not match the leaf hash of seq {seq - 1}",
                                    seq=seq, step="prev_link")
        # 5. leaf hash
        computed = leaf_hash(body)
        if row.leaf_hash != computed:
            raise VerificationError(f"seq {seq}: stored leaf hash differs from SHA-256(0x00 || body)",
                                    seq=seq, step="leaf_hash")
        # 6. signature under the named key
        kid = parsed.get("kid")
        verifier = verifiers.get(kid) if isinstance(kid, str) else None
        if verifier is None or row.kid != kid:
            raise VerificationError(f"seq {seq}: signed by unknown key id {kid!r}", seq=seq, step="key_id")
        try:
            signature = base64.b64decode(row.signature, validate=True)
        except ValueError as exc:
            raise VerificationError(f"seq {seq}: signature is not base64", seq=seq, step="signature") from exc
        if not verifier.verify(signature, body):
            raise VerificationError(f"seq {seq}: Ed25519 signature does not verify", seq=seq, step="signature")
        prev = computed
        expected_seq += 1
    if expected_size is not None and expected_seq < expected_size:
        raise VerificationError(f"ledger has {expected_seq} records, fewer than the {expected_size} expected "
                                "(truncated)", seq=expected_seq, step="size")
    return expected_seq
