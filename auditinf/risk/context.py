"""What a risk rule may read: the (inner) transaction, its decoded call, bundled knowledge, policy
lists, chain facts — and where it records which facts it used or could not know."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ..evm.calls import CallAnalysis
from ..evm.chain import ChainFacts, NoChainFacts
from ..evm.registry import AbiRegistry
from ..evm.tx import Transaction
from ..evm.units import format_units

__all__ = ["RuleContext", "UNLIMITED_THRESHOLD", "PolicyLists"]

# Amounts at or above 2^255 are "unlimited" in practice (some dapps approve 2^255 or 2^256−2).
UNLIMITED_THRESHOLD = 2**255


@dataclass(frozen=True)
class PolicyLists:
    """The policy's ``lists`` section: lowercase addresses denied (known drainers) or trusted."""

    deny: frozenset[str] = frozenset()
    trusted: frozenset[str] = frozenset()


@dataclass
class RuleContext:
    """Everything a rule may read, plus what it learned (facts consulted / unknown).

    For an inner call ``tx`` is that call as its target sees it (``from`` = its ``msg.sender``)
    and ``path`` its place in the batch; ``origin`` is always the signed transaction.
    ``counterparties`` are addresses the signer is known to deal with (from the request), used
    to spot look-alike addresses.
    """

    tx: Transaction
    call: CallAnalysis
    registry: AbiRegistry
    chain: ChainFacts = field(default_factory=NoChainFacts)
    facts_consulted: list[dict] = field(default_factory=list)
    facts_unknown: list[str] = field(default_factory=list)
    lists: PolicyLists = field(default_factory=PolicyLists)
    counterparties: tuple[str, ...] = ()
    path: str | None = None
    origin: Transaction | None = None
    now: int = field(default_factory=lambda: int(time.time()))  # unix seconds, for expirations

    def __post_init__(self) -> None:
        if self.origin is None:
            self.origin = self.tx

    def inner(self, tx: Transaction, call: CallAnalysis, path: str) -> "RuleContext":
        """The context of an inner call (facts lists shared with this one)."""
        return replace(self, tx=tx, call=call, path=path)

    def has_role(self, address: str, role: str) -> bool:
        known = self.registry.known(self.tx.chain_id, address)
        return bool(known and role in known.roles)

    def trusted(self, address: str) -> bool:
        """A bundled trusted spender/router, or an address the policy's ``lists.trusted`` names."""
        return self.has_role(address, "trusted_spender") or address.lower() in self.lists.trusted

    def known_address(self, address: str) -> bool:
        return self.registry.known(self.tx.chain_id, address) is not None or address.lower() in self.lists.trusted

    def label(self, address: str) -> str:
        known = self.registry.known(self.tx.chain_id, address)
        return f"{address} ({known.label})" if known else address

    def is_eoa(self, address: str) -> bool | None:
        """True/False from chain facts, None (and noted as unknown) when no fact is available."""
        code = self.chain.code(self.tx.chain_id, address)
        if code is None:
            note = f"whether {address} is a contract (eth_getCode)"
            if note not in self.facts_unknown:
                self.facts_unknown.append(note)
            return None
        fact = {"fact": "eth_getCode", "address": address, "source": self.chain.source, "has_code": bool(code)}
        if fact not in self.facts_consulted:
            self.facts_consulted.append(fact)
        return not code

    def token_symbol(self, token: str | None = None) -> str:
        known = self.registry.known(self.tx.chain_id, token or self.tx.to)
        return known.symbol if known and known.symbol else "tokens"

    def token_amount(self, amount: int, token: str | None = None) -> str:
        known = self.registry.known(self.tx.chain_id, token or self.tx.to)
        if amount >= UNLIMITED_THRESHOLD:
            return "unlimited"
        if known and known.decimals is not None and known.symbol:
            return f"{format_units(amount, known.decimals)} {known.symbol}"
        return f"{amount} base units"
