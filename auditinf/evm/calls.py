"""Match a transaction's calldata to an ABI and decode it.

Candidates, in order: the ABI the client sent (matched by selector, never by name or argument
count); the bundled ABI deployed at ``to`` on ``chain_id``; every bundled function with the
selector. Several distinct signatures with one selector (a collision) are each tried with strict
decoding; those that decode stay as ranked ``candidates``, the first is reported as the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import BadCalldata
from .abi import AbiFunction
from .decode import DecodedCall, decode_with
from .registry import AbiRegistry, AbiSource
from .tx import Transaction

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

    def to_dict(self) -> dict[str, Any]:
        """The answer's ``decoded`` object: method/signature/selector/args (+ provenance)."""
        base: dict[str, Any] = {"kind": self.kind, "method": None, "signature": None,
                                "selector": self.selector, "args": {}}
        if self.decoded is not None:
            base.update(self.decoded.to_dict())
        if self.source is not None:
            base["abi_source"] = dict(self.source.to_dict(), match=self.match)
        if len(self.candidates) > 1:
            base["candidates"] = self.candidates
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
        if errors:
            raise errors[0]
        return None
    source, first = decoded[0]
    return CallAnalysis(
        kind="call", selector=first.selector, decoded=first, source=source, match=match,
        candidates=[d.signature for _, d in decoded],
    )


def analyse_call(tx: Transaction, registry: AbiRegistry,
                 client_functions: Sequence[AbiFunction] | None = None) -> CallAnalysis:
    """Decode ``tx.data``.

    Raises :class:`BadCalldata` with code ``calldata_too_short`` for 1–3 bytes of data (not
    padded and looked up: ``0x095ea7`` is not ``approve``), ``abi_decode_error`` when the matched
    ABI does not decode the arguments. ``client_functions`` is the client's ABI, already parsed
    with :func:`~auditinf.evm.abi.parse_abi` (so a bad ABI fails before any decoding). An unknown selector is not an error: ``kind == "unknown_selector"``.
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
    if client_functions is not None:
        source = AbiSource(kind="client", name="client-supplied ABI")
        found = _try([(source, fn) for fn in client_functions if fn.selector == selector], data, "client_abi")
        if found:
            return found
    at_address = registry.functions_at(tx.chain_id, tx.to)
    if at_address:
        source, functions = at_address
        found = _try([(source, fn) for fn in functions if fn.selector == selector], data, "address")
        if found:
            return found
    found = _try(registry.functions_with_selector(selector), data, "selector")
    return found or CallAnalysis(kind="unknown_selector", selector=selector)
