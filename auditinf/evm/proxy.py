"""Proxy detection from runtime bytecode, with the implementation when chain facts allow.

- EIP-1167 minimal proxy: the runtime is exactly ``363d3d373d3d3d363d73 ‖ target (20 bytes) ‖
  5af43d82803e903d91602b57fd5bf3`` — the implementation is in the code itself.
- EIP-1967 proxy: the code pushes the implementation slot
  ``bytes32(uint256(keccak256("eip1967.proxy.implementation")) - 1)`` (or the beacon slot) as a
  PUSH32 constant; the implementation (or beacon) address is read from that storage slot through
  :class:`~auditinf.evm.chain.ChainFacts` ``storage`` when available, else reported unknown. For a
  beacon, the implementation is what the beacon's ``implementation()`` returns: not read here.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from .bytecode import methods_from_bytecode
from .chain import ChainFacts
from .hexdata import checksum_address, parse_hex

__all__ = ["detect_proxy", "proxy_report", "EIP1967_IMPLEMENTATION_SLOT", "EIP1967_BEACON_SLOT", "EIP1967_ADMIN_SLOT"]

_1167_PREFIX = bytes.fromhex("363d3d373d3d3d363d73")
_1167_SUFFIX = bytes.fromhex("5af43d82803e903d91602b57fd5bf3")


def _slot(label: str) -> int:
    return int.from_bytes(keccak(text=label), "big") - 1


EIP1967_IMPLEMENTATION_SLOT = _slot("eip1967.proxy.implementation")
EIP1967_BEACON_SLOT = _slot("eip1967.proxy.beacon")
EIP1967_ADMIN_SLOT = _slot("eip1967.proxy.admin")
_PUSH32 = 0x7F


def _storage_address(chain: ChainFacts | None, chain_id: int, address: str | None, slot: int,
                     unknown: list[str]) -> str | None:
    read = getattr(chain, "storage", None)
    value = read(chain_id, address, slot) if read and address else None
    if value is None:
        unknown.append(f"storage slot {hex(slot)} of {address or 'the contract'} (eth_getStorageAt)")
        return None
    return checksum_address(value[-20:].rjust(20, b"\x00"))


def detect_proxy(code: bytes, *, chain: ChainFacts | None = None, chain_id: int = 1,
                 address: str | None = None) -> dict[str, Any] | None:
    """``{"standard": "EIP-1167" | "EIP-1967" | "EIP-1967 beacon", "implementation"?, "beacon"?,
    "unknown": [facts]}`` for proxy runtime ``code``, ``None`` for other code. ``address`` is where
    the code is deployed (needed to read EIP-1967 slots)."""
    if len(code) == 45 and code.startswith(_1167_PREFIX) and code.endswith(_1167_SUFFIX):
        return {"standard": "EIP-1167", "implementation": checksum_address(code[10:30]), "unknown": []}
    unknown: list[str] = []
    for slot, standard, key in ((EIP1967_IMPLEMENTATION_SLOT, "EIP-1967", "implementation"),
                                (EIP1967_BEACON_SLOT, "EIP-1967 beacon", "beacon")):
        if bytes([_PUSH32]) + slot.to_bytes(32, "big") in code:
            return {"standard": standard, key: _storage_address(chain, chain_id, address, slot, unknown),
                    "unknown": unknown}
    return None


def proxy_report(code_hex: str, registry: Any, chain: ChainFacts | None, chain_id: int,
                 address: str | None) -> dict[str, Any] | None:
    """:func:`detect_proxy` on ``code_hex``, plus ``implementation_methods`` (as
    :func:`~auditinf.evm.bytecode.methods_from_bytecode` lists them) when chain facts give the
    implementation's code. ``None`` when the code is no proxy."""
    proxy = detect_proxy(parse_hex(code_hex, field="bytecode"), chain=chain, chain_id=chain_id, address=address)
    implementation = (proxy or {}).get("implementation")
    if implementation:
        code = chain.code(chain_id, implementation) if chain is not None else None
        if code:
            proxy["implementation_methods"] = methods_from_bytecode("0x" + code.hex(), registry)
        else:
            proxy["unknown"].append(f"the code of {implementation} (eth_getCode)")
    return proxy
