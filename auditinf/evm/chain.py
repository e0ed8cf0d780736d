"""Chain facts the rules may use (is an address a contract?), and where they came from.

This slice ships no RPC client: facts come from a :class:`StaticChainFacts` (tests, or a caller
that already knows them) or are unknown. Rules must say which facts were unknown rather than
guess; every fact used is listed in ``consulted`` for the audit record.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["ChainFacts", "NoChainFacts", "StaticChainFacts"]


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
