"""The ledger store: an append-only, hash-chained, signed sequence of audit records.

Backed by SQLModel/SQLAlchemy: SQLite by default (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``
so that appends from several processes serialise on the chain head), or PostgreSQL (a
transaction-scoped advisory lock on the chain head). An append returns only after its
transaction has committed; the caller sends its answer after that.

Each row keeps the exact canonical body bytes, their leaf hash, the Ed25519 signature over the
body and the key id. The body itself carries ``seq``, ``prev`` and ``kid``, so the chain verifies
from the bodies alone (see :mod:`.verify`).
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from sqlalchemy import LargeBinary, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Column, Field, Session, SQLModel, create_engine, select

from ..errors import LedgerError, NotFound
from .canonical import GENESIS_PREV, canonical_bytes, leaf_hash
from .keys import Signer

__all__ = ["RecordRow", "Receipt", "Ledger", "open_engine"]

_PG_LOCK_KEY = 0x6175_6469_7469_6E66  # "auditinf"


class RecordRow(SQLModel, table=True):
    """One stored record. ``body`` is the RFC 8785 canonical JSON, byte for byte."""

    __tablename__ = "record"

    seq: int = Field(primary_key=True)
    leaf_hash: str = Field(max_length=64, index=True)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signature: str = Field(max_length=128)
    kid: str = Field(max_length=16)


@dataclass(frozen=True)
class Receipt:
    """What the caller gets for a committed record: ``{seq, leaf_hash, signature, kid}``."""

    seq: int
    leaf_hash: str
    signature: str  # base64 Ed25519 signature over the body
    kid: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf_hash": self.leaf_hash, "signature": self.signature, "kid": self.kid}


def open_engine(url: str) -> Engine:
    """Create the engine for ``url``; SQLite gets WAL, synchronous=FULL and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001 - SQLAlchemy event signature
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


class Ledger:
    """Append and read audit records. Thread-safe; several processes may share one store."""

    def __init__(self, url: str, signer: Signer | None = None, *, create: bool = True) -> None:
        """Open (and with ``create``, initialise) the store at ``url``.

        With ``create=False`` (auditing) a missing store is an error, never an empty new ledger:
        raises :class:`LedgerError` (``ledger_not_found``).
        """
        self.url = url
        self.signer = signer
        if not create and url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).is_file():
            raise LedgerError(f"no ledger at {url}", code="ledger_not_found")
        try:
            self.engine = open_engine(url)
            if create:
                SQLModel.metadata.create_all(self.engine, tables=[RecordRow.__table__])
            elif not inspect(self.engine).has_table(RecordRow.__tablename__):
                raise LedgerError(f"no ledger table in {url}", code="ledger_not_found")
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open ledger store: {type(exc).__name__}") from exc
        self._lock = threading.Lock()

    def append(self, content: dict[str, Any], *, attach: Callable[[Session, int], None] | None = None) -> Receipt:
        """Stamp ``content`` with ``v``, ``seq``, ``prev``, ``kid`` and ``ts``, sign, and commit.

        ``attach(session, seq)``, when given, adds rows that belong to this record (e.g. the vault's
        sealed openings) to the same transaction: they commit with the record or not at all.

        Returns the receipt only after the commit (durable under SQLite ``synchronous=FULL`` /
        PostgreSQL's default). Raises :class:`LedgerError` if the record could not be committed;
        nothing is half-written (one transaction).
        """
        if self.signer is None:
            raise LedgerError("ledger opened without a signing key")
        with self._lock:
            try:
                with Session(self.engine) as session, session.begin():
                    if self.engine.dialect.name == "postgresql":
                        session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=_PG_LOCK_KEY))
                    head = session.exec(select(RecordRow.seq, RecordRow.leaf_hash)
                                        .order_by(RecordRow.seq.desc()).limit(1)).first()
                    seq, prev = (head[0] + 1, head[1]) if head else (0, GENESIS_PREV)
                    body = canonical_bytes({
                        **content, "v": 1, "seq": seq, "prev": prev, "kid": self.signer.kid,
                        "ts": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                    })
                    row = RecordRow(seq=seq, leaf_hash=leaf_hash(body), body=body,
                                    signature=base64.b64encode(self.signer.sign(body)).decode(), kid=self.signer.kid)
                    session.add(row)
                    if attach is not None:
                        attach(session, seq)
                    receipt = Receipt(seq, row.leaf_hash, row.signature, row.kid)
            except SQLAlchemyError as exc:
                raise LedgerError(f"audit record could not be committed: {type(exc).__name__}") from exc
        return receipt

    def get(self, seq: int) -> RecordRow:
        """The record at ``seq``; raises :class:`NotFound` (404 ``not_found``)."""
        with Session(self.engine) as session:
            row = session.get(RecordRow, seq)
        if row is None:
            raise NotFound(f"no record with seq {seq}")
        return row

    def size(self) -> int:
        """Number of records (``max(seq) + 1``; 0 when empty)."""
        with Session(self.engine) as session:
            head = session.exec(select(RecordRow.seq).order_by(RecordRow.seq.desc()).limit(1)).first()
        return 0 if head is None else head + 1

    def rows(self, batch: int = 1000) -> Iterator[RecordRow]:
        """Every row in ``seq`` order, streamed in batches."""
        last = -1
        while True:
            with Session(self.engine) as session:
                chunk = session.exec(select(RecordRow).where(RecordRow.seq > last)
                                     .order_by(RecordRow.seq).limit(batch)).all()
            if not chunk:
                return
            yield from chunk
            last = chunk[-1].seq

    def close(self) -> None:
        self.engine.dispose()
