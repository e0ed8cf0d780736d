"""Anchoring checkpoints on an in-process EVM chain (eth-tester / py-evm) and checking the anchors."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from web3 import EthereumTesterProvider, Web3

from auditinf.errors import LedgerError, VerificationError
from auditinf.ledger import Ledger
from auditinf.ledger.anchor import anchor_checkpoint, check_anchors, stored_anchors
from auditinf.ledger.audit import audit
from auditinf.ledger.bundle import BundleSource, DbSource, export_bundle

from .fakes.evm_rpc import EvmRpcServer
from .test_audit import jrun
from .test_cli import SAMPLE, run

ANCHOR_ABI = [{"type": "function", "name": "anchor", "stateMutability": "nonpayable", "outputs": [],
               "inputs": [{"name": "noteHash", "type": "bytes32"}, {"name": "treeSize", "type": "uint64"},
                          {"name": "rootHash", "type": "bytes32"}]}]


@pytest.fixture
def chain() -> Web3:
    return Web3(EthereumTesterProvider())


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    for i in range(7):
        ledger.append({"kind": "t", "i": i})
    ledger.checkpoint_now()
    return ledger


def verified(ledger: Ledger, signer):
    report = audit(DbSource(ledger), {signer.kid: signer.verifier}, signer.verifier.name)
    assert report.ok
    return report


def test_anchor_publishes_the_checkpoint_hash(filled: Ledger, chain: Web3, signer):
    row = anchor_checkpoint(filled, chain)
    latest = filled.latest_checkpoint()
    assert row.size == latest.size == 7 and row.chain_id == chain.eth.chain_id
    tx = chain.eth.get_transaction(row.tx_hash)
    assert tx["value"] == 0 and tx["to"] == tx["from"] == chain.eth.accounts[0]  # to self by default
    # calldata as any ABI-aware tool encodes anchor(noteHash, size, root)
    contract = chain.eth.contract(abi=ANCHOR_ABI)
    expected = contract.encode_abi("anchor", [hashlib.sha256(latest.note.encode()).digest(), 7, latest.root])
    assert "0x" + bytes(tx["input"]).hex() == expected
    assert row.note_sha256 == hashlib.sha256(latest.note.encode()).hexdigest()
    report = verified(filled, signer)
    results = check_anchors(stored_anchors(DbSource(filled)), report.notes, chain)
    assert results == [{"size": 7, "tx_hash": row.tx_hash, "block_number": row.block_number, "confirmations": 1}]


def test_anchor_to_a_configured_contract_address(filled: Ledger, chain: Web3, signer):
    target = chain.eth.accounts[3]
    row = anchor_checkpoint(filled, chain, to=target, sender=chain.eth.accounts[1])
    assert chain.eth.get_transaction(row.tx_hash)["to"] == target
    assert check_anchors(stored_anchors(DbSource(filled)), verified(filled, signer).notes, chain)


def test_anchor_that_does_not_match_fails(filled: Ledger, chain: Web3, signer):
    row = anchor_checkpoint(filled, chain)
    for i in range(3):
        filled.append({"kind": "t", "more": i})
    filled.checkpoint_now()
    other = anchor_checkpoint(filled, chain)
    report = verified(filled, signer)
    anchors = stored_anchors(DbSource(filled))
    assert len(check_anchors(anchors, report.notes, chain)) == 2
    cases = {
        "another checkpoint's transaction": {**anchors[0], "tx_hash": other.tx_hash},
        "unknown transaction": {**anchors[0], "tx_hash": "0x" + "11" * 32},
        "another chain": {**anchors[0], "chain_id": 1},
        "another target": {**anchors[0], "to": chain.eth.accounts[5]},
        "no such checkpoint": {**anchors[0], "size": 5},
    }
    for why, forged in cases.items():
        with pytest.raises(VerificationError) as exc:
            check_anchors([forged], report.notes, chain)
        assert exc.value.step == "anchor", why
    assert row.size == 7


def test_no_checkpoint_no_anchor(ledger: Ledger, chain: Web3):
    with pytest.raises(LedgerError) as exc:
        anchor_checkpoint(ledger, chain)
    assert exc.value.code == "no_checkpoint"


def test_bundle_carries_anchors(filled: Ledger, chain: Web3, signer, tmp_path: Path):
    row = anchor_checkpoint(filled, chain)
    export_bundle(filled, tmp_path / "b", {signer.kid: signer.verifier}, signer.verifier.name)
    source = BundleSource(tmp_path / "b")
    assert stored_anchors(source) == [row.to_dict()]
    report = audit(source, {signer.kid: signer.verifier}, signer.verifier.name)
    assert check_anchors(stored_anchors(source), report.notes, chain)[0]["tx_hash"] == row.tx_hash


def test_cli_anchor_and_verify_anchors(tmp_path: Path):
    assert run(tmp_path, "keygen").returncode == 0
    for _ in range(3):
        assert run(tmp_path, "risk", str(SAMPLE)).returncode == 0
    with EvmRpcServer() as rpc:
        code, anchored = jrun(tmp_path, "anchor", "--rpc", rpc.url)
        assert code == 0 and anchored["size"] == 3
        assert rpc.w3.eth.get_transaction(anchored["tx_hash"])["blockNumber"] == anchored["block_number"]
        code, report = jrun(tmp_path, "verify", "--anchors", rpc.url, "--json")
        assert code == 0 and report["anchors"][0]["tx_hash"] == anchored["tx_hash"]
        with sqlite3.connect(tmp_path / "l.db") as conn:
            conn.execute("UPDATE anchor SET tx_hash = ?", ("0x" + "22" * 32,))
        code, report = jrun(tmp_path, "verify", "--anchors", rpc.url, "--json")
        assert code == 1 and report["step"] == "anchor"
