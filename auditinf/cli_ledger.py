"""``auditinf`` ledger commands for operators and auditors: disclose, shred (more below as they land).

Registered on the main typer app by :func:`register`. Output is JSON on stdout; errors print
``{"error": {"code", "message"}}`` and exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_common import KeyFile, LedgerUrl, cli_errors, emit, settings_from

__all__ = ["register"]

KekFile = Annotated[Optional[Path], typer.Option("--kek-file", help="key-encryption key (AUDITINF_KEK_FILE)")]


def _vault(settings):  # noqa: ANN001, ANN202 - Settings → (Ledger, Vault)
    from .ledger import Ledger
    from .ledger.kek import load_kek
    from .ledger.vault import Vault

    ledger = Ledger(settings.ledger_url, create=False)
    return ledger, Vault(ledger.engine, load_kek(settings.data_kek_file))


def disclose(seq: Annotated[int, typer.Option("--seq", min=0, help="record to open")],
             ledger_url: LedgerUrl = None, key_file: KeyFile = None, kek_file: KekFile = None) -> None:
    """Reveal the private content of record SEQ: decrypt its sealed openings, recompute each
    salted commitment and check it against the record body, then print the content."""
    from .ledger.canonical import leaf_hash
    from .errors import VerificationError

    settings = settings_from(ledger_url=ledger_url, key_file=key_file, kek_file=kek_file)
    with cli_errors():
        ledger, vault = _vault(settings)
        row = ledger.get(seq)
        body = bytes(row.body)
        if leaf_hash(body) != row.leaf_hash:
            raise VerificationError(f"seq {seq}: stored leaf hash differs from the body", seq=seq, step="leaf_hash")
        openings = vault.disclose(seq, body)
        emit({"seq": seq, "leaf_hash": row.leaf_hash, "openings": [o.to_dict() for o in openings]})


def shred(client: Annotated[str, typer.Option("--client", help="client id whose private content is destroyed")],
          ledger_url: LedgerUrl = None, key_file: KeyFile = None, kek_file: KekFile = None) -> None:
    """Crypto-shred CLIENT: destroy its data keys and sealed openings. Records, signatures and
    checkpoints still verify; the commitments in them can no longer be opened."""
    settings = settings_from(ledger_url=ledger_url, key_file=key_file, kek_file=kek_file)
    with cli_errors():
        _ledger, vault = _vault(settings)
        emit(vault.shred(client).to_dict())


def rotate_key(settings) -> None:  # noqa: ANN001 - Settings
    """``keygen --rotate``: append the key event, swap the key files, print the new verifier key."""
    from .ledger import Ledger
    from .ledger.rotation import rotate_key_file

    with cli_errors():
        rotation = rotate_key_file(lambda signer: Ledger(settings.ledger_url, signer, create=False),
                                   settings.key_file, settings.origin)
    typer.echo(f"rotated {rotation.old_kid} -> {rotation.new_kid}; old verifier key kept as "
               f"{settings.key_file.stem}.{rotation.old_kid}.pub", err=True)
    typer.echo(rotation.new_verifier_key)


def register(app: typer.Typer) -> None:
    """Add the ledger commands to ``app``."""
    app.command()(disclose)
    app.command()(shred)
