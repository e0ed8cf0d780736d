"""Batching functions whose arguments are calls: Multicall, Multicall3, Safe ``execTransaction``
and Safe ``multiSend``.

Each expander takes the :class:`~.model.Frame` of the decoded batching call and its ABI-ordered
argument values (as :class:`~auditinf.evm.decode.DecodedCall` renders them) and returns the
inner calls in execution order. Sources of each layout:

- ``multicall(bytes[])`` / ``multicall(uint256,bytes[])`` / ``multicall(bytes32,bytes[])``:
  Uniswap v3-periphery ``Multicall.sol`` and swap-router-contracts ``MulticallExtended.sol``,
  OpenZeppelin ``Multicall.sol`` — each element is DELEGATECALLed on the contract itself.
- Multicall3 (github.com/mds1/multicall3 ``Multicall3.sol``): ``aggregate``, ``tryAggregate``,
  ``blockAndAggregate``, ``tryBlockAndAggregate``, ``aggregate3``, ``aggregate3Value`` — plain
  CALLs from Multicall3, so ``msg.sender`` at each target is Multicall3, not the signer.
- Safe ``execTransaction`` (safe-smart-account v1.3.0 ``GnosisSafe.sol``): operation 0 = CALL,
  1 = DELEGATECALL from the Safe.
- Safe ``multiSend(bytes)`` (``libraries/MultiSend.sol``): packed entries
  ``operation (1 byte) ‖ to (20) ‖ value (32) ‖ dataLength (32) ‖ data``; any other operation
  reverts. Meant to be DELEGATECALLed by a Safe, so entries run from the Safe's context. Its
  loop (``i := 0x20; lt(i, length)``, ``i`` counting the 32-byte length word) starts no entry in
  the last 32 bytes: such a tail is never executed, and the entries before it still run.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ...errors import BadCalldata
from ..hexdata import checksum_address
from .model import Frame, InnerSpec, hex_bytes

__all__ = ["EXPANDERS", "parse_multisend", "split_multisend", "PartialBatch", "Expander"]

Expander = Callable[[Frame, Sequence[Any]], list[InnerSpec]]
_OPERATIONS = {0: "call", 1: "delegatecall"}


def _self_multicall(position: int) -> Expander:
    """``multicall(…, bytes[] data)``: each element DELEGATECALLed on ``address(this)``."""
    def expand(frame: Frame, values: Sequence[Any]) -> list[InnerSpec]:
        return [InnerSpec("multicall", "delegatecall", frame.context, frame.sender, frame.context, frame.value,
                          hex_bytes(item, "multicall element")) for item in values[position]]
    return expand


def _multicall3(via: str, calls_at: int, shape: str, allow_all: bool | None = None) -> Expander:
    """Multicall3 batches; ``shape`` is the field order of one element (t=target, f=allowFailure,
    v=value, d=callData). ``allow_all`` is the ``requireSuccess``-derived flag of tryAggregate."""
    def expand(frame: Frame, values: Sequence[Any]) -> list[InnerSpec]:
        allow = allow_all
        if allow_all is None and calls_at == 1:  # try*: first argument is requireSuccess
            allow = not values[0]
        specs = []
        for item in values[calls_at]:
            fields = dict(zip(shape, item.values()))
            specs.append(InnerSpec(via, "call", fields["t"], frame.context, fields["t"], int(fields.get("v", 0)),
                                   hex_bytes(fields["d"], f"{via} callData"),
                                   fields.get("f", allow)))
        return specs
    return expand


def _safe_exec(frame: Frame, values: Sequence[Any]) -> list[InnerSpec]:
    to, value, data, operation = values[0], int(values[1]), hex_bytes(values[2], "execTransaction data"), int(values[3])
    if operation not in _OPERATIONS:
        raise BadCalldata(f"Safe execTransaction operation {operation} is neither 0 (call) nor 1 (delegatecall)",
                          field="data")
    if operation == 1:  # the target's code runs as the Safe, msg.sender = the executor
        return [InnerSpec("execTransaction", "delegatecall", to, frame.sender, frame.context, value, data)]
    return [InnerSpec("execTransaction", "call", to, frame.context, to, value, data)]


class PartialBatch(BadCalldata):
    """A batch whose leading inner calls decode but whose rest is malformed: ``specs`` are kept
    (and analysed), the message says what is wrong with the rest."""

    def __init__(self, message: str, specs: list[InnerSpec]) -> None:
        super().__init__(message, field="data")
        self.specs = specs


def split_multisend(packed: bytes) -> tuple[list[tuple[int, str, int, bytes]], str | None]:
    """Entries MultiSend runs, and what is wrong with the bytes after them (``None`` when nothing).

    Follows ``MultiSend.sol`` (v1.3.0): no entry starts in the last 32 bytes (those are reported
    as never executed); a malformed entry (cut short, ``dataLength`` past the end, operation not
    0/1) stops the split, the entries before it are kept. Work is linear in ``len(packed)``.
    """
    entries, pos, size = [], 0, len(packed)
    while pos < size:
        if size - pos <= 32:
            return entries, (f"multiSend: {size - pos} trailing byte(s) at byte {pos} are never executed "
                             "(no entry starts in the last 32 bytes)")
        try:
            entry = _entry(packed, pos)
        except BadCalldata as exc:
            return entries, exc.message
        entries.append(entry)
        pos += 85 + len(entry[3])
    return entries, None


def _entry(packed: bytes, pos: int) -> tuple[int, str, int, bytes]:
    size = len(packed)
    if size - pos < 85:
        raise BadCalldata(f"multiSend entry at byte {pos} is shorter than the 85-byte header", field="data")
    operation = packed[pos]
    if operation not in _OPERATIONS:
        raise BadCalldata(f"multiSend entry at byte {pos} has operation {operation} (only 0 or 1 run)",
                          field="data")
    to = checksum_address(packed[pos + 1 : pos + 21])
    value = int.from_bytes(packed[pos + 21 : pos + 53], "big")
    length = int.from_bytes(packed[pos + 53 : pos + 85], "big")
    if length > size - pos - 85:
        raise BadCalldata(f"multiSend entry at byte {pos} declares {length} data bytes; only "
                          f"{size - pos - 85} remain", field="data")
    return operation, to, value, packed[pos + 85 : pos + 85 + length]


def parse_multisend(packed: bytes) -> list[tuple[int, str, int, bytes]]:
    """Split MultiSend's packed ``transactions`` into ``(operation, to, value wei, data)``.

    Raises :class:`BadCalldata` when an entry is cut short, a ``dataLength`` runs past the end,
    or an operation is not 0/1 (MultiSend reverts on those). Work is linear in ``len(packed)``.
    """
    entries, pos, size = [], 0, len(packed)
    while pos < size:
        entries.append(_entry(packed, pos))
        pos += 85 + len(entries[-1][3])
    return entries


def _multisend(frame: Frame, values: Sequence[Any]) -> list[InnerSpec]:
    """Entries in order; raises :class:`PartialBatch` (entries kept) when bytes follow them."""
    specs = []
    entries, problem = split_multisend(hex_bytes(values[0], "multiSend transactions"))
    for operation, to, value, data in entries:
        if operation == 1:
            specs.append(InnerSpec("multiSend", "delegatecall", to, frame.sender, frame.context, value, data))
        else:
            specs.append(InnerSpec("multiSend", "call", to, frame.context, to, value, data))
    if problem is not None:
        raise PartialBatch(problem, specs)
    return specs


EXPANDERS: dict[str, Expander] = {
    "multicall(bytes[])": _self_multicall(0),
    "multicall(uint256,bytes[])": _self_multicall(1),
    "multicall(bytes32,bytes[])": _self_multicall(1),
    "aggregate((address,bytes)[])": _multicall3("aggregate", 0, "td", False),
    "blockAndAggregate((address,bytes)[])": _multicall3("blockAndAggregate", 0, "td", False),
    "tryAggregate(bool,(address,bytes)[])": _multicall3("tryAggregate", 1, "td"),
    "tryBlockAndAggregate(bool,(address,bytes)[])": _multicall3("tryBlockAndAggregate", 1, "td"),
    "aggregate3((address,bool,bytes)[])": _multicall3("aggregate3", 0, "tfd"),
    "aggregate3Value((address,bool,uint256,bytes)[])": _multicall3("aggregate3Value", 0, "tfvd"),
    "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)": _safe_exec,
    "multiSend(bytes)": _multisend,
}
"""Canonical signature → expander. Matching is by signature, so any ABI naming works."""
