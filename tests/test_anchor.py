"""Anchoring checkpoints on an in-process EVM chain (eth-tester / py-evm) and checking the anchors."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from auditinf.errors import KeyFileError, LedgerError, VerificationError
from auditinf.ledger import Ledger, load_signer
from auditinf.ledger.anchor import anchor_checkpoint, check_anchors, stored_anchors
from auditinf.ledger.anchor_tx import fee_fields, load_account
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


# -- anchoring from a local account key (EIP-1559, signed with eth-account, eth_sendRawTransaction) --
def key_file(path: Path, account, mode: int = 0o600) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, (account.key.hex() + "\n").encode())
    os.close(fd)
    os.chmod(path, mode)
    return path


def fund(chain: Web3, address: str, wei: int) -> None:
    chain.eth.wait_for_transaction_receipt(
        chain.eth.send_transaction({"from": chain.eth.accounts[0], "to": address, "value": wei}))


def test_anchor_signed_locally_from_a_key_file(filled: Ledger, chain: Web3, signer, tmp_path: Path):
    fresh = Account.create()  # an account the node knows nothing about
    fund(chain, fresh.address, 10**17)
    account = load_account(key_file(tmp_path / "anchor.key", fresh))
    assert account.address == fresh.address and fresh.address not in chain.eth.accounts
    before = chain.eth.get_balance(fresh.address)
    row = anchor_checkpoint(filled, chain, account=account)
    tx, receipt = chain.eth.get_transaction(row.tx_hash), chain.eth.get_transaction_receipt(row.tx_hash)
    assert tx["type"] == 2 and tx["chainId"] == chain.eth.chain_id and tx["nonce"] == 0
    assert tx["from"] == tx["to"] == fresh.address == row.to_address and tx["value"] == 0
    latest = filled.latest_checkpoint()
    expected = chain.eth.contract(abi=ANCHOR_ABI).encode_abi(
        "anchor", [hashlib.sha256(latest.note.encode()).digest(), 7, latest.root])
    assert "0x" + bytes(tx["input"]).hex() == expected
    # the node holds no key for this sender (see above) and derived it from the signature: signed locally
    data = bytes(tx["input"])  # calldata tokens: 1 per zero byte, 4 per non-zero byte (EIP-7623)
    tokens = data.count(0) + 4 * sum(1 for b in data if b)
    # no code runs at an EOA: 21,000 + 4 gas per token (EIP-2028), or Prague's floor of 10 per token (EIP-7623)
    assert receipt["gasUsed"] == 21_000 + max(4 * tokens, 10 * tokens)
    assert tx["gas"] >= receipt["gasUsed"] and tx["maxFeePerGas"] >= receipt["effectiveGasPrice"]
    assert chain.eth.get_balance(fresh.address) == before - receipt["gasUsed"] * receipt["effectiveGasPrice"]
    report = verified(filled, signer)
    assert check_anchors(stored_anchors(DbSource(filled)), report.notes, chain)[0]["tx_hash"] == row.tx_hash
    # the next anchor takes the next nonce
    filled.append({"kind": "t", "more": 1})
    filled.checkpoint_now()
    assert chain.eth.get_transaction(anchor_checkpoint(filled, chain, account=account).tx_hash)["nonce"] == 1


def test_local_anchor_catches_a_history_re_signed_with_the_same_key(filled: Ledger, chain: Web3, signer,
                                                                     tmp_path: Path):
    fresh = Account.create()
    fund(chain, fresh.address, 10**17)
    anchor_checkpoint(filled, chain, account=load_account(key_file(tmp_path / "a.key", fresh)))
    forged = Ledger(f"sqlite:///{tmp_path / 'forged.db'}", signer)  # the operator rewrites the 7 records
    try:
        for i in range(7):
            forged.append({"kind": "t", "i": i, "edited": True})
        forged.checkpoint_now()
        forged_report = verified(forged, signer)  # signatures and checkpoints alone cannot tell
        with pytest.raises(VerificationError) as exc:
            check_anchors(stored_anchors(DbSource(filled)), forged_report.notes, chain)
        assert exc.value.step == "anchor" and "calldata" in exc.value.message
    finally:
        forged.close()


def test_account_key_file_must_be_private_and_well_formed(tmp_path: Path):
    fresh = Account.create()
    loose = key_file(tmp_path / "loose.key", fresh, 0o640)
    with pytest.raises(KeyFileError) as exc:
        load_account(loose)
    assert "chmod 600" in exc.value.message and fresh.key.hex() not in exc.value.message
    for bad in ("0x" + "zz" * 32, "ab" * 31, "00" * 32, "ff" * 32):  # not hex, short, zero, above the curve order
        path = tmp_path / "bad.key"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, bad.encode())
        os.close(fd)
        with pytest.raises(KeyFileError) as exc:
            load_account(path)
        assert bad not in exc.value.message and bad not in str(exc.value.__cause__ or "")


@pytest.mark.parametrize("balance", [0, 21_000])  # nothing; less than the cheapest call at today's fees
def test_insufficient_funds_is_typed_and_nothing_is_recorded(filled: Ledger, chain: Web3, tmp_path: Path,
                                                             balance: int):
    fresh = Account.create()
    if balance:
        fund(chain, fresh.address, balance)
    with pytest.raises(LedgerError) as exc:
        anchor_checkpoint(filled, chain, account=load_account(key_file(tmp_path / "poor.key", fresh)))
    assert exc.value.code == "insufficient_funds" and str(balance) in exc.value.message
    assert chain.eth.get_transaction_count(fresh.address) == 0  # nothing was sent
    assert stored_anchors(DbSource(filled)) == []


def test_cli_anchor_with_account_key_file(tmp_path: Path):
    assert run(tmp_path, "keygen").returncode == 0
    for _ in range(3):
        assert run(tmp_path, "risk", str(SAMPLE)).returncode == 0
    fresh = Account.create()
    key = key_file(tmp_path / "anchor.key", fresh)
    secret = fresh.key.hex()
    with EvmRpcServer() as rpc:
        poor = run(tmp_path, "anchor", "--rpc", rpc.url, "--account-key-file", str(key))
        assert poor.returncode == 2 and json.loads(poor.stdout)["error"]["code"] == "insufficient_funds"
        fund(rpc.w3, fresh.address, 10**17)
        os.chmod(key, 0o644)
        loose = run(tmp_path, "anchor", "--rpc", rpc.url, "--account-key-file", str(key))
        assert loose.returncode == 2 and json.loads(loose.stdout)["error"]["code"] == "key_file_error"
        assert rpc.w3.eth.get_transaction_count(fresh.address) == 0
        os.chmod(key, 0o600)
        code, anchored = jrun(tmp_path, "anchor", "--rpc", rpc.url, "--account-key-file", str(key))
        assert code == 0 and anchored["size"] == 3 and anchored["to"] == fresh.address
        assert rpc.w3.eth.get_transaction(anchored["tx_hash"])["from"] == fresh.address
        done = run(tmp_path, "verify", "--anchors", rpc.url, "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["anchors"][0]["tx_hash"] == anchored["tx_hash"]
        # the operator re-signs a different history of the same size and keeps the anchor row
        forged = tmp_path / "forged.db"
        ledger = Ledger(f"sqlite:///{forged}", load_signer(tmp_path / "k" / "s.key", "auditinf.local/ledger"))
        for i in range(3):
            ledger.append({"kind": "t", "forged": i})
        ledger.close()
        with sqlite3.connect(forged) as conn:
            conn.execute(f"ATTACH DATABASE '{tmp_path / 'l.db'}' AS real")
            conn.execute("CREATE TABLE anchor AS SELECT * FROM real.anchor")
        plain = run(tmp_path, "verify", "--ledger-url", f"sqlite:///{forged}", "--json")
        assert plain.returncode == 0  # without the chain the rewrite is invisible
        caught = run(tmp_path, "verify", "--ledger-url", f"sqlite:///{forged}", "--anchors", rpc.url, "--json")
        assert caught.returncode == 1 and json.loads(caught.stdout)["step"] == "anchor"
        for done in (poor, loose, caught):
            assert secret not in done.stdout + done.stderr and secret[2:] not in done.stdout + done.stderr


def test_no_receipt_in_time_is_typed_and_not_recorded(filled: Ledger, chain: Web3, tmp_path: Path):
    fresh = Account.create()
    fund(chain, fresh.address, 10**17)
    chain.provider.ethereum_tester.disable_auto_mine_transactions()  # the transaction waits in the pool
    with pytest.raises(LedgerError) as exc:
        anchor_checkpoint(filled, chain, account=load_account(key_file(tmp_path / "a.key", fresh)), timeout_s=0.3)
    assert exc.value.code == "anchor_timeout"
    assert stored_anchors(DbSource(filled)) == []
    chain.provider.ethereum_tester.mine_blocks(1)  # it was sent: the hash in the message is the mined one
    assert chain.eth.get_transaction_count(fresh.address) == 1
    sent = exc.value.message.split()[2]
    assert chain.eth.get_transaction_receipt(sent)["status"] == 1


class FeeNode:
    """The fee methods of a node (web3's ``w3.eth`` surface), each either a value or an exception."""

    def __init__(self, base, history, priority, gas_price=7):  # noqa: ANN001
        self.eth = self
        self._base, self._history, self._priority, self.gas_price = base, history, priority, gas_price

    def get_block(self, _which):  # noqa: ANN001, ANN202
        return {} if self._base is None else {"baseFeePerGas": self._base}

    def fee_history(self, count, newest, percentiles):  # noqa: ANN001, ANN202
        assert (count, newest, percentiles) == (10, "latest", [50])
        if isinstance(self._history, Exception):
            raise self._history
        return {"reward": self._history}

    @property
    def max_priority_fee(self):  # noqa: ANN202
        if isinstance(self._priority, Exception):
            raise self._priority
        return self._priority


@pytest.mark.parametrize("node, expected", [
    (FeeNode(100, [[5], [9], [2]], 3), {"type": 2, "maxFeePerGas": 205, "maxPriorityFeePerGas": 5}),  # median
    (FeeNode(100, [], 3), {"type": 2, "maxFeePerGas": 203, "maxPriorityFeePerGas": 3}),  # no rewards yet
    (FeeNode(100, ValueError("eth_feeHistory unsupported"), 4), {"type": 2, "maxFeePerGas": 204,
                                                                 "maxPriorityFeePerGas": 4}),
    (FeeNode(100, ValueError("no"), ValueError("no")), {"type": 2, "maxFeePerGas": 200 + 10**9,
                                                        "maxPriorityFeePerGas": 10**9}),  # 1 gwei
    (FeeNode(None, [[5]], 3), {"gasPrice": 7}),  # no base fee: a legacy transaction at eth_gasPrice
])
def test_fee_fields_fall_back_in_order(node, expected):
    assert fee_fields(node) == expected
