"""Signing-key rotation: hand the ledger from the current Ed25519 key to a new one.

:func:`rotate` appends the key-event record (:mod:`.keyevents`) signed by the outgoing key, with its
``key_event`` mirror row in the same transaction. :func:`rotate_key_file` does the whole operator
step around the key files, in an order that survives a crash at any point:

1. the new private key is written (0600, fsynced) to ``<key>.next``;
2. the key event is appended and committed;
3. the outgoing verifier key is kept as ``<stem>.<old kid>.pub`` (auditors need it for old records),
   ``<key>.next`` replaces ``<key>`` (atomic rename) and ``<stem>.pub`` becomes the new verifier key.

A crash between 1 and 2 leaves a ``.next`` file the ledger never named: the next run discards it.
A crash between 2 and 3 leaves the ledger naming the ``.next`` key: the next run finishes step 3.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import SQLModel

from ..errors import LedgerError
from .keyevents import KeyEventRow, active_kid, key_event_content
from .keys import Signer, fsync_dir, load_signer, new_signer, write_signer
from .store import Receipt

if TYPE_CHECKING:
    from .store import Ledger

__all__ = ["Rotation", "rotate", "rotate_key_file"]


@dataclass(frozen=True)
class Rotation:
    """Outcome of a rotation: the key-event receipt (``None`` when an interrupted one was finished)."""

    old_kid: str
    new_kid: str
    new_verifier_key: str
    receipt: Receipt | None

    def to_dict(self) -> dict:
        return {"old_kid": self.old_kid, "new_kid": self.new_kid, "verifier_key": self.new_verifier_key,
                "key_event": None if self.receipt is None else self.receipt.to_dict()}


def _ensure_table(ledger: Ledger) -> None:
    SQLModel.metadata.create_all(ledger.engine, tables=[KeyEventRow.__table__])


def rotate(ledger: Ledger, new: Signer) -> Receipt:
    """Append the key event handing signing from ``ledger.signer`` to ``new``; returns its receipt.
    Raises :class:`~auditinf.errors.LedgerError` as :meth:`Ledger.append` does, and
    ``signing_key_retired`` when ``ledger.signer`` is no longer the ledger's signing key."""
    old = ledger.signer
    _ensure_table(ledger)
    with ledger.engine.connect() as conn:
        named = active_kid(conn)
    if named is not None and named != old.kid:
        raise LedgerError(f"key {old.kid} was retired; the ledger is signed by {named}", code="signing_key_retired")

    def mirror(session, seq: int) -> None:  # noqa: ANN001 - SQLModel session from Ledger.append
        session.add(KeyEventRow(seq=seq, old_kid=old.kid, new_kid=new.kid, verifier_key=new.verifier.verifier_key))

    return ledger.append(key_event_content(old, new), attach=mirror)


def _install(key_file: Path, pending: Path, old: Signer, new: Signer) -> None:
    key_file.with_name(f"{key_file.stem}.{old.kid}.pub").write_text(old.verifier.verifier_key + "\n")
    os.replace(pending, key_file)
    key_file.with_suffix(".pub").write_text(new.verifier.verifier_key + "\n")
    fsync_dir(key_file.parent)


def rotate_key_file(ledger_factory, key_file: Path, name: str) -> Rotation:  # noqa: ANN001
    """Rotate the key at ``key_file`` for the ledger ``ledger_factory(signer)`` opens (see the module
    docstring for the crash-safe order). Raises :class:`~auditinf.errors.KeyFileError` and
    :class:`~auditinf.errors.LedgerError`."""
    old = load_signer(key_file, name)
    pending = key_file.with_name(key_file.name + ".next")
    ledger = ledger_factory(old)
    try:
        _ensure_table(ledger)
        if pending.exists():
            half_done = load_signer(pending, name)
            with ledger.engine.connect() as conn:
                named = active_kid(conn)
            if named == half_done.kid:  # the event committed, the files were not swapped yet
                _install(key_file, pending, old, half_done)
                return Rotation(old.kid, half_done.kid, half_done.verifier.verifier_key, None)
            pending.unlink()
        new = new_signer(name)
        write_signer(pending, new)
        receipt = rotate(ledger, new)
    finally:
        ledger.close()
    _install(key_file, pending, old, new)
    return Rotation(old.kid, new.kid, new.verifier.verifier_key, receipt)
