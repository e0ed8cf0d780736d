"""Transparency-log endpoints: signed checkpoints, inclusion proofs and consistency proofs.

- ``GET /v1/checkpoints/latest`` and ``GET /v1/checkpoints/{size}`` — a stored C2SP
  tlog-checkpoint (signed note), its size (records) and root.
- ``GET /v1/records/{seq}/proof?tree_size=N`` — RFC 6962 §2.1.1 inclusion proof of record
  ``seq`` against the checkpoint of size N (default: the latest, signed on the spot if none
  covers the record yet), with that checkpoint's signed note.
- ``GET /v1/consistency?from=M&to=N`` — RFC 6962 §2.1.2 consistency proof from the tree of M
  records to the checkpoint of size N (default: the latest).

**Encoding:** every hash (leaf hash, root hash, proof element) is 64 lowercase hex digits of a
32-byte SHA-256 value; the note carries the root in base64, as C2SP requires. Proof lists are
leaf-to-root, ready for RFC 9162 §2.1.3.2 / §2.1.4.2 verifiers
(:func:`auditinf.ledger.merkle.verify_inclusion`, :func:`~auditinf.ledger.merkle.verify_consistency`).

Errors: 404 ``checkpoint_not_found`` (no checkpoint of that size), 404 ``not_found`` (no such
record), 422 ``seq_not_in_tree`` (seq ≥ tree_size), 422 ``invalid_range`` (from = 0 or from > to),
503 ``ledger_inconsistent`` (the store contradicts its checkpoints; nothing is signed).

The router's lifespan runs the idle heartbeat — :meth:`Ledger.checkpoint_now` every
``checkpoint_every_s`` seconds (at most 600), which signs whenever records are not yet covered —
and signs a last checkpoint at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, AsyncIterator

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, Field

from ..errors import InputError, LedgerError, NotFound
from ..ledger import CheckpointRow, Ledger

__all__ = ["router", "CheckpointAnswer", "InclusionProofAnswer", "ConsistencyProofAnswer", "HEARTBEAT_MAX_S"]

log = logging.getLogger("auditinf.api")
HEARTBEAT_MAX_S = 600.0
_HASH = r"^[0-9a-f]{64}$"
_MAX = 2**63 - 1


class CheckpointAnswer(BaseModel):
    """A signed checkpoint (C2SP tlog-checkpoint)."""

    origin: str = Field(description="the log's identity: first line of the note, the signing key's name")
    size: int = Field(description="tree size: number of records covered")
    root_hash: str = Field(pattern=_HASH, description="RFC 6962 root, hex")
    note: str = Field(description="the signed note, byte for byte (origin, size, base64 root, signature lines)")
    created_at: str = Field(description="signing time, ISO-8601 UTC")


class InclusionProofAnswer(BaseModel):
    """Record ``seq`` is leaf ``seq`` of the tree the checkpoint signs."""

    seq: int
    leaf_hash: str = Field(pattern=_HASH, description="SHA-256(0x00 ‖ body), hex")
    tree_size: int
    proof: list[str] = Field(description="RFC 6962 audit path, leaf to root, each hex of 32 bytes")
    checkpoint: CheckpointAnswer


class ConsistencyProofAnswer(BaseModel):
    """The tree of ``to`` records extends the tree of ``from`` records (append-only)."""

    from_size: int = Field(alias="from")
    to_size: int = Field(alias="to")
    proof: list[str] = Field(description="RFC 6962 consistency proof, each hex of 32 bytes (empty when from = to)")
    from_checkpoint: CheckpointAnswer | None = Field(description="the stored checkpoint of size `from`, if any")
    checkpoint: CheckpointAnswer = Field(description="the checkpoint of size `to`")


def _ledger(request: Request) -> Ledger:
    return request.app.state.service.ledger


LedgerDep = Annotated[Ledger, Depends(_ledger)]
Size = Annotated[int, Path(ge=0, le=_MAX, description="tree size (records)")]


def _answer(row: CheckpointRow) -> dict:
    return {"origin": row.note.split("\n", 1)[0], "size": row.size, "root_hash": row.root_hash, "note": row.note,
            "created_at": row.created_at}


def _latest(ledger: Ledger) -> CheckpointRow:
    row = ledger.latest_checkpoint()
    if row is None:
        raise NotFound("no checkpoint has been signed yet", code="checkpoint_not_found")
    return row


async def _heartbeat(ledger: Ledger, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(ledger.checkpoint_now)
        except LedgerError as exc:
            log.warning("checkpoint heartbeat: %s", exc.code)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ledger: Ledger = app.state.service.ledger
    beat = asyncio.create_task(_heartbeat(ledger, min(ledger.checkpoint_every_s, HEARTBEAT_MAX_S)))
    try:
        yield
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        try:
            await asyncio.to_thread(ledger.checkpoint_now)  # shutdown: cover every record
        except LedgerError as exc:
            log.warning("shutdown checkpoint: %s", exc.code)


router = APIRouter(prefix="/v1", tags=["transparency log"], lifespan=_lifespan)
_ERRORS = {404: {"description": "checkpoint_not_found / not_found"},
           422: {"description": "seq_not_in_tree / invalid_range"},
           503: {"description": "ledger_inconsistent"}}


@router.get("/checkpoints/latest", response_model=CheckpointAnswer, responses=_ERRORS)
def latest_checkpoint(ledger: LedgerDep) -> dict:
    """The latest signed checkpoint; 404 ``checkpoint_not_found`` before the first one."""
    return _answer(_latest(ledger))


@router.get("/checkpoints/{size}", response_model=CheckpointAnswer, responses=_ERRORS)
def checkpoint(size: Size, ledger: LedgerDep) -> dict:
    """The signed checkpoint of ``size`` records; 404 ``checkpoint_not_found`` if none was signed."""
    return _answer(ledger.checkpoint_at(size))


@router.get("/records/{seq}/proof", response_model=InclusionProofAnswer, responses=_ERRORS)
def inclusion_proof(seq: Annotated[int, Path(ge=0, le=_MAX)], ledger: LedgerDep,
                    tree_size: Annotated[int | None, Query(ge=1, le=_MAX, description="a checkpoint's size")] = None
                    ) -> dict:
    """Inclusion proof (hex, leaf to root) of record ``seq`` against the checkpoint of ``tree_size``
    (default: the latest; one is signed now if none covers ``seq``)."""
    if tree_size is None:
        row, proof = ledger.covering_checkpoint(seq)
    else:
        row = ledger.checkpoint_at(tree_size)
        proof = ledger.inclusion_proof(seq, row.size)
    leaf = ledger.leaf_hashes(seq, seq + 1)[0]
    return {"seq": seq, "leaf_hash": leaf.hex(), "tree_size": row.size, "proof": [p.hex() for p in proof],
            "checkpoint": _answer(row)}


@router.get("/consistency", response_model=ConsistencyProofAnswer, response_model_by_alias=True, responses=_ERRORS)
def consistency_proof(ledger: LedgerDep, from_size: Annotated[int, Query(alias="from", ge=0, le=_MAX)],
                      to_size: Annotated[int | None, Query(alias="to", ge=0, le=_MAX)] = None) -> dict:
    """Consistency proof (hex) from the tree of ``from`` records to the checkpoint of ``to``
    (default: the latest). ``from`` must be 1 … ``to``; it need not be a checkpoint size. The range
    is checked before any checkpoint is looked up: 422 ``invalid_range`` for from = 0 or from > to."""
    if from_size == 0 or (to_size is not None and from_size > to_size):
        raise InputError(f"consistency range must satisfy 0 < from <= to (from={from_size}, to={to_size})",
                         code="invalid_range", field="from")
    row = _latest(ledger) if to_size is None else ledger.checkpoint_at(to_size)
    proof = ledger.consistency_proof(from_size, row.size)
    try:
        earlier = _answer(ledger.checkpoint_at(from_size))
    except NotFound:
        earlier = None
    return {"from": from_size, "to": row.size, "proof": [p.hex() for p in proof], "from_checkpoint": earlier,
            "checkpoint": _answer(row)}
