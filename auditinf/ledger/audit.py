"""The full offline audit of a ledger — a live database or an exported bundle — with only trusted keys.

Steps, each failing with a :class:`~auditinf.errors.VerificationError` that the report turns into
``first_bad_seq`` + ``step``:

1. every record, in seq order (:class:`.verify.ChainVerifier`: contiguous seq, RFC 8785 bodies,
   ``prev`` links, RFC 6962 leaf hashes, Ed25519 signatures under the key valid at each seq, key events);
2. every stored checkpoint, in size order: a C2SP tlog-checkpoint for this log's origin, signed by
   the key valid at its size; not larger than the log (``truncated``: records it covers are gone);
   its root equal to the RFC 6962 root recomputed from the verified leaf hashes
   (``checkpoint_root``); and an RFC 9162 §2.1.4 consistency proof from the previous checkpoint,
   generated from the leaves and verified against the two signed roots (``consistency``);
3. the checkpoint the auditor kept (``--checkpoint``), the same way: a log smaller than a
   checkpoint it once signed was truncated or rolled back to an earlier backup.

A checkpoint whose signed root disagrees with the verified records means the history was rewritten
by someone holding the signing key; ``first_bad_seq`` is then the first record not covered by an
earlier, matching checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

from ..errors import VerificationError
from .keys import Verifier
from .merkle import verify_consistency
from .note import Checkpoint, NoteError, NoteVerifier, open_checkpoint
from .tree import MerkleTree
from .verify import ChainVerifier, HashChainVerifier, KeySpan

__all__ = ["StoredCheckpoint", "AuditSource", "AuditReport", "audit", "checkpoint_size"]


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint as a source stores it: the signed note, and the size/root columns beside it."""

    size: int
    note: str
    root_hash: str | None = None


class AuditSource(Protocol):
    """What :func:`audit` reads: records in seq order and checkpoints in size order."""

    description: str

    def rows(self) -> Iterable[Any]: ...

    def checkpoints(self) -> Iterable[StoredCheckpoint]: ...

    def count(self) -> int | None: ...


@dataclass
class AuditReport:
    """The outcome: ``ok`` or the first failure (``first_bad_seq``, ``step``, ``reason``)."""

    source: str
    ok: bool = True
    records: int = 0
    checkpoints: int = 0
    latest_checkpoint: dict | None = None
    held_checkpoint: dict | None = None
    keys: list[KeySpan] = field(default_factory=list)
    first_bad_seq: int | None = None
    step: str | None = None
    reason: str | None = None
    checkpoint: int | None = None  # size of the checkpoint involved in the failure
    extra: dict = field(default_factory=dict)
    notes: dict[int, tuple[str, Checkpoint]] = field(default_factory=dict, repr=False)  # verified, by size

    def fail(self, exc: VerificationError, checkpoint: int | None = None) -> "AuditReport":
        self.ok, self.first_bad_seq, self.step, self.reason, self.checkpoint = (
            False, exc.seq, exc.step, exc.message, checkpoint)
        return self

    def to_dict(self) -> dict[str, Any]:
        out = {"ok": self.ok, "source": self.source, "records": self.records, "checkpoints": self.checkpoints,
               "latest_checkpoint": self.latest_checkpoint, "held_checkpoint": self.held_checkpoint,
               "keys": [k.to_dict() for k in self.keys], **self.extra}
        if not self.ok:
            out.update(first_bad_seq=self.first_bad_seq, step=self.step, reason=self.reason,
                       checkpoint=self.checkpoint)
        return out


def checkpoint_size(note: str | bytes) -> int:
    """The tree size line of a checkpoint note, before its signature is checked (to pick the key
    valid at that size). Raises :class:`VerificationError` (step ``checkpoint_signature``)."""
    text = note.decode("utf-8", "replace") if isinstance(note, bytes) else note
    lines = text.split("\n")
    if len(lines) < 3 or not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise VerificationError("checkpoint has no canonical tree size line", seq=None, step="checkpoint_signature")
    return int(lines[1])


class _Checkpoints:
    """Step 2/3 state: the verified tree and the last verified checkpoint."""

    def __init__(self, chain: ChainVerifier, origin: str) -> None:
        self.chain = chain
        self.origin = origin
        self.tree = MerkleTree(chain.leaves)
        self.last: Checkpoint | None = None

    def open(self, note: str | bytes) -> Checkpoint:
        size = checkpoint_size(note)
        raw = note.encode() if isinstance(note, str) else note
        # beyond the verified records the key valid at ``size`` is unknown: any key met may have signed
        valid = self.chain.keys_for_size(size) if size <= self.chain.size else self.chain.known_keys()
        keys = [NoteVerifier.from_log_key(v) for v in valid]
        try:
            checkpoint, _ = open_checkpoint(raw, self.origin, keys)
        except NoteError as exc:
            raise VerificationError(f"checkpoint of size {size}: {exc.message}", seq=None,
                                    step="checkpoint_signature") from exc
        if checkpoint.size > self.chain.size:
            raise VerificationError(f"a signed checkpoint covers {checkpoint.size} records, the log holds "
                                    f"{self.chain.size} (truncated or rolled back)", seq=self.chain.size,
                                    step="truncated")
        if self.tree.root(checkpoint.size) != checkpoint.root:
            first = self.last.size if self.last is not None else 0
            raise VerificationError(f"checkpoint of size {checkpoint.size}: signed root differs from the records'",
                                    seq=first, step="checkpoint_root")
        return checkpoint

    def check_stored(self, stored: StoredCheckpoint) -> Checkpoint:
        checkpoint = self.open(stored.note)
        if stored.size != checkpoint.size or (stored.root_hash is not None and stored.root_hash != checkpoint.root.hex()):
            raise VerificationError(f"checkpoint of size {stored.size}: stored size/root differ from its note",
                                    seq=None, step="checkpoint_row")
        last = self.last
        if last is not None:
            if checkpoint.size <= last.size:
                raise VerificationError(f"checkpoint sizes not increasing ({last.size} then {checkpoint.size})",
                                        seq=None, step="checkpoint_order")
            if last.size > 0:  # RFC 9162 §2.1.4.2 between successive signed roots
                proof = self.tree.consistency_proof(last.size, checkpoint.size)
                verify_consistency(last.size, checkpoint.size, last.root, checkpoint.root, proof)
        self.last = checkpoint
        return checkpoint


def _describe(checkpoint: Checkpoint | None) -> dict | None:
    return None if checkpoint is None else {"size": checkpoint.size, "root_hash": checkpoint.root.hex()}


def audit(source: AuditSource, trusted: dict[str, Verifier], origin: str, *, held: bytes | None = None,
          expected_size: int | None = None, progress: Callable[[int], None] | None = None,
          progress_every: int = 1000, hash_only: bool = False) -> AuditReport:
    """Run steps 1–3 over ``source`` with the ``trusted`` initial keys (by kid) for the log
    ``origin`` (its checkpoints' first line); ``held`` is a checkpoint note the auditor kept.
    ``progress(n)`` is called every ``progress_every`` records. With ``hash_only`` step 1 is
    :class:`~.verify.HashChainVerifier` (no record signatures; the signed checkpoints carry the
    proof). Never raises :class:`VerificationError`: failures are in the report."""
    report = AuditReport(source.description)
    if hash_only:
        report.extra["mode"] = "hash-only"
    chain = (HashChainVerifier if hash_only else ChainVerifier)(trusted)
    try:
        for row in source.rows():
            chain.feed(row)
            if progress is not None and chain.size % progress_every == 0:
                progress(chain.size)
        report.records = chain.finish(expected_size)
    except VerificationError as exc:
        report.records = chain.size
        report.keys = chain.key_spans()
        return report.fail(exc)
    if progress is not None:
        progress(chain.size)
    report.keys = chain.key_spans()
    state = _Checkpoints(chain, origin)
    size = None
    try:
        for stored in source.checkpoints():
            size = stored.size
            report.notes[stored.size] = (stored.note, state.check_stored(stored))
            report.checkpoints += 1
        report.latest_checkpoint = _describe(state.last)
        if held is not None:
            size = None
            size = checkpoint_size(held)
            report.held_checkpoint = _describe(state.open(held))
    except VerificationError as exc:
        report.latest_checkpoint = _describe(state.last)
        return report.fail(exc, checkpoint=size)
    return report
