"""Recursive expansion of a decoded call into its inner calls and router commands.

Paths name each inner call by its index at every level: ``2`` is the third call of the
transaction's batch, ``2.0`` the first call inside that one. Work is bounded by
:data:`~.model.MAX_NESTING_DEPTH` and a per-transaction :class:`~.model.Budget`; what is cut off
is said (``truncated``), never silently dropped. An inner call that does not decode is kept with
its error instead of failing the whole transaction: the EVM would still run the outer call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Sequence

from ...errors import BadCalldata
from ..abi import AbiFunction
from ..hexdata import to_hex
from ..registry import AbiRegistry
from ..tx import Transaction
from .batches import EXPANDERS, PartialBatch
from .model import MAX_NESTING_DEPTH, Budget, Frame, InnerSpec, hex_bytes
from .universal_router import decode_plan, router_table

if TYPE_CHECKING:  # pragma: no cover
    from ..calls import CallAnalysis

__all__ = ["InnerCall", "expand"]

_ROUTER_EXECUTE = ("execute(bytes,bytes[],uint256)", "execute(bytes,bytes[])")


@dataclass(frozen=True)
class InnerCall:
    """One call inside a batch: where it sits (``path``), how it runs (``spec``), what it is
    (``call``, itself possibly nested) or why it could not be decoded (``error``)."""

    path: str
    spec: InnerSpec
    call: "CallAnalysis | None" = None
    error: dict | None = None

    def transaction(self, chain_id: int) -> Transaction:
        """The inner call as the target sees it: ``from`` = its ``msg.sender``, value in wei."""
        return Transaction(chain_id=chain_id, sender=self.spec.sender, to=self.spec.to, value=self.spec.value,
                           data=self.spec.data)

    def walk(self):
        """This call and every call nested in it, depth first."""
        yield self
        if self.call is not None:
            for inner in self.call.inner:
                yield from inner.walk()

    def to_dict(self, findings_by_path: dict[str, list[dict]] | None = None) -> dict[str, Any]:
        spec = self.spec
        out: dict[str, Any] = {"path": self.path, "via": spec.via, "operation": spec.operation, "from": spec.sender,
                               "to": spec.to, "value": str(spec.value)}
        if spec.allow_failure is not None:
            out["allow_failure"] = spec.allow_failure
        if spec.operation == "delegatecall":
            out["context"] = spec.context
        if self.call is not None:
            out.update(self.call.to_dict(findings_by_path))
        else:
            out.update(kind="undecodable", method=None, selector=to_hex(spec.data[:4]) if len(spec.data) >= 4 else None,
                       args={}, error=self.error)
        if self.call is None or self.call.decoded is None:
            out["data"] = to_hex(spec.data)  # nothing hidden: undecoded bytes are shown as they are
        out["findings"] = (findings_by_path or {}).get(self.path, [])
        return out


def _inner(spec: InnerSpec, path: str, tx: Transaction, registry: AbiRegistry,
           client_functions: Sequence[AbiFunction] | None, depth: int, budget: Budget) -> InnerCall:
    from ..calls import analyse_call  # calls → tree → calls: resolved at call time

    # the client's ABI describes the transaction's `to`: it applies to calls on that address only
    own = client_functions if tx.to and spec.to.lower() == tx.to.lower() else None
    try:
        call = analyse_call(InnerCall(path, spec).transaction(tx.chain_id), registry, own, _depth=depth, _budget=budget, _context=spec.context,
                            _path=f"{path}.")
    except BadCalldata as exc:
        return InnerCall(path, spec, error={"code": exc.code, "message": exc.message})
    return InnerCall(path, spec, call=call)


def expand(call: "CallAnalysis", tx: Transaction, registry: AbiRegistry,
           client_functions: Sequence[AbiFunction] | None, *, depth: int, budget: Budget, context: str,
           path: str) -> "CallAnalysis":
    """Return ``call`` with its inner calls / router commands decoded (unchanged when it has none).

    ``depth`` is the nesting level of ``call`` (0 = the transaction), ``path`` the prefix of its
    inner calls' paths (``""`` at the top, ``"2."`` below call 2).
    """
    decoded = call.decoded
    if decoded is None or tx.to is None:
        return call
    expander = EXPANDERS.get(decoded.signature)
    is_router = decoded.signature in _ROUTER_EXECUTE
    if expander is None and not is_router:
        return call
    if depth >= MAX_NESTING_DEPTH:
        return replace(call, nested_error=f"calls nested deeper than {MAX_NESTING_DEPTH} levels are not decoded")
    frame = Frame(tx.chain_id, tx.sender, tx.to, context, tx.value, tx.data)
    try:
        if is_router:
            version, table, known = router_table(tx.chain_id, tx.to)
            commands = decode_plan(hex_bytes(decoded.values[0], "commands"),
                                   [hex_bytes(x, "input") for x in decoded.values[1]],
                                   table, budget, depth, MAX_NESTING_DEPTH, prefix=path)
            deadline = decoded.values[2] if len(decoded.values) > 2 else None
            table_note = version if known else f"{version} (assumed: router address not known)"
            return replace(call, commands=commands, deadline=deadline, command_table=table_note,
                           truncated=budget.truncated)
        specs, nested_error = expander(frame, decoded.values), None
    except PartialBatch as exc:  # the calls before the malformed part still run: keep them
        specs, nested_error = exc.specs, exc.message
    except BadCalldata as exc:
        return replace(call, nested_error=exc.message)
    inner = []
    for index, spec in enumerate(specs):
        if not budget.take(len(spec.data)):
            break
        inner.append(_inner(spec, f"{path}{index}", tx, registry, client_functions, depth + 1, budget))
    return replace(call, inner=tuple(inner), truncated=budget.truncated, nested_error=nested_error)
