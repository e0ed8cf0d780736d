"""``auditinf gate FILE``: the agent gate on the command line (see :mod:`auditinf.gate`).

Prints the gate answer as JSON. Exit status: 0 ``allow`` (the answer carries a signed checkpoint
and inclusion proof of the gate record), 3 ``review``, 4 ``deny``, 2 on an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cli_common import KeyFile, LedgerUrl, PolicyOpt, cli_errors, emit, open_service, settings_from
from .errors import InputError
from .jsonin import load_json

__all__ = ["gate_command", "EXIT_CODES"]

EXIT_CODES = {"allow": 0, "review": 3, "deny": 4}


def gate_command(file: Annotated[Path, typer.Argument(help="transaction JSON {chain_id, from, to, value, data}")],
                 client_id: Annotated[str, typer.Option("--client-id", help="client named in the record")] = "cli",
                 ledger_url: LedgerUrl = None, key_file: KeyFile = None, policy: PolicyOpt = None) -> None:
    """May an agent send this transaction? allow (exit 0) | review (3) | deny (4), recorded."""
    from .gate import gate

    with cli_errors():
        body = load_json(file.read_bytes())
        if not isinstance(body, dict):
            raise InputError("transaction file must hold a JSON object", code="invalid_request")
        with open_service(settings_from(ledger_url=ledger_url, key_file=key_file, policy=policy)) as service:
            answer = gate(service, body, client_id)
        emit(answer)
    raise typer.Exit(EXIT_CODES[answer["decision"]])
