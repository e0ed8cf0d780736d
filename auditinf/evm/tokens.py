"""Token metadata from ``eth_call`` return data (ERC-20 ``name()``/``symbol()``/``decimals()``).

Early tokens (MKR, SAI) return ``bytes32`` instead of ``string`` for ``name``/``symbol``: when
the return data does not decode as an ABI ``string`` and is exactly 32 bytes, it is read as
right-padded ASCII/UTF-8 with trailing NULs stripped.
"""

from __future__ import annotations

import eth_abi
from eth_abi.exceptions import DecodingError

from ..errors import BadCalldata

__all__ = ["decode_token_text", "decode_decimals"]


def decode_token_text(data: bytes) -> str:
    """``string`` return data, or the ``bytes32`` fallback; raises :class:`BadCalldata` otherwise."""
    try:
        (text,) = eth_abi.decode(["string"], data, strict=True)
        return text
    except (DecodingError, OverflowError, UnicodeDecodeError, ValueError):
        pass
    if len(data) == 32:
        try:
            return data.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadCalldata("bytes32 token text is not UTF-8", field="return_data") from exc
    raise BadCalldata("return data is neither an ABI string nor bytes32", field="return_data")


def decode_decimals(data: bytes) -> int:
    """``decimals()`` return data as an int 0..255 (some tokens declare uint256, e.g. USDT)."""
    try:
        (value,) = eth_abi.decode(["uint256"], data, strict=True)
    except (DecodingError, ValueError) as exc:
        raise BadCalldata("decimals() return data is not a uint256", field="return_data") from exc
    if value > 255:
        raise BadCalldata(f"decimals() returned {value}, above 255", field="return_data")
    return value
