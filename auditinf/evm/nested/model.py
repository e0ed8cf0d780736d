"""Shapes shared by the nested decoders: the frame a call runs in, an inner call to decode, limits.

EVM semantics the paths follow (Yellow Paper §8, EIP-7 DELEGATECALL): a CALL runs the target's
code in the target's own context, with ``msg.sender`` = the caller's context; a DELEGATECALL runs
the target's code in the caller's context (storage, balance, ``address(this)``) and keeps the
caller's ``msg.sender`` and ``msg.value``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import BadCalldata

__all__ = ["Frame", "InnerSpec", "Budget", "MAX_NESTING_DEPTH", "MAX_INNER_CALLS"]

MAX_NESTING_DEPTH = 5
"""Levels of nesting decoded below the transaction (path ``0.1.2.3.4`` is the deepest)."""
MAX_INNER_CALLS = 512
"""Inner calls and router commands decoded per transaction, all levels together."""


@dataclass(frozen=True)
class Frame:
    """One call as the EVM runs it: ``to`` holds the code, ``context`` is ``address(this)``
    (differs from ``to`` under DELEGATECALL), ``sender`` is ``msg.sender``, ``value`` in wei."""

    chain_id: int
    sender: str | None
    to: str
    context: str
    value: int
    data: bytes


@dataclass(frozen=True)
class InnerSpec:
    """An inner call found in a batch, before it is decoded.

    ``operation``: ``call`` | ``delegatecall``; ``via`` names the batching function
    (``aggregate3``, ``multiSend``, ``execTransaction``, ``multicall``); ``allow_failure`` is set
    where the batch lets the call revert (Multicall3 ``allowFailure``, ``tryAggregate``).
    """

    via: str
    operation: str
    to: str
    sender: str | None
    context: str
    value: int
    data: bytes
    allow_failure: bool | None = None


class Budget:
    """Work left for one transaction's nested decoding: inner calls and inner calldata bytes.

    Each decoded element is a slice of its parent's bytes, so nesting could multiply work;
    the byte budget (8 × the transaction's calldata + 64 KiB) keeps the total linear.
    """

    def __init__(self, calldata_bytes: int) -> None:
        self.calls = MAX_INNER_CALLS
        self.bytes = 8 * calldata_bytes + 64 * 1024
        self.truncated = False

    def take(self, data_bytes: int) -> bool:
        """Reserve one inner call of ``data_bytes``; False (and ``truncated``) when exhausted."""
        if self.calls <= 0 or data_bytes > self.bytes:
            self.truncated = True
            return False
        self.calls -= 1
        self.bytes -= data_bytes
        return True


def hex_bytes(value: str, what: str) -> bytes:
    """A decoded ``bytes`` argument (``0x`` hex, as :mod:`..decode` renders it) back to bytes."""
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:  # pragma: no cover - decode always renders valid hex
        raise BadCalldata(f"{what} is not hex", field="data") from exc
