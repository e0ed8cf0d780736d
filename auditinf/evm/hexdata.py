"""Strict hex parsing for calldata, bytecode and byte arguments.

Errors name the field and the first bad position so a wallet can point at it:
``invalid_hex`` ("character 'g' at hex position 71 (byte 35)"), ``odd_length_hex``.
"""

from __future__ import annotations

import string
from functools import lru_cache

from eth_utils import to_checksum_address

from ..errors import BadHex, RequestTooLarge

__all__ = ["parse_hex", "to_hex", "checksum_address"]

_HEX = frozenset(string.hexdigits)


def parse_hex(value: str, *, field: str, max_bytes: int | None = None) -> bytes:
    """Parse ``0x``-prefixed (or bare) hex into bytes.

    ``"0x"`` and ``""`` give ``b""``. Raises :class:`BadHex` with code ``invalid_hex`` for a
    non-hex character (position counted in hex digits after the prefix, 0-based, and as a byte
    offset), ``odd_length_hex`` for an odd digit count; :class:`RequestTooLarge` (413) past ``max_bytes``.
    """
    if not isinstance(value, str):
        raise BadHex(f"{field} must be a hex string", field=field)
    digits = value[2:] if value[:2] in ("0x", "0X") else value
    if max_bytes is not None and len(digits) > 2 * max_bytes:
        raise RequestTooLarge(f"{field} is longer than {max_bytes} bytes", field=field)
    for pos, ch in enumerate(digits):
        if ch not in _HEX:
            raise BadHex(
                f"{field} is not valid hex: character {ch!r} at hex position {pos} (byte offset {pos // 2})",
                field=field,
            )
    if len(digits) % 2:
        raise BadHex(f"{field} has an odd number of hex digits ({len(digits)})", code="odd_length_hex", field=field)
    return bytes.fromhex(digits)


def to_hex(data: bytes) -> str:
    """``0x``-prefixed lowercase hex of ``data``."""
    return "0x" + data.hex()


@lru_cache(maxsize=4096)
def checksum_address(value: str | bytes) -> str:
    """The EIP-55 mixed-case form of a 20-byte address (hex string or bytes), memoised: a request
    names the same few addresses several times (sender, target, spender), and each EIP-55 form is
    a Keccak-256 hash. Raises ``ValueError`` as ``eth_utils.to_checksum_address`` does."""
    return to_checksum_address(value)
