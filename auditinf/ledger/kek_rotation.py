"""KEK rotation: re-wrap every live data key under a new key-encryption key, then destroy the old one.

Why: ``shred`` destroys a client's wrapped data key in the database, but copies of it outlive the
delete — PostgreSQL dead tuples and WAL (archives, replicas), SQLite pages, and every backup of
the database. Whoever holds such a copy *and* the KEK can still unwrap it. Once the KEK that
wrapped those copies is destroyed they are useless; the live data keys were re-wrapped under the
new KEK first, so every client not shredded keeps its content.

:func:`rotate_kek` runs, under an exclusive ``flock`` on ``<kek>.lock``:

1. the new KEK is written to ``<kek>.next`` (temporary file, fsync, rename, directory fsync; 0600);
2. one transaction re-wraps every live data key under it and sets ``kek_state.kek_id`` to its id
   — with a ledger open for writing, this is the ``attach`` of a ``kek_rotation`` record (old and
   new KEK ids, never key material), so the record and the re-wrap commit together or not at all;
3. the old KEK file is overwritten with zeros (best effort, see :meth:`.KekFiles.install_pending`)
   and ``<kek>.next`` is renamed over it; the directory is fsynced.

A crash leaves the vault openable at every point: until step 2 commits, ``kek_state`` names the old
KEK and its file is untouched (``.next`` is discarded on the next open); after it, ``kek_state``
names the new KEK and :meth:`.KekFiles.find` reads it from ``.next`` until the next open finishes
step 3. :func:`recover` is that decision; :class:`~.vault.Vault` runs it when it opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Integer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, select

from ..errors import LedgerError
from .kek import KekFiles, load_kek, new_kek
from .keys import write_secret_file
from .records import Receipt

if TYPE_CHECKING:
    from .store import Ledger
    from .vault import Vault

__all__ = ["KEK_ROTATION_KIND", "KekStateRow", "KekRotation", "recover", "rotate_kek", "state_kek_id"]

KEK_ROTATION_KIND = "kek_rotation"


class KekStateRow(SQLModel, table=True):
    """The single row (``id`` 1) naming the KEK new data keys are wrapped under, and the last rotation."""

    __tablename__ = "kek_state"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    kek_id: str = Field(max_length=16)
    rotated_at: str | None = Field(default=None, max_length=40)
    seq: int | None = Field(default=None)  # the kek_rotation record, when the rotation was recorded


@dataclass(frozen=True)
class KekRotation:
    """Outcome of :func:`rotate_kek`: KEK ids, how many data keys were re-wrapped, the ledger receipt
    of the ``kek_rotation`` record (``None`` when no signing ledger was given)."""

    old_kek_id: str
    new_kek_id: str
    data_keys: int
    receipt: Receipt | None

    def to_dict(self) -> dict[str, Any]:
        return {"old_kek_id": self.old_kek_id, "new_kek_id": self.new_kek_id, "data_keys": self.data_keys,
                "record": None if self.receipt is None else self.receipt.to_dict()}


def state_kek_id(engine: Engine) -> str | None:
    """The KEK id ``kek_state`` names (``None`` before the vault's first open)."""
    with Session(engine) as session:
        return session.exec(select(KekStateRow.kek_id).where(KekStateRow.id == 1)).first()


def recover(engine: Engine, files: KekFiles) -> str | None:
    """Finish or roll back a rotation a crash interrupted (call with ``files.lock()`` held): when
    ``kek_state`` names the pending KEK the re-wrap committed, so the pending file is installed;
    when it names the current file's KEK it did not, so the pending file is deleted. Anything else
    (no state, or files that belong to another vault) is left untouched. Returns ``"finished"``,
    ``"rolled_back"`` or ``None``."""
    pending = files.pending_kek()
    if pending is None:
        files.discard_pending()  # temporary files of a successor that was never complete
        return None
    state = state_kek_id(engine)
    if state is not None and state == pending.kek_id:
        files.install_pending()
        return "finished"
    if state is not None and files.path.exists() and load_kek(files.path).kek_id == state:
        files.discard_pending()
        return "rolled_back"
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def rotate_kek(vault: Vault, ledger: Ledger | None = None) -> KekRotation:
    """Rotate ``vault``'s KEK (see the module docstring for the steps and their crash safety).

    With ``ledger`` opened with a signer, the rotation is the ``kek_rotation`` record
    ``{"kind": "kek_rotation", "kek_rotation": {"old_kek_id", "new_kek_id"}}`` and the re-wrap
    commits in its transaction; without one it commits alone and is not recorded.

    Raises :class:`~auditinf.errors.KeyFileError` (the current KEK file is missing or unsafe, or is
    not the one ``kek_state`` names) and :class:`LedgerError` (``kek_rotation_conflict``: another
    process rotated meanwhile; ``ledger_error``: the transaction failed — nothing changed)."""
    files = vault.files
    with files.lock():
        recover(vault.engine, files)
        current = state_kek_id(vault.engine)
        if current is None:
            raise LedgerError("the vault has no KEK state", code="vault_inconsistent")
        old = load_kek(files.path)
        if old.kek_id != current:
            raise LedgerError(f"the KEK file holds {old.kek_id}, the vault is under {current}",
                              code="vault_inconsistent")
        new = new_kek()
        write_secret_file(files.pending, new.key, replace=True)
        rewrapped: list[int] = []

        def rewrap(session: Session, seq: int | None = None) -> None:
            state = session.exec(select(KekStateRow).where(KekStateRow.id == 1).with_for_update()).one()
            if state.kek_id != old.kek_id:
                raise LedgerError(f"the vault's KEK became {state.kek_id} meanwhile", code="kek_rotation_conflict")
            rewrapped.append(vault.rewrap(session, old, new))
            state.kek_id, state.rotated_at, state.seq = new.kek_id, _now(), seq
            session.add(state)

        try:
            if ledger is not None and ledger.signer is not None:
                receipt = ledger.append({"kind": KEK_ROTATION_KIND, "kek_rotation": {
                    "old_kek_id": old.kek_id, "new_kek_id": new.kek_id}}, attach=rewrap)
            else:
                receipt = None
                with Session(vault.engine) as session, session.begin():
                    rewrap(session)
        except SQLAlchemyError as exc:
            _settle(vault)
            raise LedgerError(f"KEK rotation failed: {type(exc).__name__}") from exc
        except BaseException:
            _settle(vault)
            raise
        files.install_pending()
    vault.forget(old.kek_id)
    return KekRotation(old.kek_id, new.kek_id, rewrapped[-1], receipt)


def _settle(vault: Vault) -> None:
    """After a failed step 2: the transaction may or may not have committed (a connection lost at
    COMMIT); decide from the database now, or leave it to the next open if it is unreachable."""
    try:
        recover(vault.engine, vault.files)
    except (SQLAlchemyError, OSError, LedgerError):
        pass
