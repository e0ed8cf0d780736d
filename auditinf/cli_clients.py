"""``auditinf clients add | list | revoke``: the client registry of the HTTP API
(:mod:`auditinf.auth.registry`; how the API uses it: :mod:`auditinf.api.auth`).

- ``add ID [--replace]`` registers ID with a new bearer token and prints the token, once, on
  stdout; the file keeps only its SHA-256 (created with mode 0600 when absent). ``--replace``
  issues a new token for a registered or revoked ID (the old token stops working);
- ``list`` prints ``{"file", "clients": [{client_id, fingerprint, status, created_at,
  revoked_at?}]}``: ``fingerprint`` is the first 12 hex digits of the token's SHA-256, never the token;
- ``revoke ID`` marks ID revoked (kept in the file, so authentication stays on); a running server
  refuses its token from its next request.

The file is ``--clients-file``, else ``AUDITINF_CLIENTS_FILE``, else ``ledger/clients.json``.
Errors print ``{"error": {"code", "message"}}`` and exit 2 (``client_exists``,
``client_not_found``, ``invalid_client_registry``, ``key_file_error`` for a file readable by others).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_common import cli_errors, emit, settings_from

__all__ = ["clients_app", "ClientsFile"]

clients_app = typer.Typer(add_completion=False, no_args_is_help=True,
                          help="Manage the API's client registry: client id -> SHA-256 of its bearer token.")

ClientsFile = Annotated[Optional[Path], typer.Option("--clients-file", help="client registry (AUDITINF_CLIENTS_FILE)")]
ClientIdArg = Annotated[str, typer.Argument(help="client id, 1-64 of A-Z a-z 0-9 . _ : -")]


def _file(clients_file: Optional[Path]) -> Path:
    return settings_from(clients_file=clients_file).client_registry_file


@clients_app.command("add")
def add(client_id: ClientIdArg, clients_file: ClientsFile = None,
        replace: Annotated[bool, typer.Option("--replace", help="new token for a registered or revoked id")] = False
        ) -> None:
    """Register CLIENT_ID and print its new bearer token (shown once; only its hash is stored)."""
    from .auth.registry import add_client

    path = _file(clients_file)
    with cli_errors():
        token = add_client(path, client_id, replace=replace)
    typer.echo(f"client {client_id} registered in {path}; its token is printed once, below", err=True)
    typer.echo(token)


@clients_app.command("list")
def list_clients(clients_file: ClientsFile = None) -> None:
    """List registered clients: id, token fingerprint (12 hex digits of its SHA-256), status, dates."""
    from .auth.registry import Registry, load_registry

    path = _file(clients_file)
    with cli_errors():
        registry = load_registry(path) if path.exists() else Registry()
    emit({"file": str(path), "clients": [e.summary() for _, e in sorted(registry.clients.items())]})


@clients_app.command("revoke")
def revoke(client_id: ClientIdArg, clients_file: ClientsFile = None) -> None:
    """Revoke CLIENT_ID's token; the entry stays (revoked), so the API keeps requiring tokens."""
    from .auth.registry import revoke_client

    path = _file(clients_file)
    with cli_errors():
        entry = revoke_client(path, client_id)
    emit(entry.summary())
