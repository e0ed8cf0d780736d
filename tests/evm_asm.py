"""A few runtime contracts assembled byte by byte for the in-process chain (no compiler):
a selector dispatcher answering fixed return data, an EIP-1167 clone, an EIP-1967 proxy, and
the init code that deploys them (optionally writing storage slots first)."""

from __future__ import annotations

import eth_abi
from eth_utils import keccak

PUSH1, PUSH2, PUSH4, PUSH20, PUSH32 = 0x60, 0x61, 0x63, 0x73, 0x7F
CALLDATALOAD, SHR, DUP1, EQ, JUMPI, JUMPDEST, CODECOPY, RETURN, REVERT, SSTORE, STOP = (
    0x35, 0x1C, 0x80, 0x14, 0x57, 0x5B, 0x39, 0xF3, 0xFD, 0x55, 0x00)


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def dispatcher(answers: dict[str, bytes]) -> bytes:
    """Runtime code: for each ``signature`` in ``answers`` return its bytes; anything else reverts.

    Layout: dispatch table (fixed size per entry), revert, then one handler per entry that
    CODECOPYs its blob (appended after the handlers) to memory and returns it.
    """
    entries = list(answers.items())
    head = bytes([PUSH1, 0, CALLDATALOAD, PUSH1, 0xE0, SHR])
    entry_size = 1 + 1 + 4 + 1 + 1 + 2 + 1  # DUP1 PUSH4 sel EQ PUSH2 dest JUMPI
    revert = bytes([PUSH1, 0, DUP1, REVERT])
    handler_size = 1 + 3 + 3 + 2 + 1 + 3 + 2 + 1  # JUMPDEST PUSH2 len PUSH2 off PUSH1 0 CODECOPY PUSH2 len PUSH1 0 RETURN
    handlers_at = len(head) + entry_size * len(entries) + len(revert)
    blobs_at = handlers_at + handler_size * len(entries)
    table, handlers, blobs = b"", b"", b""
    for i, (signature, blob) in enumerate(entries):
        dest = handlers_at + i * handler_size
        table += bytes([DUP1, PUSH4]) + selector(signature) + bytes([EQ, PUSH2]) + dest.to_bytes(2, "big") + bytes([JUMPI])
        offset = blobs_at + len(blobs)
        handlers += (bytes([JUMPDEST, PUSH2]) + len(blob).to_bytes(2, "big") + bytes([PUSH2]) + offset.to_bytes(2, "big")
                     + bytes([PUSH1, 0, CODECOPY, PUSH2]) + len(blob).to_bytes(2, "big") + bytes([PUSH1, 0, RETURN]))
        blobs += blob
    return head + table + revert + handlers + blobs


def erc20_metadata(symbol: str | bytes, name: str | bytes, decimals: int) -> bytes:
    """Token runtime answering symbol()/name() (ABI string, or bytes32 when given bytes) and decimals()."""
    def text(value: str | bytes) -> bytes:
        return value.ljust(32, b"\x00") if isinstance(value, bytes) else eth_abi.encode(["string"], [value])
    return dispatcher({"symbol()": text(symbol), "name()": text(name),
                       "decimals()": eth_abi.encode(["uint8"], [decimals])})


def eip1167_clone(target: str) -> bytes:
    """EIP-1167 minimal proxy runtime delegating to ``target``."""
    return bytes.fromhex("363d3d373d3d3d363d73") + bytes.fromhex(target[2:]) + bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def eip1967_proxy_runtime(slot: int) -> bytes:
    """A runtime that reads the EIP-1967 ``slot`` (PUSH32 slot; SLOAD; STOP) — what detection looks for."""
    return bytes([PUSH32]) + slot.to_bytes(32, "big") + bytes([0x54, STOP])


def init_code(runtime: bytes, storage: dict[int, str] | None = None) -> bytes:
    """Constructor: SSTORE each ``{slot: address}``, then return ``runtime``."""
    prologue = b""
    for slot, address in (storage or {}).items():
        prologue += bytes([PUSH20]) + bytes.fromhex(address[2:]) + bytes([PUSH32]) + slot.to_bytes(32, "big") \
            + bytes([SSTORE])
    copy_len = 3 + 3 + 2 + 1 + 3 + 2 + 1  # PUSH2 len PUSH2 off PUSH1 0 CODECOPY PUSH2 len PUSH1 0 RETURN
    offset = len(prologue) + copy_len
    copy = (bytes([PUSH2]) + len(runtime).to_bytes(2, "big") + bytes([PUSH2]) + offset.to_bytes(2, "big")
            + bytes([PUSH1, 0, CODECOPY, PUSH2]) + len(runtime).to_bytes(2, "big") + bytes([PUSH1, 0, RETURN]))
    return prologue + copy + runtime


def deploy(w3, runtime: bytes, storage: dict[int, str] | None = None) -> str:
    """Deploy ``runtime`` from the first funded account; returns the new contract's address."""
    tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "data": "0x" + init_code(runtime, storage).hex(),
                                       "gas": 3_000_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert w3.eth.get_code(receipt.contractAddress) == runtime
    return receipt.contractAddress
