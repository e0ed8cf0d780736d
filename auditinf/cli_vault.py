"""``auditinf`` vault commands: open, shred and re-key private content (:mod:`.ledger.vault`).

- ``disclose --seq N`` — decrypt a private record's openings and check them against its commitments;
- ``shred --client ID [--no-rotate]`` — destroy the client's data keys and sealed openings, then
  (by default) rotate the KEK so that copies of the wrapped key in WAL, dead tuples or backups
  become useless too;
- ``kek rotate`` — re-wrap every live data key under a new KEK and destroy the old KEK file
  (:mod:`.ledger.kek_rotation`), recorded as a ``kek_rotation`` record when the signing key is present.

Output is JSON on stdout; errors print ``{"error": {"code", "message"}}`` and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_common import KeyFile, LedgerUrl, cli_errors, emit, settings_from
from .errors import AuditinfError, LedgerError, VerificationError

__all__ = ["register"]

KekFile = Annotated[Optional[Path], typer.Option("--kek-file", help="key-encryption key (AUDITINF_KEK_FILE)")]


def _vault(ledger, settings):  # noqa: ANN001, ANN202 - (Ledger, Settings) → Vault
    from .ledger.vault import Vault

    return Vault(ledger.engine, settings.data_kek_file)


def disclose(seq: Annotated[int, typer.Option("--seq", min=0, help="record to open")],
             ledger_url: LedgerUrl = None, key_file: KeyFile = None, kek_file: KekFile = None) -> None:
    """Reveal the private content of record SEQ: decrypt its sealed openings, recompute each
    salted commitment and check it against the record body, then print the content."""
    from .ledger import Ledger
    from .ledger.canonical import leaf_hash

    settings = settings_from(ledger_url=ledger_url, key_file=key_file, kek_file=kek_file)
    with cli_errors():
        ledger = Ledger(settings.ledger_url, create=False)
        try:
            vault = _vault(ledger, settings)
            row = ledger.get(seq)
            body = bytes(row.body)
            if leaf_hash(body) != row.leaf_hash:
                raise VerificationError(f"seq {seq}: stored leaf hash differs from the body", seq=seq,
                                        step="leaf_hash")
            openings = vault.disclose(seq, body)
        finally:
            ledger.close()
        emit({"seq": seq, "leaf_hash": row.leaf_hash, "openings": [o.to_dict() for o in openings]})


def shred(client: Annotated[str, typer.Option("--client", help="client id whose private content is destroyed")],
          no_rotate: Annotated[bool, typer.Option(
              "--no-rotate", help="skip the KEK rotation: faster, but copies of the wrapped data key in WAL, "
                                  "dead tuples or backups stay openable with the current KEK")] = False,
          ledger_url: LedgerUrl = None, key_file: KeyFile = None, kek_file: KekFile = None) -> None:
    """Crypto-shred CLIENT: destroy its data keys and sealed openings, then rotate the KEK (unless
    --no-rotate) so old copies of the wrapped key are useless. Records, signatures and checkpoints
    still verify; the commitments in them can no longer be opened."""
    from .cli_ledger import writing_ledger
    from .ledger.kek_rotation import rotate_kek

    settings = settings_from(ledger_url=ledger_url, key_file=key_file, kek_file=kek_file)
    with cli_errors():
        ledger = writing_ledger(settings)
        try:
            vault = _vault(ledger, settings)
            report = vault.shred(client).to_dict()
            try:
                report["kek_rotation"] = None if no_rotate else rotate_kek(vault, ledger).to_dict()
            except AuditinfError as exc:
                raise LedgerError(f"client {client!r} was shredded, but the KEK rotation failed ({exc.code}: "
                                  f"{exc.message}); run `auditinf kek rotate`", code="kek_rotation_failed") from exc
        finally:
            ledger.close()
        emit(report)


def kek_rotate(ledger_url: LedgerUrl = None, key_file: KeyFile = None, kek_file: KekFile = None) -> None:
    """Rotate the key-encryption key: re-wrap every live client data key under a new KEK in one
    transaction (a kek_rotation record when the signing key is present), then destroy the old KEK
    file. Database backups taken before can no longer be opened with the KEK file that remains."""
    from .cli_ledger import writing_ledger
    from .ledger.kek_rotation import rotate_kek

    settings = settings_from(ledger_url=ledger_url, key_file=key_file, kek_file=kek_file)
    with cli_errors():
        ledger = writing_ledger(settings)
        try:
            rotation = rotate_kek(_vault(ledger, settings), ledger)
        finally:
            ledger.close()
        emit(rotation.to_dict())


def register(app: typer.Typer) -> None:
    """Add ``disclose``, ``shred`` and ``kek rotate`` to ``app``."""
    app.command()(disclose)
    app.command()(shred)
    kek = typer.Typer(no_args_is_help=True, help="Key-encryption key of the vault.")
    kek.command("rotate")(kek_rotate)
    app.add_typer(kek, name="kek")
