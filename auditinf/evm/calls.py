"""Match a transaction's calldata to an ABI and decode it.

Candidates, in order: the ABI the client sent (matched by selector, never by name or argument
count); the bundled ABI deployed at ``to`` on ``chain_id``; every bundled function with the
selector. Several distinct signatures with one selector (a collision) are each tried with strict
decoding; those that decode stay as ranked ``candidates``, the first is reported as the call.
When none decodes strictly, an approval-family call is decoded as ABI coder v1 contracts read it
(:mod:`.lenient`) and marked ``noncanonical``: old tokens grant such approvals.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import BadCalldata
from .abi import AbiFunction
from .decode import UINT256_MAX, DecodedCall, decode_with
from .lenient import decode_lenient
from .nested.model import Budget
from .nested.tree import expand
from .registry import AbiRegistry, AbiSource
from .selectors import selector_table
from .tx import Transaction
from .units import format_units

if TYPE_CHECKING:  # pragma: no cover
    from .nested import Command, InnerCall

__all__ = ["CallAnalysis", "analyse_call"]


@dataclass(frozen=True)
class CallAnalysis:
    """What the calldata is. ``kind``: ``native_transfer`` | ``contract_creation`` | ``call`` |
    ``unknown_selector``. ``decoded`` is set for ``call``; ``selector`` whenever data ≥ 4 bytes."""

    kind: str
    selector: str | None = None
    decoded: DecodedCall | None = None
    source: AbiSource | None = None
    match: str | None = None  # "client_abi" | "address" | "selector"
    candidates: list[str] = field(default_factory=list)
    # nested decoding (see .nested): inner calls of a batch, commands of a Universal Router plan
    inner: tuple["InnerCall", ...] = ()
    commands: tuple["Command", ...] = ()
    deadline: str | None = None
    command_table: str | None = None
    nested_error: str | None = None
    truncated: bool = False
    method_candidates: tuple[dict, ...] = ()
    human_amount: str | None = None
    noncanonical: tuple[str, ...] = ()  # arguments cleaned by lenient (ABI coder v1) decoding

    def walk_inner(self):
        """Every inner call at every depth, depth first (paths ``0``, ``0.0``, ``0.1``, ``1``…)."""
        for inner in self.inner:
            yield from inner.walk()

    def to_dict(self, findings_by_path: dict[str, list[dict]] | None = None) -> dict[str, Any]:
        """The answer's ``decoded`` object: method/signature/selector/args (+ provenance).

        Batches add ``nested_calls`` (each with ``path``, ``via``, ``operation``, ``from``, ``to``,
        ``value`` in wei, its own decoded fields and ``findings``); Universal Router calls add
        ``commands``, ``deadline`` (unix seconds) and ``command_table``; unknown selectors add
        ``method_candidates`` from the bundled selector table.
        """
        base: dict[str, Any] = {"kind": self.kind, "method": None, "signature": None,
                                "selector": self.selector, "args": {}}
        if self.decoded is not None:
            base.update(self.decoded.to_dict())
        if self.source is not None:
            base["abi_source"] = dict(self.source.to_dict(), match=self.match)
        if len(self.candidates) > 1:
            base["candidates"] = self.candidates
        if self.human_amount is not None:
            base["human_amount"] = self.human_amount
        if self.method_candidates:
            base["method_candidates"] = list(self.method_candidates)
        if self.inner:
            base["nested_calls"] = [c.to_dict(findings_by_path) for c in self.inner]
        if self.commands:
            base["commands"] = [c.to_dict() for c in self.commands]
            base["command_table"] = self.command_table
        if self.deadline is not None:
            base["deadline"] = self.deadline
        if self.nested_error:
            base["nested_error"] = self.nested_error
        if self.truncated:
            base["nested_truncated"] = True
        if self.noncanonical:
            base["noncanonical"] = list(self.noncanonical)
        return base


def _try(candidates: list[tuple[AbiSource, AbiFunction]], data: bytes, match: str) -> CallAnalysis | None:
    decoded: list[tuple[AbiSource, DecodedCall]] = []
    errors: list[BadCalldata] = []
    for source, fn in candidates:
        try:
            decoded.append((source, decode_with(fn, data)))
        except BadCalldata as exc:
            errors.append(exc)
    if not decoded:
        for source, fn in candidates:  # what an ABI coder v1 contract would still run
            lenient = decode_lenient(fn, data)
            if lenient is not None:
                return CallAnalysis(kind="call", selector=fn.selector, decoded=lenient.decoded, source=source,
                                    match=match, candidates=[fn.signature], noncanonical=lenient.notes)
        if errors:
            raise errors[0]
        return None
    source, first = decoded[0]
    return CallAnalysis(
        kind="call", selector=first.selector, decoded=first, source=source, match=match,
        candidates=[d.signature for _, d in decoded],
    )


def analyse_call(tx: Transaction, registry: AbiRegistry, client_functions: Sequence[AbiFunction] | None = None,
                 *, _depth: int = 0, _budget: Budget | None = None, _context: str | None = None,
                 _path: str = "") -> CallAnalysis:
    """Decode ``tx.data``.

    Raises :class:`BadCalldata` with code ``calldata_too_short`` for 1–3 bytes of data (not
    padded and looked up: ``0x095ea7`` is not ``approve``), ``abi_decode_error`` when the matched
    ABI does not decode the arguments. ``client_functions`` is the client's ABI, already parsed
    with :func:`~auditinf.evm.abi.parse_abi` (so a bad ABI fails before any decoding). An unknown
    selector is not an error: ``kind == "unknown_selector"``. Batches and router plans are
    expanded recursively (:mod:`.nested`); the ``_``-prefixed arguments carry that recursion.
    """
    data = tx.data
    if tx.to is None:
        return CallAnalysis(kind="contract_creation")
    if not data:
        return CallAnalysis(kind="native_transfer")
    if len(data) < 4:
        raise BadCalldata(
            f"calldata is {len(data)} byte(s), shorter than a 4-byte selector: the call would hit the "
            "contract's fallback/receive path, not a function",
            code="calldata_too_short", field="data",
        )
    selector = "0x" + data[:4].hex()
    found = _match(tx, selector, registry, client_functions)
    if found is None:
        return CallAnalysis(kind="unknown_selector", selector=selector,
                            method_candidates=tuple(selector_table(registry).candidates(data)))
    amount = _human_amount(found, tx, registry)
    if amount is not None:
        found = replace(found, human_amount=amount)
    budget = _budget if _budget is not None else Budget(len(data))
    return expand(found, tx, registry, client_functions, depth=_depth, budget=budget,
                  context=_context or tx.to, path=_path)


# ERC-20 functions moving or allowing an amount → index of the amount argument (EIP-20)
_AMOUNT_AT = {"transfer(address,uint256)": 1, "approve(address,uint256)": 1, "transferFrom(address,address,uint256)": 2,
              "increaseAllowance(address,uint256)": 1, "decreaseAllowance(address,uint256)": 1}


def _human_amount(call: CallAnalysis, tx: Transaction, registry: AbiRegistry) -> str | None:
    """``"250 USDC (6 decimals)"`` for an ERC-20 amount when the token's decimals are known."""
    at = _AMOUNT_AT.get(call.decoded.signature) if call.decoded else None
    known = registry.known(tx.chain_id, tx.to) if at is not None else None
    if known is None or known.decimals is None or not known.symbol or "nft" in known.roles:
        return None
    amount = int(call.decoded.values[at])
    if amount >= UINT256_MAX // 2 + 1:
        return f"unlimited {known.symbol}"
    return f"{format_units(amount, known.decimals)} {known.symbol} ({known.decimals} decimals)"


def _match(tx: Transaction, selector: str, registry: AbiRegistry,
           client_functions: Sequence[AbiFunction] | None) -> CallAnalysis | None:
    data = tx.data
    if client_functions is not None:
        source = AbiSource(kind="client", name="client-supplied ABI")
        found = _try([(source, fn) for fn in client_functions if fn.selector == selector], data, "client_abi")
        if found:
            return found
    at_address = registry.functions_at(tx.chain_id, tx.to)
    if at_address:
        source, functions = at_address
        found = _try([(source, registry.named(fn)) for fn in functions if fn.selector == selector], data, "address")
        if found:
            return found
    return _try(registry.functions_with_selector(selector), data, "selector")
