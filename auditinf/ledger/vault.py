"""The vault: openings of private commitments, encrypted per client, and crypto-shredding.

A private record's body carries only salted commitments, ``sha256:`` SHA-256(tag ‖ 0x00 ‖ salt ‖
content) (see :func:`.canonical.commit`). The vault keeps what opens them — salt ‖ content — in the
``sealed`` table, encrypted with AES-256-GCM (NIST SP 800-38D, 96-bit random nonce) under the
client's **data key**. The AAD is the RFC 8785 JSON of ``{client_id, commitment, field, key_id,
seq, tag}``, so a sealed row moved to another record, field or client does not decrypt. Data keys
are 256-bit random keys kept in ``data_key`` wrapped with AES key wrap (RFC 3394) under the
key-encryption key (:mod:`.kek`); each row names the KEK id it is wrapped under, and the
``kek_state`` row names the KEK new data keys are wrapped under (read, and on PostgreSQL share-locked,
inside each sealing transaction, so a running service follows a rotation made by another process).

Sealed rows are written inside the record's own append transaction (``Ledger.append(...,
attach=vault.writer(seal))``): a record and its openings commit together or not at all.

**Shredding** a client destroys its data keys (the wrapped key is overwritten with NULL, the row
kept as a tombstone) and deletes its sealed rows; records, signatures and checkpoints are untouched
and still verify, the commitments can no longer be opened. On SQLite the delete runs with
``PRAGMA secure_delete=ON``, then ``VACUUM`` rewrites the file and ``PRAGMA wal_checkpoint(TRUNCATE)``
empties the WAL, so no copy of the key or ciphertext stays in the database files. PostgreSQL gives
no such guarantee: deleted tuples stay in heap pages until VACUUM reuses them (never zeroed), and in
WAL segments, archives, replicas and base backups; the wrapped data key survives there, so on
PostgreSQL shredding is final only once the KEK that wrapped it is destroyed as well: that is
:func:`.kek_rotation.rotate_kek`, which ``auditinf shred`` runs by default.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from sqlalchemy import LargeBinary, delete, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Column, Field, Session, SQLModel, select

from ..errors import KeyFileError, LedgerError, NotFound, VerificationError
from .canonical import canonical_bytes, commit
from .kek import Kek, KekFiles, load_kek, load_or_create_kek
from .kek_rotation import KekStateRow, recover, state_kek_id

__all__ = ["DataKeyRow", "SealedRow", "PendingSeal", "Opening", "ShredReport", "Vault"]

_SALT_BYTES = 32
_NONCE_BYTES = 12


class DataKeyRow(SQLModel, table=True):
    """One client data key, wrapped (RFC 3394) under the KEK; ``wrapped`` is NULL once shredded."""

    __tablename__ = "data_key"

    key_id: str = Field(primary_key=True, max_length=32)
    client_id: str = Field(index=True, max_length=128)
    kek_id: str = Field(max_length=16)
    wrapped: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: str = Field(max_length=40)
    shredded_at: str | None = Field(default=None, max_length=40)


class SealedRow(SQLModel, table=True):
    """The encrypted opening (salt ‖ content) of one commitment of record ``seq``."""

    __tablename__ = "sealed"

    seq: int = Field(primary_key=True)
    field: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(index=True, max_length=32)
    tag: str = Field(max_length=64)
    commitment: str = Field(max_length=80)
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


@dataclass(frozen=True)
class _Item:
    field: str
    tag: str
    commitment: str
    salt: bytes
    content: bytes


@dataclass
class PendingSeal:
    """The commitments of one record still to be appended, with what opens them (kept in memory only)."""

    client_id: str
    items: list[_Item] = field(default_factory=list)

    def commit(self, field_path: str, tag: str, content: bytes) -> str:
        """Commit to ``content`` under domain ``tag`` with a fresh 32-byte salt; the opening is sealed
        at append time under ``field_path`` (dotted path of the ``{"commitment": …}`` object in the
        body, e.g. ``"input"`` or ``"analysis.decoded"``). Returns ``sha256:<hex>``."""
        commitment, salt = commit(tag, content)
        self.items.append(_Item(field_path, tag, commitment, salt, content))
        return commitment

    def salt_of(self, field_path: str) -> bytes:
        """The salt of the commitment made for ``field_path`` (raises ``KeyError`` if none)."""
        for item in self.items:
            if item.field == field_path:
                return item.salt
        raise KeyError(field_path)


@dataclass(frozen=True)
class Opening:
    """A disclosed commitment: the content, its salt, and the commitment it was checked against."""

    field: str
    tag: str
    commitment: str
    salt: bytes
    content: bytes

    def to_dict(self) -> dict[str, Any]:
        try:
            shown: Any = json.loads(self.content)
        except ValueError:
            shown = self.content.hex()
        return {"field": self.field, "tag": self.tag, "commitment": self.commitment, "salt": self.salt.hex(),
                "content": shown}


@dataclass(frozen=True)
class ShredReport:
    """What :meth:`Vault.shred` destroyed; ``files_scrubbed`` says whether the SQLite file and WAL
    were rewritten (false on PostgreSQL, see the module docstring)."""

    client_id: str
    data_keys: int
    sealed_rows: int
    files_scrubbed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "data_keys": self.data_keys, "sealed_rows": self.sealed_rows,
                "files_scrubbed": self.files_scrubbed}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _aad(row: SealedRow, client_id: str) -> bytes:
    return canonical_bytes({"v": "auditinf/sealed/v1", "client_id": client_id, "commitment": row.commitment,
                            "field": row.field, "key_id": row.key_id, "seq": row.seq, "tag": row.tag})


def _commitment_at(body: dict, path: str) -> Any:
    node: Any = body
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node.get("commitment") if isinstance(node, dict) else None


class Vault:
    """Per-client encrypted openings beside a ledger store (same database, same transactions)."""

    def __init__(self, engine: Engine, kek_file: Path, *, create: bool = False) -> None:
        """Open the vault whose KEK file is ``kek_file``: create the ``data_key``, ``sealed`` and
        ``kek_state`` tables if needed, finish or roll back a rotation a crash interrupted
        (:func:`.kek_rotation.recover`), and with ``create`` make the KEK file of a new vault.
        Raises :class:`LedgerError` (database) and :class:`KeyFileError` (a KEK file that is
        unsafe, or missing for a vault that has no state yet)."""
        self.engine = engine
        self.files = KekFiles(kek_file)
        self._keks: dict[str, Kek] = {}
        try:
            SQLModel.metadata.create_all(engine, tables=[DataKeyRow.__table__, SealedRow.__table__,
                                                         KekStateRow.__table__])
            with self.files.lock():
                if state_kek_id(engine) is None:
                    self._init_state(create)
                recover(engine, self.files)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot open the vault: {type(exc).__name__}") from exc

    def _init_state(self, create: bool) -> None:
        """First open of this database's vault: name the KEK its live data keys are wrapped under
        (a vault from before ``kek_state`` existed), else the KEK file's (made when ``create``)."""
        with Session(self.engine) as session:
            live = set(session.exec(select(DataKeyRow.kek_id)
                                    .where(DataKeyRow.wrapped.is_not(None))).all())  # type: ignore[union-attr]
        if len(live) > 1:
            raise LedgerError(f"data keys are wrapped under several KEKs {sorted(live)}", code="vault_inconsistent")
        kek_id = live.pop() if live else (load_or_create_kek if create else load_kek)(self.files.path).kek_id
        try:
            with Session(self.engine) as session, session.begin():
                session.add(KekStateRow(id=1, kek_id=kek_id))
        except IntegrityError:
            pass  # another process initialised it first

    # -- KEKs by id ----------------------------------------------------------------------------
    def kek(self, kek_id: str) -> Kek:
        """The KEK with id ``kek_id`` (cached; read from the KEK file or a rotation's pending file).
        Raises :class:`KeyFileError` when it is not there (rotated away, or the wrong file)."""
        kek = self._keks.get(kek_id)
        if kek is None:
            kek = self._keks[kek_id] = self.files.find(kek_id)
        return kek

    def forget(self, kek_id: str) -> None:
        """Drop a destroyed KEK from the cache (Python cannot promise its bytes leave memory)."""
        self._keks.pop(kek_id, None)

    def _current_kek(self, session: Session) -> Kek:
        """The KEK new data keys are wrapped under, per ``kek_state`` (share-locked on PostgreSQL so a
        rotation waits for this transaction, and this one for a rotation); read once per session."""
        kek_id = session.info.get("auditinf_kek_id")
        if kek_id is None:
            kek_id = session.exec(select(KekStateRow.kek_id).where(KekStateRow.id == 1)
                                  .with_for_update(read=True)).first()
            if kek_id is None:
                raise LedgerError("the vault has no KEK state", code="vault_inconsistent")
            session.info["auditinf_kek_id"] = kek_id
        return self.kek(kek_id)

    # -- sealing (inside the append transaction) ------------------------------------------------
    def _data_key(self, session: Session, client_id: str) -> tuple[str, bytes]:
        """The client's live data key (locked FOR UPDATE on PostgreSQL, so a concurrent shred waits),
        created when the client has none."""
        row = session.exec(select(DataKeyRow).where(DataKeyRow.client_id == client_id,
                                                    DataKeyRow.wrapped.is_not(None))  # type: ignore[union-attr]
                           .order_by(DataKeyRow.created_at).limit(1).with_for_update()).first()
        if row is not None:
            return row.key_id, self._unwrap(row)
        kek = self._current_kek(session)
        key = AESGCM.generate_key(bit_length=256)
        row = DataKeyRow(key_id=os.urandom(16).hex(), client_id=client_id, kek_id=kek.kek_id,
                         wrapped=aes_key_wrap(kek.key, key), created_at=_now())
        session.add(row)
        return row.key_id, key

    def _unwrap(self, row: DataKeyRow, kek: Kek | None = None) -> bytes:
        kek = kek or self.kek(row.kek_id)
        if row.kek_id != kek.kek_id:
            raise KeyFileError(f"data key {row.key_id} is wrapped under KEK {row.kek_id}, not {kek.kek_id}")
        try:
            return aes_key_unwrap(kek.key, row.wrapped)
        except InvalidUnwrap as exc:
            raise KeyFileError(f"data key {row.key_id} does not unwrap under KEK {kek.kek_id}") from exc

    def rewrap(self, session: Session, old: Kek, new: Kek) -> int:
        """Inside a rotation's transaction: wrap every live data key (locked FOR UPDATE on
        PostgreSQL) under ``new`` instead of ``old``; returns how many. Raises :class:`KeyFileError`
        for a key that is not wrapped under ``old``."""
        rows = session.exec(select(DataKeyRow).where(DataKeyRow.wrapped.is_not(None))  # type: ignore[union-attr]
                            .order_by(DataKeyRow.key_id).with_for_update()).all()
        for row in rows:
            row.wrapped, row.kek_id = aes_key_wrap(new.key, self._unwrap(row, old)), new.kek_id
            session.add(row)
        return len(rows)

    def writer(self, seal: PendingSeal) -> Callable[[Session, int], None]:
        """The ``attach`` hook for :meth:`Ledger.append`: encrypts and adds the openings of ``seal``
        for record ``seq`` in the append's own transaction."""

        def attach(session: Session, seq: int) -> None:
            if not seal.items:
                return
            key_id, key = self._data_key(session, seal.client_id)
            aead = AESGCM(key)
            for item in seal.items:
                row = SealedRow(seq=seq, field=item.field, key_id=key_id, tag=item.tag, commitment=item.commitment,
                                nonce=os.urandom(_NONCE_BYTES), ciphertext=b"")
                row.ciphertext = aead.encrypt(row.nonce, item.salt + item.content, _aad(row, seal.client_id))
                session.add(row)

        return attach

    # -- disclosure ----------------------------------------------------------------------------
    def disclose(self, seq: int, body: bytes) -> list[Opening]:
        """Decrypt the openings of record ``seq`` and check each against ``body`` (the record's
        canonical body, verified by the caller): the commitment stored with the opening must be the
        one at its field in the body, and SHA-256(tag ‖ 0x00 ‖ salt ‖ content) must equal it.

        Raises :class:`NotFound` (``not_found``: nothing sealed for ``seq``; ``content_shredded``:
        the client's data key was destroyed), :class:`KeyFileError` (wrong KEK) and
        :class:`VerificationError` (step ``commitment``: an opening that does not match).
        """
        parsed = json.loads(body)
        client_id = parsed.get("client_id")
        with Session(self.engine) as session:
            rows = session.exec(select(SealedRow).where(SealedRow.seq == seq).order_by(SealedRow.field)).all()
            keys = {k.key_id: k for k in session.exec(
                select(DataKeyRow).where(DataKeyRow.client_id == client_id)).all()} if isinstance(client_id, str) else {}
        if not rows:
            if any(k.wrapped is None for k in keys.values()):
                raise NotFound(f"record {seq}: the content of client {client_id!r} was shredded", code="content_shredded")
            raise NotFound(f"record {seq} has no sealed content")
        openings = []
        for row in rows:
            key_row = keys.get(row.key_id)
            if key_row is None or key_row.wrapped is None:
                raise NotFound(f"record {seq}: data key {row.key_id} is gone", code="content_shredded")
            try:
                plain = AESGCM(self._unwrap(key_row)).decrypt(row.nonce, row.ciphertext, _aad(row, client_id))
            except InvalidTag as exc:
                raise VerificationError(f"seq {seq}: sealed {row.field} fails AES-GCM authentication",
                                        seq=seq, step="commitment") from exc
            salt, content = plain[:_SALT_BYTES], plain[_SALT_BYTES:]
            if _commitment_at(parsed, row.field) != row.commitment or commit(row.tag, content, salt)[0] != row.commitment:
                raise VerificationError(f"seq {seq}: opening of {row.field} does not match the record's commitment",
                                        seq=seq, step="commitment")
            openings.append(Opening(row.field, row.tag, row.commitment, salt, content))
        return openings

    # -- shredding -----------------------------------------------------------------------------
    def shred(self, client_id: str) -> ShredReport:
        """Destroy every data key of ``client_id`` and delete its sealed rows, then (SQLite) rewrite
        the database file and truncate the WAL. Idempotent. Raises :class:`LedgerError` when the
        database is busy and the WAL could not be truncated (run it again)."""
        sqlite = self.engine.dialect.name == "sqlite"
        try:
            with Session(self.engine) as session, session.begin():
                if sqlite:
                    session.exec(text("PRAGMA secure_delete=ON"))
                keys = session.exec(select(DataKeyRow).where(DataKeyRow.client_id == client_id)
                                    .with_for_update()).all()
                key_ids = [k.key_id for k in keys if k.wrapped is not None]
                sealed = 0
                if key_ids:
                    sealed = session.execute(delete(SealedRow).where(SealedRow.key_id.in_(key_ids))).rowcount
                for key in keys:
                    if key.wrapped is not None:
                        key.wrapped, key.shredded_at = None, _now()
                        session.add(key)
            scrubbed = self._scrub() if sqlite else False
        except SQLAlchemyError as exc:
            raise LedgerError(f"shred failed: {type(exc).__name__}") from exc
        return ShredReport(client_id, len(key_ids), sealed, scrubbed)

    def _scrub(self) -> bool:
        """SQLite: VACUUM (rewrites every page, drops free pages) and truncate the WAL."""
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute("VACUUM")
            busy, _log, _done = cur.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cur.close()
        finally:
            raw.close()
        if busy:
            raise LedgerError("shred: another connection holds the WAL; old pages may remain until it is "
                              "truncated — run shred again", code="shred_incomplete")
        return True
