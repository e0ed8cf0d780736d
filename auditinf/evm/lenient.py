"""Lenient decoding of approval-family calls, as contracts built with Solidity's ABI coder v1 read them.

Strict decoding (eth-abi ``strict=True``, what ABI coder v2 contracts enforce by reverting) refuses
words with dirty high bits. Older contracts — USDT (Solidity 0.4), most tokens and NFTs compiled
before 0.8 — do not revert: they clean each argument where it is used (Solidity docs, "ABI
coder v1": an ``address`` is masked to its low 160 bits, a ``uintN`` to its low N bits) and a
``bool`` is true whenever its word is non-zero. So an ``approve`` whose spender word carries
dirty bits still grants an allowance on such a token.

:func:`decode_lenient` applies those cleanings to the static head of an approval-family call
(:data:`APPROVAL_FAMILY`), re-encodes the clean values canonically and decodes that strictly,
so the result has exactly the shape of a strict decode; ``notes`` says which arguments were
cleaned. It is only a fallback after strict decoding failed: it can add an approval to what is
shown, never remove one.
"""

from __future__ import annotations

from dataclasses import dataclass

import eth_abi

from ..errors import BadCalldata
from .abi import AbiFunction
from .decode import DecodedCall, decode_with

__all__ = ["APPROVAL_FAMILY", "LenientCall", "decode_lenient"]

APPROVAL_FAMILY = frozenset({
    "approve(address,uint256)",  # EIP-20
    "increaseAllowance(address,uint256)",  # OpenZeppelin ERC20 (pre-5.0)
    "setApprovalForAll(address,bool)",  # EIP-721 / EIP-1155
    "permit(address,address,uint256,uint256,uint8,bytes32,bytes32)",  # EIP-2612
    "permit(address,address,uint256,uint256,bool,uint8,bytes32,bytes32)",  # DAI permit
})


@dataclass(frozen=True)
class LenientCall:
    """A call decoded after ABI coder v1 cleaning; ``notes`` name each argument that was dirty."""

    decoded: DecodedCall
    notes: tuple[str, ...]


def _clean(kind: str, word: bytes) -> tuple[object, bool]:
    """``(value, was_dirty)`` of one 32-byte head word read as ``kind`` by ABI coder v1."""
    number = int.from_bytes(word, "big")
    if kind == "address":
        return "0x" + word[12:].hex(), number >> 160 != 0
    if kind == "bool":
        return number != 0, number > 1
    if kind.startswith("uint"):
        bits = int(kind[4:] or 256)
        return number & ((1 << bits) - 1), number >> bits != 0
    if kind.startswith("bytes"):  # bytesN: left-aligned, the rest is padding
        size = int(kind[5:])
        return word[:size], any(word[size:])
    raise ValueError(kind)  # pragma: no cover - APPROVAL_FAMILY holds static types only


def decode_lenient(fn: AbiFunction, data: bytes) -> LenientCall | None:
    """Decode ``data`` as ``fn`` the way an ABI coder v1 contract would, when ``fn`` is in the
    approval family and its head is complete; ``None`` otherwise, or when nothing was dirty
    (then strict decoding failed for another reason). Bytes past the head stay trailing bytes."""
    if fn.signature not in APPROVAL_FAMILY:
        return None
    args = data[4:]
    head = 32 * len(fn.input_types)
    if len(args) < head:
        return None
    values, notes = [], []
    for i, kind in enumerate(fn.input_types):
        value, dirty = _clean(kind, args[32 * i : 32 * (i + 1)])
        values.append(value)
        if dirty:
            name = (fn.inputs[i].get("name") or f"arg{i}") if i < len(fn.inputs) else f"arg{i}"
            notes.append(f"{kind} argument {name!r} has non-zero bits outside its type (ABI coder v1 "
                         + ("reads any non-zero word as true)" if kind == "bool" else "ignores them)"))
    if not notes:
        return None
    canonical = data[:4] + eth_abi.encode(list(fn.input_types), values) + args[head:]
    try:
        return LenientCall(decode_with(fn, canonical), tuple(notes))
    except BadCalldata:  # pragma: no cover - a canonical re-encoding always decodes
        return None
