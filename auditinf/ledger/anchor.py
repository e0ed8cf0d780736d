"""Anchoring checkpoints on an EVM chain, and checking the anchors.

An anchor is a zero-value transaction (to the sender itself, or to a configured contract) whose
calldata is the call ``anchor(bytes32 noteHash, uint64 treeSize, bytes32 rootHash)`` — selector
keccak256("anchor(bytes32,uint64,bytes32)")[:4], arguments ABI-encoded (eth-abi) — where
``noteHash`` is SHA-256 of the checkpoint's signed note, byte for byte. Once the block holding it
is final, the operator can no longer present a different history of that size without the
contradiction being public: the checkpoint's existence at that time is witnessed by the chain.

The ``anchor`` table records ``(size, chain_id, tx_hash)`` with the block number and target; the
bundle carries it as ``anchors.jsonl``. :func:`check_anchors` refetches each transaction and its
receipt over JSON-RPC (web3.py) and requires: a successful receipt, the recorded chain id, target
and sender-independent calldata equal to the encoding of the verified checkpoint of that size.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from eth_abi import encode
from eth_utils import keccak, to_checksum_address
from sqlalchemy import BigInteger, Integer, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Column, Field, Session, SQLModel, select

from ..errors import InputError, LedgerError, VerificationError
from .note import Checkpoint

if TYPE_CHECKING:  # eth-account loads slowly; only `anchor --account-key-file` needs it
    from eth_account.signers.local import LocalAccount

__all__ = ["AnchorRow", "SELECTOR", "anchor_calldata", "anchor_checkpoint", "stored_anchors", "check_anchors"]

SELECTOR = keccak(text="anchor(bytes32,uint64,bytes32)")[:4]
_SIZE = BigInteger().with_variant(Integer(), "sqlite")


class AnchorRow(SQLModel, table=True):
    """One published anchor of the checkpoint of ``size``."""

    __tablename__ = "anchor"

    size: int = Field(sa_column=Column(_SIZE, primary_key=True, autoincrement=False))
    chain_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    tx_hash: str = Field(primary_key=True, max_length=66)
    note_sha256: str = Field(max_length=64)
    block_number: int = Field(sa_column=Column(BigInteger, nullable=False))
    to_address: str = Field(max_length=42)
    created_at: str = Field(max_length=40)

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "chain_id": self.chain_id, "tx_hash": self.tx_hash, "note_sha256": self.note_sha256,
                "block_number": self.block_number, "to": self.to_address}


def anchor_calldata(note: str, checkpoint: Checkpoint) -> bytes:
    """``anchor(sha256(note), size, root)`` calldata for a checkpoint and its signed note."""
    digest = hashlib.sha256(note.encode()).digest()
    return SELECTOR + encode(["bytes32", "uint64", "bytes32"], [digest, checkpoint.size, checkpoint.root])


def anchor_checkpoint(ledger, w3, *, to: str | None = None, sender: str | None = None,
                      account: LocalAccount | None = None, timeout_s: float = 120.0) -> AnchorRow:  # noqa: ANN001
    """Publish the ledger's latest checkpoint through ``w3`` (a Web3) and record it.

    With ``account`` (:func:`.anchor_tx.load_account`) the transaction is an EIP-1559 one signed
    locally and sent raw (:func:`.anchor_tx.send_signed`); otherwise the node signs for ``sender``
    (``eth_sendTransaction``; default: the node's first account). ``to`` defaults to the sender.
    Waits up to ``timeout_s`` seconds for the receipt; only a successful one is recorded.
    Raises :class:`LedgerError` (``no_checkpoint``, ``insufficient_funds``, ``anchor_timeout``,
    ``anchor_failed``) and :class:`InputError` (``--from`` differs from the account's address)."""
    latest = ledger.latest_checkpoint()
    if latest is None or latest.size == 0:
        raise LedgerError("no checkpoint to anchor yet", code="no_checkpoint")
    if account is not None and sender is not None and to_checksum_address(sender) != account.address:
        raise InputError(f"sender {sender} is not the key file's account {account.address}", code="invalid_request")
    data = anchor_calldata(latest.note, Checkpoint("", latest.size, latest.root))
    try:
        sender = account.address if account is not None else to_checksum_address(sender or w3.eth.accounts[0])
        target = to_checksum_address(to or sender)
        if account is not None:
            from .anchor_tx import send_signed

            tx_hash, receipt = send_signed(w3, account, target, data, timeout_s)
        else:
            tx_hash = w3.eth.send_transaction({"from": sender, "to": target, "value": 0, "data": data})
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
        chain_id = w3.eth.chain_id
    except LedgerError:
        raise
    except Exception as exc:  # web3 raises many types (connection, RPC, timeout): one typed error
        raise LedgerError(f"anchor transaction failed: {type(exc).__name__}", code="anchor_failed") from exc
    if receipt["status"] != 1:
        raise LedgerError("anchor transaction reverted", code="anchor_failed")
    row = AnchorRow(size=latest.size, chain_id=chain_id, tx_hash="0x" + bytes(tx_hash).hex(),
                    note_sha256=hashlib.sha256(latest.note.encode()).hexdigest(),
                    block_number=receipt["blockNumber"], to_address=target,
                    created_at=datetime.now(timezone.utc).isoformat(timespec="microseconds"))
    try:
        SQLModel.metadata.create_all(ledger.engine, tables=[AnchorRow.__table__])
        with Session(ledger.engine, expire_on_commit=False) as session, session.begin():
            session.add(row)
    except SQLAlchemyError as exc:
        raise LedgerError(f"anchor {row.tx_hash} sent but not recorded: {type(exc).__name__}") from exc
    return row


def stored_anchors(source) -> list[dict[str, Any]]:  # noqa: ANN001 - DbSource | BundleSource
    """The anchors a source records (``anchor`` table, or the bundle's ``anchors.jsonl``)."""
    directory: Path | None = getattr(source, "directory", None)
    if directory is not None:
        path = directory / "anchors.jsonl"
        if not path.is_file():
            return []
        try:
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except ValueError as exc:
            raise InputError("anchors.jsonl is not JSON lines", code="invalid_bundle") from exc
    engine = source.ledger.read_engine
    if not inspect(engine).has_table(AnchorRow.__tablename__):
        return []
    with Session(engine) as session:
        rows = session.exec(select(AnchorRow).order_by(AnchorRow.size)).all()
    return [row.to_dict() for row in rows]


def check_anchors(anchors: Iterable[dict[str, Any]], notes: dict[int, tuple[str, Checkpoint]], w3) -> list[dict]:  # noqa: ANN001
    """Check each anchor against the verified checkpoint ``notes`` (size → (note, checkpoint)) on the
    chain ``w3`` serves. Returns ``[{size, tx_hash, block_number, confirmations}]``; raises
    :class:`VerificationError` (step ``anchor``, ``seq`` None) for an anchor that does not hold."""
    results = []
    chain_id, head = w3.eth.chain_id, w3.eth.block_number
    for anchor in anchors:
        size, tx_hash = anchor.get("size"), anchor.get("tx_hash")

        def bad(why: str) -> VerificationError:
            return VerificationError(f"anchor {tx_hash} of checkpoint {size}: {why}", seq=None, step="anchor")

        if size not in notes:
            raise bad("no verified checkpoint of that size")
        if anchor.get("chain_id") != chain_id:
            raise bad(f"recorded for chain {anchor.get('chain_id')}, the RPC serves chain {chain_id}")
        note, checkpoint = notes[size]
        try:
            tx = w3.eth.get_transaction(tx_hash)
            receipt = w3.eth.get_transaction_receipt(tx_hash)
        except Exception as exc:  # TransactionNotFound and transport errors alike
            raise bad(f"not found on chain ({type(exc).__name__})") from exc
        if receipt["status"] != 1:
            raise bad("reverted")
        if bytes(tx["input"]) != anchor_calldata(note, checkpoint):
            raise bad("calldata does not commit to this checkpoint")
        if (tx.get("to") or "").lower() != str(anchor.get("to", "")).lower() or int(tx["value"]) != 0:
            raise bad("target or value differs from the record")
        results.append({"size": size, "tx_hash": tx_hash, "block_number": receipt["blockNumber"],
                        "confirmations": head - receipt["blockNumber"] + 1})
    return results
