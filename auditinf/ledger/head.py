"""The state a batch re-reads under the chain-head lock, in one statement.

Every batch (:meth:`~auditinf.ledger.store.Ledger._commit_batch`) must see what other writer
processes committed since its previous batch: the chain head, the key that must sign next (a key
event may have handed signing to another key) and the latest checkpoint. :func:`read_head` reads
all of it with one prebuilt statement of scalar subqueries (one round trip on PostgreSQL; on SQLite
one statement instead of four, with no per-batch statement construction or cache-key work).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from .checkpoints import CheckpointRow
from .keyevents import KeyEventRow
from .records import RECORDS

__all__ = ["Head", "read_head", "read_record_head"]

_CHECKPOINTS = CheckpointRow.__table__
_KEY_EVENTS = KeyEventRow.__table__


def _newest(column, order):  # noqa: ANN001, ANN202 - SQLAlchemy column expressions
    return select(column).order_by(order.desc()).limit(1).scalar_subquery()


_HEAD = select(
    _newest(RECORDS.c.seq, RECORDS.c.seq),
    _newest(RECORDS.c.leaf_hash, RECORDS.c.seq),
    _newest(_KEY_EVENTS.c.new_kid, _KEY_EVENTS.c.seq),
    _newest(_CHECKPOINTS.c.size, _CHECKPOINTS.c.size),
    _newest(_CHECKPOINTS.c.root_hash, _CHECKPOINTS.c.size),
    _newest(_CHECKPOINTS.c.note, _CHECKPOINTS.c.size),
)
_RECORD_HEAD = select(RECORDS.c.seq, RECORDS.c.leaf_hash).order_by(RECORDS.c.seq.desc()).limit(1)


@dataclass(frozen=True)
class Head:
    """What the store holds now: ``size`` records (the last one's leaf hash ``leaf``, hex), the key
    id ``kid`` that must sign next (``None``: no key event yet) and the latest checkpoint's
    ``checkpoint_size``, ``checkpoint_root`` (hex) and ``checkpoint_note`` (all ``None`` without a
    checkpoint)."""

    size: int
    leaf: str | None
    kid: str | None
    checkpoint_size: int | None
    checkpoint_root: str | None
    checkpoint_note: str | None


def read_head(conn: Connection) -> Head:
    """The :class:`Head` of the store ``conn`` is connected to (inside the caller's transaction;
    the store has its ``key_event`` and ``checkpoint`` tables, as a writable store does)."""
    seq, leaf, kid, size, root, note = conn.execute(_HEAD).one()
    return Head(0 if seq is None else seq + 1, leaf, kid, size, root, note)


def read_record_head(conn: Connection) -> tuple[int, str | None]:
    """``(records stored, the last one's leaf hash)``: the record table alone, for readers of
    stores that may predate the other tables."""
    row = conn.execute(_RECORD_HEAD).first()
    return (0, None) if row is None else (row[0] + 1, row[1])
