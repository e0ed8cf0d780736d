"""Bounds check of ABI-encoded data before eth-abi decodes it.

eth-abi trusts offsets and length words: a crafted ``T[]`` length of 2^64, or many offsets aliasing
one large array, would make it allocate or loop far beyond the calldata's size. This walk follows
the Solidity ABI head/tail layout, checks every offset and length word against the bytes actually
present (``length × minimum element size ≤ remaining bytes``), limits nesting depth and the total
number of decoded elements, and returns how far the encoding extends — so trailing bytes after the
arguments can be reported instead of silently dropped.
"""

from __future__ import annotations

from eth_abi.grammar import ABIType, BasicType, TupleType

from ..errors import BadCalldata

MAX_DEPTH = 16
WORD = 32


class _Walk:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.extent = 0
        # Honest encodings decode to at most ~one element per word and each byte of bytes/string
        # payload once; aliased offsets (many heads → one tail) can do far more.
        self.budget = max(4096, 4 * (self.size // WORD))
        self.byte_budget = 2 * self.size + 4096

    def fail(self, message: str) -> None:
        raise BadCalldata(message, field="data")

    def touch(self, end: int) -> None:
        if end > self.size:
            self.fail(f"ABI data needs {end} bytes but only {self.size} are present")
        self.extent = max(self.extent, end)

    def word(self, pos: int) -> int:
        self.touch(pos + WORD)
        return int.from_bytes(self.data[pos : pos + WORD], "big")

    def charge(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            self.fail("ABI data decodes to more elements than its size allows (aliased offsets)")


def _static_size(t: ABIType) -> int:
    if t.is_array:
        return t.arrlist[-1][0] * _static_size(t.item_type)
    if isinstance(t, TupleType):
        return sum(_static_size(c) for c in t.components)
    return WORD


def _tuple(walk: _Walk, types: list[ABIType] | tuple[ABIType, ...], start: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        walk.fail(f"ABI types nest deeper than {MAX_DEPTH} levels")
    head = start
    for t in types:
        if t.is_dynamic:
            offset = walk.word(head)
            if offset > walk.size - start:
                walk.fail(f"offset {offset} at byte {head} points outside the calldata")
            _dynamic(walk, t, start + offset, depth + 1)
            head += WORD
        else:
            size = _static_size(t)
            walk.touch(head + size)
            walk.charge(size // WORD)
            head += size


def _dynamic(walk: _Walk, t: ABIType, pos: int, depth: int) -> None:
    if t.is_array:
        dims = t.arrlist[-1]
        if dims:  # T[k] with dynamic T
            length = dims[0]
        else:
            length = walk.word(pos)
            pos += WORD
        elem = t.item_type
        elem_head = WORD if elem.is_dynamic else _static_size(elem)
        if length * elem_head > walk.size - pos:
            walk.fail(
                f"array length {length} at byte {pos - WORD if not dims else pos} needs "
                f"{length * elem_head} bytes but only {max(walk.size - pos, 0)} remain"
            )
        walk.charge(length)
        _tuple(walk, [elem] * length, pos, depth)
    elif isinstance(t, TupleType):
        _tuple(walk, t.components, pos, depth)
    elif isinstance(t, BasicType) and t.base in ("bytes", "string"):
        length = walk.word(pos)
        padded = -(-length // WORD) * WORD
        if padded > walk.size - pos - WORD:
            walk.fail(f"{t.base} length {length} at byte {pos} runs past the end of the calldata")
        walk.touch(pos + WORD + padded)
        walk.byte_budget -= padded
        if walk.byte_budget < 0:
            walk.fail("ABI data decodes to more bytes than it holds (aliased offsets)")
    else:  # pragma: no cover - the grammar has no other dynamic types
        walk.fail(f"unsupported dynamic type {t}")


def check_bounds(types: list[ABIType], data: bytes) -> int:
    """Check ``data`` (ABI encoding of a tuple of ``types``) and return its extent in bytes.

    Raises :class:`BadCalldata` (``abi_decode_error``) naming the first bad offset or length.
    Work and memory are O(len(data)) whatever the length words claim.
    """
    walk = _Walk(data)
    _tuple(walk, types, 0, 0)
    return walk.extent
