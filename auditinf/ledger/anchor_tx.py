"""Sending an anchor transaction from a local Ethereum account: key file, EIP-1559 fees, local signing.

A public node holds no account for us, so ``auditinf anchor --account-key-file`` signs locally:

- key file: the account's secp256k1 private key as 64 hex digits (optional ``0x``, surrounding
  whitespace ignored), mode 0600 or stricter like every key file (:func:`.keys.read_secret_file`);
  the key is never printed, logged or put in an error message;
- transaction: EIP-1559 (type 2) with the node's chain id (EIP-155 replay protection), the
  account's pending nonce, the node's gas estimate plus 20 % (the target may be a contract), and
  ``maxFeePerGas = 2 × baseFee + tip`` (room for the base fee to rise six blocks in a row, EIP-1559
  lets it grow 12.5 % per block); the tip is the median 50th-percentile reward of the last 10 blocks
  (``eth_feeHistory``), else ``eth_maxPriorityFeePerGas``, else 1 gwei. A chain without a base
  fee gets a legacy (EIP-155) transaction at ``eth_gasPrice``;
- signed with eth-account, sent with ``eth_sendRawTransaction``, receipt awaited with a timeout.

Funds are checked before signing: the balance must cover ``gas × maxFeePerGas`` (the most the
transaction can cost), else :class:`~auditinf.errors.LedgerError` ``insufficient_funds`` and
nothing is sent.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ..errors import KeyFileError, LedgerError
from .keys import read_secret_file

__all__ = ["load_account", "intrinsic_gas", "fee_fields", "send_signed"]

_HEX_KEY = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_DEFAULT_TIP = 10**9  # 1 gwei
_NO_FUNDS = ("insufficient funds", "cannot afford")  # geth/erigon/reth/anvil; eth-tester


def load_account(path: Path) -> LocalAccount:
    """The Ethereum account whose private key is in ``path`` (see the module docstring). Raises
    :class:`KeyFileError` when the file is missing, readable by others, or not a valid key."""
    raw = read_secret_file(path, "account key")
    match = _HEX_KEY.fullmatch(raw.decode("ascii", "replace").strip())
    if match is None:
        raise KeyFileError(f"account key {path} must hold one private key as 64 hex digits")
    try:
        return Account.from_key(bytes.fromhex(match.group(1)))
    except Exception:  # out of the secp256k1 range; eth-keys raises several types
        raise KeyFileError(f"account key {path} is not a valid secp256k1 private key") from None


def intrinsic_gas(data: bytes) -> int:
    """The least gas a call with ``data`` can cost: 21,000 plus 16 per non-zero and 4 per zero
    calldata byte (Yellow Paper G_transaction, G_txdatanonzero per EIP-2028). A lower bound: since
    Prague, EIP-7623 charges at least 10 gas per calldata token; the node's estimate decides."""
    zeros = data.count(0)
    return 21_000 + 16 * (len(data) - zeros) + 4 * zeros


def _tip(w3) -> int:  # noqa: ANN001 - Web3
    try:
        history = w3.eth.fee_history(10, "latest", [50])
        rewards = [r[0] for r in (history.get("reward") or []) if r]
        if rewards:
            return int(statistics.median(rewards))
    except Exception:  # noqa: S110 - not every node serves eth_feeHistory: try the next source
        pass
    try:
        return int(w3.eth.max_priority_fee)
    except Exception:
        return _DEFAULT_TIP


def fee_fields(w3) -> dict[str, int]:  # noqa: ANN001 - Web3
    """``{type, maxFeePerGas, maxPriorityFeePerGas}`` (wei per gas) for the next block, or
    ``{gasPrice}`` on a chain without EIP-1559 (see the module docstring)."""
    base = w3.eth.get_block("latest").get("baseFeePerGas")
    if base is None:
        return {"gasPrice": int(w3.eth.gas_price)}
    tip = _tip(w3)
    return {"type": 2, "maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}


def _no_funds(address: str, need: int, have: int) -> LedgerError:
    return LedgerError(f"account {address} holds {have} wei; the anchor transaction may cost up to {need} wei",
                       code="insufficient_funds")


def _refused(exc: Exception, what: str, address: str, need: int, have: int) -> LedgerError:
    """A node's refusal as a typed error: ``insufficient_funds`` when it says so, else ``anchor_failed``."""
    if any(marker in str(exc).lower() for marker in _NO_FUNDS):
        return _no_funds(address, need, have)
    return LedgerError(f"the node refused to {what} the anchor transaction: {type(exc).__name__}",
                       code="anchor_failed")


def send_signed(w3, account: LocalAccount, to: str, data: bytes, timeout_s: float) -> tuple[bytes, Any]:  # noqa: ANN001
    """Send a zero-value call of ``data`` to ``to`` from ``account``, signed locally; returns the
    transaction hash (32 bytes) and its receipt. Raises :class:`LedgerError`: ``insufficient_funds``
    (nothing sent), ``anchor_timeout`` (sent, no receipt within ``timeout_s`` seconds: the
    message names the hash), ``anchor_failed`` (the node refused it or the RPC failed)."""
    sender = account.address
    fees = fee_fields(w3)
    price = fees.get("maxFeePerGas", fees.get("gasPrice"))
    balance = w3.eth.get_balance(sender)
    if balance < intrinsic_gas(data) * price:  # before estimating: some nodes refuse to estimate for it
        raise _no_funds(sender, intrinsic_gas(data) * price, balance)
    call = {"from": sender, "to": to, "value": 0, "data": data}
    try:
        estimate = w3.eth.estimate_gas(call)
    except Exception as exc:
        raise _refused(exc, "estimate", sender, intrinsic_gas(data) * price, balance) from None
    gas = estimate + estimate // 5
    if balance < gas * price:
        raise _no_funds(sender, gas * price, balance)
    tx = {**call, **fees, "gas": gas, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(sender, "pending")}
    del tx["from"]
    signed = account.sign_transaction(tx)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    except Exception as exc:
        raise _refused(exc, "accept", sender, gas * price, balance) from None
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s)
    except Exception as exc:  # web3's TimeExhausted, or the RPC went away
        raise LedgerError(f"anchor transaction 0x{bytes(tx_hash).hex()} sent, no receipt within {timeout_s} s "
                          f"({type(exc).__name__}); it is not recorded", code="anchor_timeout") from None
    return bytes(tx_hash), receipt
