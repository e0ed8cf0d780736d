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


class NoChainFacts:
    """No chain access: every fact is unknown."""

    source = "none"

    def code(self, chain_id: int, address: str) -> bytes | None:
        return None


class StaticChainFacts:
    """Facts given up front: ``{address: "0x…code"}`` (``"0x"`` = EOA) for one chain."""

    def __init__(self, chain_id: int, codes: dict[str, str], source: str = "static") -> None:
        self.chain_id = chain_id
        self.source = source
        self._codes = {a.lower(): bytes.fromhex(c[2:] if c.startswith("0x") else c) for a, c in codes.items()}

    def code(self, chain_id: int, address: str) -> bytes | None:
        if chain_id != self.chain_id:
            return None
        return self._codes.get(address.lower())
