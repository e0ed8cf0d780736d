"""``auditinf`` command line: serve | explain | risk | methods | keygen, the ledger commands of
:mod:`auditinf.cli_ledger` (verify, export, anchor, ...), the vault commands of
:mod:`auditinf.cli_vault` (disclose, shred, kek rotate) and ``clients`` (:mod:`auditinf.cli_clients`).

Answers are printed as JSON on stdout. Errors print ``{"error": {"code", "message"}}`` and exit 2;
``verify`` exits 0 when the ledger is intact and 1 (naming the first bad seq and the reason)
when it is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .cli_clients import ClientsFile, clients_app
from .cli_common import KeyFile, LedgerUrl, PolicyOpt, open_service
from .cli_common import cli_errors as _errors
from .cli_common import emit as _emit
from .cli_common import settings_from as _settings
from .cli_eval import register as register_eval_command
from .cli_ledger import register as register_ledger_commands
from .cli_ledger import rotate_key
from .cli_vault import register as register_vault_commands
from .cli_gate import gate_command
from .config import Settings
from .errors import InputError
from .jsonin import load_json

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Auditable inference for Web3: explain and risk-score transactions, extract ABI "
                       "methods, and verify the signed audit ledger.")


def _read_json(path: Path) -> Any:
    return load_json(path.read_bytes())


def _tx_command(kind: str, file: Optional[Path], to: Optional[str], data: Optional[str], value: Optional[str],
                chain_id: Optional[int], private: bool, abi: Optional[Path], settings: Settings) -> None:
    with _errors():
        body: dict = _read_json(file) if file else {}
        if not isinstance(body, dict):
            raise InputError("transaction file must hold a JSON object", code="invalid_request")
        overrides = {"to": to, "data": data, "value": value, "chain_id": chain_id, "abi": _read_json(abi) if abi else None}
        body.update({k: v for k, v in overrides.items() if v is not None})
        if private:
            body["private"] = True
        with open_service(settings) as service:
            _emit(service.analyse_transaction(kind, body, "cli"))


TxFile = Annotated[Optional[Path], typer.Argument(help="transaction JSON {chain_id, from, to, value, data}")]
To = Annotated[Optional[str], typer.Option("--to", help="target address")]
Data = Annotated[Optional[str], typer.Option("--data", help="calldata, 0x hex")]
Value = Annotated[Optional[str], typer.Option("--value", help="wei (decimal or 0x)")]
Chain = Annotated[Optional[int], typer.Option("--chain-id")]
Private = Annotated[bool, typer.Option("--private", help="local models only")]
Abi = Annotated[Optional[Path], typer.Option("--abi", help="JSON ABI file for `to`")]


@app.command()
def explain(file: TxFile = None, to: To = None, data: Data = None, value: Value = None, chain_id: Chain = None,
            private: Private = False, abi: Abi = None, ledger_url: LedgerUrl = None, key_file: KeyFile = None,
            policy: PolicyOpt = None) -> None:
    """Explain what a transaction does (answer JSON on stdout, record in the ledger)."""
    _tx_command("explain", file, to, data, value, chain_id, private, abi,
                _settings(ledger_url=ledger_url, key_file=key_file, policy=policy))


@app.command()
def risk(file: TxFile = None, to: To = None, data: Data = None, value: Value = None, chain_id: Chain = None,
         private: Private = False, abi: Abi = None, ledger_url: LedgerUrl = None, key_file: KeyFile = None,
         policy: PolicyOpt = None) -> None:
    """Pre-signing risk summary of a transaction: verdict, risk level, findings, explanation."""
    _tx_command("risk", file, to, data, value, chain_id, private, abi,
                _settings(ledger_url=ledger_url, key_file=key_file, policy=policy))


@app.command()
def methods(abi: Abi = None,
            bytecode: Annotated[Optional[str], typer.Option("--bytecode", help="runtime code hex, or @FILE")] = None,
            data: Data = None, private: Private = False, ledger_url: LedgerUrl = None, key_file: KeyFile = None,
            policy: PolicyOpt = None) -> None:
    """List a contract's methods from an ABI file or from runtime bytecode."""

    with _errors():
        body: dict = {"private": private}
        if abi:
            body["abi"] = _read_json(abi)
        if bytecode:
            body["bytecode"] = Path(bytecode[1:]).read_text().strip() if bytecode.startswith("@") else bytecode
        if data:
            body["data"] = data
        with open_service(_settings(ledger_url=ledger_url, key_file=key_file, policy=policy)) as service:
            _emit(service.methods(body, "cli"))


@app.command()
def keygen(key_file: KeyFile = None,
           force: Annotated[bool, typer.Option("--force", help="overwrite an existing key")] = False,
           rotate: Annotated[bool, typer.Option("--rotate", help="replace the key through a signed key event")] = False,
           ledger_url: LedgerUrl = None) -> None:
    """Create an Ed25519 signing key (mode 0600) and print its verifier key; with --rotate, hand the
    ledger over to a new key (a key-event record signed by the old key names the new one)."""
    from .ledger import generate_key

    settings = _settings(key_file=key_file, ledger_url=ledger_url)
    if rotate:
        return rotate_key(settings)
    with _errors():
        signer = generate_key(settings.key_file, settings.origin, overwrite=force)
    typer.echo(f"signing key: {settings.key_file} (mode 0600)", err=True)
    typer.echo(f"verifier key: {settings.pubkey_file}", err=True)
    typer.echo(signer.verifier.verifier_key)


@app.command()
def serve(host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port (0: any free port, logged at start)")] = 8080,
          workers: Annotated[int, typer.Option(min=1, help="worker processes sharing one ledger")] = 1,
          ledger_url: LedgerUrl = None, key_file: KeyFile = None, policy: PolicyOpt = None,
          clients_file: ClientsFile = None) -> None:
    """Run the HTTP API (FastAPI on uvicorn, with the uvloop event loop and the httptools parser:
    about 1 ms less per request than asyncio and h11, bench/gateway.py). Refuses to start with a
    bad policy, key or client registry. Logs are JSON lines on stderr (AUDITINF_LOG_LEVEL), one
    per request, never with content.
    With clients in the registry (``auditinf clients add``) request endpoints require their bearer
    token; without, a warning is logged and ``X-Client-Id`` is self-declared.

    With ``--workers N`` each worker process builds its own app from the same settings (passed on
    as ``AUDITINF_*`` variables); their appends serialise on the ledger's chain head.
    """
    import os

    import uvicorn

    from .api import create_app
    from .obs import configure_logging

    settings = _settings(ledger_url=ledger_url, key_file=key_file, policy=policy, clients_file=clients_file)
    configure_logging(settings.log_level)
    with _errors():
        application = create_app(settings)  # fails here, once, on a bad policy or key
    options = {"host": host, "port": port, "log_config": None, "access_log": False,
               "log_level": settings.log_level.lower()}
    if workers == 1:
        uvicorn.run(application, **options)
        return
    application.state.service.ledger.close()
    os.environ.update({"AUDITINF_LEDGER_URL": settings.ledger_url, "AUDITINF_KEY_FILE": str(settings.key_file),
                       "AUDITINF_POLICY": str(settings.policy)})
    if settings.clients_file is not None:
        os.environ["AUDITINF_CLIENTS_FILE"] = str(settings.clients_file)
    uvicorn.run("auditinf.api.app:create_app", factory=True, workers=workers, **options)


register_ledger_commands(app)
register_vault_commands(app)
app.command("gate")(gate_command)
register_eval_command(app)
app.add_typer(clients_app, name="clients")

if __name__ == "__main__":  # pragma: no cover
    app()
