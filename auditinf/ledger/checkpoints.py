"""Stored checkpoints: the ``checkpoint`` table and the rules for issuing and trusting one.

A checkpoint is a C2SP tlog-checkpoint (see :mod:`.note`) over the first ``size`` records: the
origin line (the log key's name, ``Settings.origin``), the decimal size, the base64 RFC 6962 root
— signed with the log key. The table keeps one row per size:

==========  =======================================================
size        INTEGER primary key: number of records covered
root_hash   TEXT: hex of the 32-byte RFC 6962 root at that size
note        TEXT: the full signed note, byte for byte as issued
created_at  TEXT: ISO-8601 UTC time of signing
==========  =======================================================

Rows are only ever inserted, inside the same transaction (and the same chain-head lock) as the
records they cover, so two writers can never sign different roots for one size.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Integer, select
from sqlalchemy.engine import Connection
from sqlmodel import Column, Field, SQLModel

from .keys import Signer
from .note import Checkpoint, sign_checkpoint

__all__ = ["CheckpointRow", "issue", "latest", "at", "ascending", "mismatch", "SIZE_TYPE"]

SIZE_TYPE = BigInteger().with_variant(Integer(), "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid


class CheckpointRow(SQLModel, table=True):
    """One signed checkpoint (see the module docstring for the columns)."""

    __tablename__ = "checkpoint"

    size: int = Field(sa_column=Column(SIZE_TYPE, primary_key=True, autoincrement=False))
    root_hash: str = Field(max_length=64)
    note: str
    created_at: str = Field(max_length=40)

    @property
    def root(self) -> bytes:
        """The 32-byte root hash."""
        return bytes.fromhex(self.root_hash)


_TABLE = CheckpointRow.__table__


def issue(conn: Connection, signer: Signer, size: int, root: bytes) -> CheckpointRow:
    """Sign the checkpoint (``size``, ``root``) with ``signer`` and insert it through ``conn``.

    Call inside the append transaction, holding the chain-head lock, after checking that no
    stored checkpoint of this size or larger exists.
    """
    note = sign_checkpoint(Checkpoint(signer.verifier.name, size, root), signer)
    row = {"size": size, "root_hash": root.hex(), "note": note,
           "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds")}
    conn.execute(_TABLE.insert(), row)
    return CheckpointRow(**row)


def _row(mapping) -> CheckpointRow:  # noqa: ANN001 - a SQLAlchemy RowMapping
    return CheckpointRow(**dict(mapping))


def latest(conn: Connection) -> CheckpointRow | None:
    """The stored checkpoint with the largest size, or ``None``."""
    found = conn.execute(select(_TABLE).order_by(_TABLE.c.size.desc()).limit(1)).mappings().first()
    return _row(found) if found else None


def at(conn: Connection, size: int) -> CheckpointRow | None:
    """The stored checkpoint of ``size``, or ``None``."""
    found = conn.execute(select(_TABLE).where(_TABLE.c.size == size)).mappings().first()
    return _row(found) if found else None


def ascending(conn: Connection, after: int, limit: int) -> list[CheckpointRow]:
    """Up to ``limit`` stored checkpoints with size > ``after``, smallest first."""
    rows = conn.execute(select(_TABLE).where(_TABLE.c.size > after).order_by(_TABLE.c.size).limit(limit))
    return [_row(m) for m in rows.mappings()]


def mismatch(row: CheckpointRow, tree_size: int, root_at) -> str | None:  # noqa: ANN001 - Callable[[int], bytes]
    """Why the stored tree (``tree_size`` leaves, ``root_at(size)`` its roots) contradicts the
    stored checkpoint ``row``, or ``None`` when it extends it.

    Checked: the tree has at least ``row.size`` records (fewer means a rollback, e.g. a restored
    backup, or deleted records); the root recomputed at that size equals ``row.root_hash`` (else
    the history forked or was edited); the note's text is the checkpoint of exactly that size and
    root (an edited ``note`` column).
    """
    if tree_size < row.size:
        return (f"the store holds {tree_size} records but checkpoint {row.size} was signed: "
                "records were removed or an older backup was restored")
    if root_at(row.size).hex() != row.root_hash:
        return f"the stored records do not hash to the root signed in checkpoint {row.size}"
    origin = row.note.split("\n", 1)[0]
    if not row.note.startswith(Checkpoint(origin, row.size, row.root).text() + "\n"):
        return f"the note of checkpoint {row.size} does not carry its size and root"
    return None
