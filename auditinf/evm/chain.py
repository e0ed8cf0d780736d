"""Chain facts the rules may use (is an address a contract?), and where they came from.

Facts come from a :class:`StaticChainFacts` (tests, or a caller that already knows them), from a
node over JSON-RPC (:class:`RpcChainFacts`, web3.py), or are unknown (:class:`NoChainFacts`).
Rules must say which facts were unknown rather than guess; every fact used is listed in
``consulted`` for the audit record, and every RPC call is a tool call of the record
(:attr:`RpcChainFacts.tool_calls`).
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Protocol

from web3 import Web3

from .hexdata import checksum_address

__all__ = ["ChainFacts", "NoChainFacts", "StaticChainFacts", "RpcChainFacts"]


class ChainFacts(Protocol):
    source: str

    def code(self, chain_id: int, address: str) -> bytes | None:
        """Runtime code at ``address`` (``b""`` for an EOA), or ``None`` when unknown."""

    # Optional (read with getattr): ``storage(chain_id, address, slot) -> bytes | None`` — the
    # 32-byte word at ``slot`` (eth_getStorageAt), used for EIP-1967 proxy slots.


class NoChainFacts:
    """No chain access: every fact is unknown."""

    source = "none"

    def code(self, chain_id: int, address: str) -> bytes | None:
        return None


class StaticChainFacts:
    """Facts given up front: ``{address: "0x…code"}`` (``"0x"`` = EOA) for one chain."""

    def __init__(self, chain_id: int, codes: dict[str, str], source: str = "static",
                 storage: dict[tuple[str, int], str] | None = None) -> None:
        self.chain_id = chain_id
        self.source = source
        self._codes = {a.lower(): bytes.fromhex(c[2:] if c.startswith("0x") else c) for a, c in codes.items()}
        self._storage = {(a.lower(), slot): bytes.fromhex(v[2:] if v.startswith("0x") else v).rjust(32, b"\x00")
                         for (a, slot), v in (storage or {}).items()}

    def storage(self, chain_id: int, address: str, slot: int) -> bytes | None:
        """The 32-byte word given for ``(address, slot)``, or ``None`` when not given."""
        if chain_id != self.chain_id:
            return None
        return self._storage.get((address.lower(), slot))

    def code(self, chain_id: int, address: str) -> bytes | None:
        if chain_id != self.chain_id:
            return None
        return self._codes.get(address.lower())




class RpcChainFacts:
    """Facts read from one node through web3.py, for one request.

    All reads of a request use one block (the node's latest when the first fact is asked,
    pinned), and only on the node's own chain (``eth_chainId``): a fact for another chain is
    unknown. Each JSON-RPC call is logged in :attr:`tool_calls` as ``{"tool": "rpc", "method",
    "params", "block_number", "result_sha256" | "error"}`` (the result is hashed, not stored:
    code can be large). A failing call (timeout, connection, JSON-RPC error, revert) makes that
    fact unknown (``None``).
    """

    source = "rpc"

    def __init__(self, w3: Web3, *, endpoint: str) -> None:
        self.w3 = w3
        self.endpoint = endpoint  # for the record: scheme://host[:port] only (see chain_source)
        self.tool_calls: list[dict[str, Any]] = []
        self._chain_id: int | None = None
        self._block: int | None = None
        self._ready = False

    def session(self) -> "RpcChainFacts":
        """Fresh facts over the same node for the next request (own pinned block and call log)."""
        return RpcChainFacts(self.w3, endpoint=self.endpoint)

    def _log(self, method: str, params: list, result: Any = None, error: BaseException | None = None) -> None:
        entry: dict[str, Any] = {"tool": "rpc", "endpoint": self.endpoint, "method": method, "params": params,
                                 "block_number": self._block}
        if error is not None:
            entry["error"] = type(error).__name__
        else:
            raw = bytes(result) if isinstance(result, (bytes, bytearray)) else str(result).encode()
            entry["result_sha256"] = hashlib.sha256(raw).hexdigest()
        self.tool_calls.append(entry)

    def _rpc(self, method: str, params: list, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        # The node is outside our control: a transport error (requests), a JSON-RPC error or revert
        # (web3.py), or whatever a provider raises makes this one fact unknown — never a 500.
        except Exception as exc:  # noqa: BLE001 — the one boundary where any failure means "unknown"
            self._log(method, params, error=exc)
            return None
        self._log(method, params, result)
        return result

    def _on_chain(self, chain_id: int) -> bool:
        if not self._ready:
            self._ready = True
            self._chain_id = self._rpc("eth_chainId", [], lambda: int(self.w3.eth.chain_id))
            if self._chain_id is not None:  # an unreachable node is asked once, not once per fact
                self._block = self._rpc("eth_blockNumber", [], lambda: int(self.w3.eth.block_number))
        return self._chain_id == chain_id and self._block is not None

    def code(self, chain_id: int, address: str) -> bytes | None:
        """``eth_getCode`` at the pinned block; ``b""`` for an EOA."""
        if not self._on_chain(chain_id):
            return None
        addr = checksum_address(address)
        result = self._rpc("eth_getCode", [addr, hex(self._block)],
                           lambda: self.w3.eth.get_code(addr, block_identifier=self._block))
        return bytes(result) if result is not None else None

    def storage(self, chain_id: int, address: str, slot: int) -> bytes | None:
        """``eth_getStorageAt``: the 32-byte word at ``slot``."""
        if not self._on_chain(chain_id):
            return None
        addr = checksum_address(address)
        result = self._rpc("eth_getStorageAt", [addr, hex(slot), hex(self._block)],
                           lambda: self.w3.eth.get_storage_at(addr, slot, block_identifier=self._block))
        return bytes(result).rjust(32, b"\x00") if result is not None else None

    def call(self, chain_id: int, address: str, data: bytes) -> bytes | None:
        """``eth_call`` of ``data`` on ``address`` (no sender, no value); ``None`` on revert."""
        if not self._on_chain(chain_id):
            return None
        addr = checksum_address(address)
        tx = {"to": addr, "data": "0x" + data.hex()}
        result = self._rpc("eth_call", [tx, hex(self._block)], lambda: self.w3.eth.call(tx, block_identifier=self._block))
        return bytes(result) if result is not None else None
