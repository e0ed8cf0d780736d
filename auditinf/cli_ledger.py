"""``auditinf`` ledger commands for operators and auditors.

- ``verify [BUNDLE]`` — full offline audit of the ledger database or an exported bundle; exit 0
  intact, 1 tampered (first bad seq and step named), 2 unusable input;
- ``export --out DIR`` — write an offline audit bundle; ``prove --seq N --out FILE`` — a
  self-contained inclusion proof; ``verify-proof FILE`` — check one without the ledger;
- ``disclose``, ``shred``, ``kek rotate`` — in :mod:`.cli_vault`;
- ``keygen --rotate`` (in :mod:`.cli`) — via :func:`rotate_key`.

Registered on the main typer app by :func:`register`. Output is JSON on stdout; errors print
``{"error": {"code", "message"}}`` and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_common import KeyFile, LedgerUrl, cli_errors, emit, settings_from
from .errors import VerificationError

__all__ = ["register"]

PubKeys = Annotated[Optional[list[Path]], typer.Option(
    "--pubkey", help="trusted verifier key file of the log's initial key (repeatable); default: the "
                     "archived and current keys beside the signing key")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable result on stdout")]
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


def _trusted(paths: Optional[list[Path]], settings) -> dict:  # noqa: ANN001 - Settings → {kid: Verifier}
    """The verifier keys given with --pubkey, else ``<stem>.*.pub`` (rotated-out) and ``<stem>.pub``."""
    from .ledger import parse_verifier_key

    if not paths:
        pub = settings.pubkey_file
        paths = sorted(pub.parent.glob(f"{pub.stem}.*.pub")) + [pub]
    keys = {}
    for path in paths:
        verifier = parse_verifier_key(path.read_text())
        keys[verifier.kid] = verifier
    return keys


def _progress(total: Optional[int]):  # noqa: ANN202 - (callback, stop)
    """A rich progress bar on stderr when it is a terminal; otherwise no output at all."""
    import sys

    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("verifying", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("records", total=total)
    bar.start()
    return (lambda n: bar.update(task, completed=n)), bar.stop


def _summary(report) -> None:  # noqa: ANN001 - AuditReport
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"auditinf verify: {'INTACT' if report.ok else 'TAMPERED'}", show_header=False)
    table.add_row("source", report.source)
    table.add_row("records", str(report.records))
    table.add_row("checkpoints verified", str(report.checkpoints))
    if report.latest_checkpoint:
        table.add_row("latest checkpoint", f"size {report.latest_checkpoint['size']} "
                                           f"root {report.latest_checkpoint['root_hash'][:16]}…")
    if report.held_checkpoint:
        table.add_row("held checkpoint", f"size {report.held_checkpoint['size']} matches")
    for span in report.keys:
        table.add_row(f"key {span.kid}", f"seq {span.first_seq}–{span.last_seq}")
    for key, value in report.extra.items():
        table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    if not report.ok:
        table.add_row("first bad seq", str(report.first_bad_seq), style="bold red")
        table.add_row("failed step", str(report.step), style="bold red")
        table.add_row("reason", str(report.reason), style="red")
    Console().print(table)


def writing_ledger(settings):  # noqa: ANN001, ANN202 - Settings → Ledger
    """The existing ledger, opened with the signing key when it is present (so that records and
    checkpoints can be signed), else read-only."""
    from .ledger import Ledger, load_signer

    signer = load_signer(settings.key_file, settings.origin) if settings.key_file.exists() else None
    return Ledger(settings.ledger_url, signer, create=False)


def _ledger_for_checkpoints(settings):  # noqa: ANN001, ANN202 - Settings → Ledger
    """:func:`writing_ledger`, with a checkpoint covering every record signed when it can be."""
    ledger = writing_ledger(settings)
    if ledger.signer is not None:
        ledger.checkpoint_now()
    return ledger


def verify(bundle: Annotated[Optional[Path], typer.Argument(help="audit bundle directory (default: the database)")] = None,
           pubkey: PubKeys = None, ledger_url: LedgerUrl = None, key_file: KeyFile = None,
           checkpoint: Annotated[Optional[Path], typer.Option(
               "--checkpoint", help="a signed checkpoint note you kept: catches truncation and rollback")] = None,
           expect_size: Annotated[Optional[int], typer.Option("--expect-size", min=0,
                                                              help="records the auditor knows exist")] = None,
           anchors: Annotated[Optional[str], typer.Option(
               "--anchors", help="EVM JSON-RPC URL: also check the checkpoints' on-chain anchors")] = None,
           hash_only: Annotated[bool, typer.Option(
               "--hash-only", help="skip record signatures: leaf hashes and links, roots against signed "
                                   "checkpoints (give every key with --pubkey)")] = False,
           as_json: AsJson = False) -> None:
    """Verify a ledger offline: canonical bodies, leaf hashes, links, signatures under the key valid
    at each seq, contiguous seq, every checkpoint's root and signature, consistency between
    checkpoints. Exit 0 intact, 1 tampered, 2 unusable input."""
    from .ledger import Ledger
    from .ledger.audit import audit
    from .ledger.bundle import BundleSource, DbSource

    settings = settings_from(ledger_url=ledger_url, key_file=key_file)
    with cli_errors():
        held = checkpoint.read_bytes() if checkpoint else None
        if bundle is not None:
            source = BundleSource(bundle)
            trusted = _trusted(pubkey, settings) if pubkey else {(k := source.first_key()).kid: k}
        else:
            trusted = _trusted(pubkey, settings)
            source = DbSource(Ledger(settings.ledger_url, create=False))
        origin = next(iter(trusted.values())).name
        tick, stop = _progress(source.count())
        try:
            report = audit(source, trusted, origin, held=held, expected_size=expect_size, progress=tick,
                           hash_only=hash_only)
        finally:
            stop()
        if bundle is not None and not pubkey:
            report.extra["trusted_key"] = "first key listed in the bundle (give --pubkey to pin it)"
        if anchors and report.ok:
            from web3 import Web3

            from .ledger.anchor import check_anchors, stored_anchors

            try:
                report.extra["anchors"] = check_anchors(stored_anchors(source), report.notes,
                                                        Web3(Web3.HTTPProvider(anchors, request_kwargs={"timeout": 30})))
            except VerificationError as exc:
                report.fail(exc)
    if as_json:
        emit(report.to_dict())
    else:
        _summary(report)
    if not report.ok:
        raise typer.Exit(1)


def export(out: Annotated[Path, typer.Option("--out", help="new or empty directory for the bundle")],
           pubkey: PubKeys = None, ledger_url: LedgerUrl = None, key_file: KeyFile = None) -> None:
    """Write an offline audit bundle: records (bodies + signatures), every checkpoint, and the
    public keys with the seq range each signed. With the signing key at hand a checkpoint covering
    every record is signed first. The ledger is verified while it is exported (exit 1 if tampered)."""
    from .ledger.bundle import export_bundle

    settings = settings_from(ledger_url=ledger_url, key_file=key_file)
    with cli_errors():
        trusted = _trusted(pubkey, settings)
        ledger = _ledger_for_checkpoints(settings)
        try:
            manifest = export_bundle(ledger, out, trusted, next(iter(trusted.values())).name)
        except VerificationError as exc:
            emit({"ok": False, "first_bad_seq": exc.seq, "step": exc.step, "reason": exc.message})
            raise typer.Exit(1) from None
        finally:
            ledger.close()
    emit({"ok": True, "out": str(out), **manifest})


def prove(seq: Annotated[int, typer.Option("--seq", min=0, help="record to prove")],
          out: Annotated[Path, typer.Option("--out", help="proof file to write")],
          ledger_url: LedgerUrl = None, key_file: KeyFile = None) -> None:
    """Write a self-contained proof that record SEQ is in the log: the record, its RFC 6962
    inclusion proof and the signed checkpoint (one is signed if none covers SEQ yet)."""
    from .ledger.proofs import build_proof

    settings = settings_from(ledger_url=ledger_url, key_file=key_file)
    with cli_errors():
        ledger = _ledger_for_checkpoints(settings)
        try:
            doc = build_proof(ledger, seq)
        finally:
            ledger.close()
        out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    emit({"seq": seq, "tree_size": doc["inclusion"]["tree_size"], "out": str(out)})


def verify_proof(file: Annotated[Path, typer.Argument(help="proof file from `auditinf prove`")],
                 pubkey: Annotated[list[Path], typer.Option("--pubkey", help="log verifier key file (repeatable)")],
                 ) -> None:
    """Check a proof file (JSON result on stdout) without the ledger: canonical body, leaf hash, inclusion path to the
    signed checkpoint root, checkpoint signature, record signature. Exit 0 valid, 1 invalid, 2 unusable."""
    from .jsonin import load_json
    from .ledger import parse_verifier_key
    from .ledger.proofs import verify_proof as check

    with cli_errors():
        keys = [parse_verifier_key(p.read_text()) for p in pubkey]
        doc = load_json(file.read_bytes())
        try:
            result = {"ok": True, **check(doc, keys)}
        except VerificationError as exc:
            result = {"ok": False, "seq": exc.seq, "step": exc.step, "reason": exc.message}
    emit(result)
    if not result["ok"]:
        raise typer.Exit(1)


def anchor(rpc: Annotated[str, typer.Option("--rpc", help="EVM JSON-RPC URL")],
           to: Annotated[Optional[str], typer.Option("--to", help="contract to call (default: the sender)")] = None,
           sender: Annotated[Optional[str], typer.Option(
               "--from", help="sending account the node signs for (default: the node's first)")] = None,
           account_key_file: Annotated[Optional[Path], typer.Option(
               "--account-key-file", help="sign locally with this Ethereum account key (64 hex digits, "
                                          "mode 0600): EIP-1559, eth_sendRawTransaction")] = None,
           timeout: Annotated[float, typer.Option("--timeout", min=1, help="seconds to wait for the receipt")] = 120.0,
           ledger_url: LedgerUrl = None, key_file: KeyFile = None) -> None:
    """Publish the latest checkpoint's hash on an EVM chain (a zero-value transaction whose calldata
    is anchor(sha256(note), size, root)) and record the transaction hash against the checkpoint.
    Without --account-key-file the node signs (eth_sendTransaction: dev nodes, eth-tester)."""
    from web3 import Web3

    from .ledger.anchor import anchor_checkpoint

    settings = settings_from(ledger_url=ledger_url, key_file=key_file)
    with cli_errors():
        account = None
        if account_key_file is not None:
            from .ledger.anchor_tx import load_account

            account = load_account(account_key_file)
        ledger = _ledger_for_checkpoints(settings)
        try:
            row = anchor_checkpoint(ledger, Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30})),
                                    to=to, sender=sender, account=account, timeout_s=timeout)
        finally:
            ledger.close()
    emit(row.to_dict())


def register(app: typer.Typer) -> None:
    """Add the ledger commands to ``app``."""
    for command in (verify, export, prove, anchor):
        app.command()(command)
    app.command("verify-proof")(verify_proof)
