"""Offline verification of a ledger's records with only the initially trusted verifier key(s).

For each stored row, in ``seq`` order, the steps are:

1. ``seq`` is contiguous from 0 (a gap names the first missing seq: a deletion);
2. the body is RFC 8785 canonical — re-canonicalising its JSON gives the same bytes (an edit that
   keeps valid JSON but changes formatting is caught here);
3. the body's own ``seq`` equals the row's (rows moved or swapped);
4. the body's ``prev`` equals the leaf hash of the record before (32 zero bytes at seq 0);
5. the stored leaf hash equals SHA-256(0x00 ‖ body) (RFC 6962 §2.1);
6. the body's ``kid`` and the row's kid name the key valid at this seq — one of the trusted keys
   until the first key event, then the key each event hands over to (a retired key fails with step
   ``retired_key``, any other with ``key_id``) — and the Ed25519 signature over the body verifies
   (RFC 8032);
7. a key-event record must be well formed and carry the incoming key's proof of possession
   (:mod:`.keyevents`).

:func:`verify_rows` returns the number of records checked or raises
:class:`~auditinf.errors.VerificationError` with the first bad ``seq`` and the failed step.
:class:`ChainVerifier` does the same one row at a time and keeps what a caller checking
checkpoints needs: the leaf hashes and which key signed which seq range.

Step 2 uses :func:`.canonical.parse_canonical` (an orjson fast path checked against ``rfc8785``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from ..errors import VerificationError
from .canonical import GENESIS_PREV, is_canonical, parse_canonical
from .keyevents import KEY_EVENT_KIND, check_key_event
from .keys import Verifier

__all__ = ["ChainVerifier", "HashChainVerifier", "KeySpan", "verify_rows", "is_canonical"]


def check_seq(expected: int, seq: int) -> None:
    """Step 1: rows arrive with contiguous ``seq`` from 0; a gap names the first missing seq."""
    if seq != expected:
        raise VerificationError(f"seq {expected} is missing (next stored is {seq})", seq=expected,
                                step="contiguous_seq")


def row_body(body: bytes | str) -> bytes:
    """The stored body as bytes (a BLOB edited with SQL text functions comes back as TEXT: it is
    still checked byte for byte)."""
    return body.encode() if isinstance(body, str) else bytes(body)


def check_leaf(seq: int, stored: str, body: bytes) -> tuple[bytes, str]:
    """Step 5: the stored leaf hash (hex) equals SHA-256(0x00 ‖ body) (RFC 6962 §2.1); returns
    the leaf hash as bytes and as hex."""
    digest = hashlib.sha256(b"\x00" + body).digest()
    computed = digest.hex()
    if stored != computed:
        raise VerificationError(f"seq {seq}: stored leaf hash differs from SHA-256(0x00 || body)",
                                seq=seq, step="leaf_hash")
    return digest, computed


class _Row(Protocol):
    seq: int
    leaf_hash: str
    body: bytes
    signature: str
    kid: str


@dataclass(frozen=True)
class KeySpan:
    """Key ``kid`` signed records ``first_seq`` … ``last_seq`` (inclusive)."""

    kid: str
    verifier_key: str
    first_seq: int
    last_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"kid": self.kid, "verifier_key": self.verifier_key, "first_seq": self.first_seq,
                "last_seq": self.last_seq}


class ChainVerifier:
    """Streaming verifier: :meth:`feed` rows in seq order, then :meth:`finish`."""

    def __init__(self, trusted: dict[str, Verifier]) -> None:
        self.size = 0
        self.prev = GENESIS_PREV
        self.leaves: list[bytes] = []
        self._valid = dict(trusted)
        self._retired: set[str] = set()
        self._trusted = list(trusted.values())
        self._spans: list[list[Any]] = []  # [kid, Verifier, first, last]
        self._handover: dict[int, Verifier] = {}  # size after a key event → incoming key

    def feed(self, row: _Row) -> None:
        """Check one row (steps 1–7); raises :class:`VerificationError`."""
        seq = row.seq
        check_seq(self.size, seq)  # 1. contiguous seq
        body = row_body(row.body)
        # 2. canonical JSON
        try:
            parsed = parse_canonical(body)
        except (ValueError, RecursionError) as exc:
            raise VerificationError(f"seq {seq}: body is not valid JSON", seq=seq, step="canonical_json") from exc
        if not isinstance(parsed, dict):
            raise VerificationError(f"seq {seq}: body is not RFC 8785 canonical JSON", seq=seq, step="canonical_json")
        # 3. body seq
        if parsed.get("seq") != seq or isinstance(parsed.get("seq"), bool):
            raise VerificationError(f"seq {seq}: body says seq {parsed.get('seq')!r}", seq=seq, step="body_seq")
        # 4. chain link
        if parsed.get("prev") != self.prev:
            raise VerificationError(f"seq {seq}: prev does not match the leaf hash of seq {seq - 1}",
                                    seq=seq, step="prev_link")
        digest, computed = check_leaf(seq, row.leaf_hash, body)  # 5. leaf hash
        # 6. signature under the key valid at this seq
        kid = parsed.get("kid")
        verifier = self._valid.get(kid) if isinstance(kid, str) else None
        if verifier is None or row.kid != kid:
            if kid in self._retired:
                raise VerificationError(f"seq {seq}: signed by retired key {kid}", seq=seq, step="retired_key")
            raise VerificationError(f"seq {seq}: signed by unknown key id {kid!r}", seq=seq, step="key_id")
        try:
            signature = base64.b64decode(row.signature, validate=True)
        except (ValueError, binascii.Error, TypeError) as exc:
            raise VerificationError(f"seq {seq}: signature is not base64", seq=seq, step="signature") from exc
        if not verifier.verify(signature, body):
            raise VerificationError(f"seq {seq}: Ed25519 signature does not verify", seq=seq, step="signature")
        if self._spans and self._spans[-1][0] == kid:
            self._spans[-1][3] = seq
        else:
            self._spans.append([kid, verifier, seq, seq])
        # 7. key event: the incoming key alone signs from the next seq
        if parsed.get("kind") == KEY_EVENT_KIND:
            incoming = check_key_event(parsed, seq)
            self._retired.update(self._valid)
            self._retired.discard(incoming.kid)
            self._valid = {incoming.kid: incoming}
            self._handover[seq + 1] = incoming
        self.prev = computed
        self.leaves.append(digest)
        self.size += 1

    def finish(self, expected_size: int | None = None) -> int:
        """The number of records verified; raises step ``size`` when fewer than ``expected_size``."""
        if expected_size is not None and self.size < expected_size:
            raise VerificationError(f"ledger has {self.size} records, fewer than the {expected_size} expected "
                                    "(truncated)", seq=self.size, step="size")
        return self.size

    def key_spans(self) -> list[KeySpan]:
        """Which key signed which seq range, in order (what an audit bundle publishes)."""
        return [KeySpan(kid, verifier.verifier_key, first, last) for kid, verifier, first, last in self._spans]

    def known_keys(self) -> list[Verifier]:
        """Every key met so far: the trusted ones and those key events handed over to."""
        keys = {v.kid: v for v in self._trusted}
        keys.update((v.kid, v) for v in self._handover.values())
        return list(keys.values())

    def keys_for_size(self, size: int) -> list[Verifier]:
        """Keys that may sign a checkpoint of ``size`` records: the key that signed record
        ``size - 1``, and the incoming key when that record is a key event."""
        if size == 0:
            return list(self._trusted)
        keys = [verifier for _kid, verifier, first, last in self._spans if first <= size - 1 <= last]
        if size in self._handover:
            keys.append(self._handover[size])
        return keys


class HashChainVerifier:
    """The hash-only pass (steps 1, 4 and 5, no JSON parsing, no signatures): contiguous seq, the
    RFC 6962 leaf hash of each body, and the body carrying ``"prev":"<previous leaf hash>"``. On its
    own it proves nothing against someone who rewrites every body; its worth is the leaves, whose
    Merkle roots :func:`~.audit.audit` compares with the signed checkpoints — one signature per
    checkpoint instead of one per record. Checkpoints are checked against every trusted key
    (key events are not read: give every key with ``--pubkey``)."""

    def __init__(self, trusted: dict[str, Verifier]) -> None:
        self.size = 0
        self.prev = GENESIS_PREV
        self.leaves: list[bytes] = []
        self._trusted = list(trusted.values())

    def feed(self, row: _Row) -> None:
        """Check one row; raises :class:`VerificationError`."""
        seq = row.seq
        check_seq(self.size, seq)
        body = row_body(row.body)
        if b'"prev":"'  + self.prev.encode() + b'"' not in body:
            raise VerificationError(f"seq {seq}: prev does not match the leaf hash of seq {seq - 1}",
                                    seq=seq, step="prev_link")
        digest, self.prev = check_leaf(seq, row.leaf_hash, body)
        self.leaves.append(digest)
        self.size += 1

    finish = ChainVerifier.finish

    def key_spans(self) -> list[KeySpan]:
        return []

    def keys_for_size(self, _size: int) -> list[Verifier]:
        return list(self._trusted)

    def known_keys(self) -> list[Verifier]:
        return list(self._trusted)


def verify_rows(rows: Iterable[_Row], verifiers: dict[str, Verifier], *, expected_size: int | None = None) -> int:
    """Verify ``rows`` (in seq order) against the trusted ``verifiers`` (by kid); returns the count
    checked. Raises :class:`VerificationError` naming the first bad seq and the step."""
    chain = ChainVerifier(verifiers)
    for row in rows:
        chain.feed(row)
    return chain.finish(expected_size)
