"""Exact decimal rendering of integer token amounts (no floats: wei values exceed 2^53)."""

from __future__ import annotations

__all__ = ["format_units", "format_eth"]


def format_units(amount: int, decimals: int) -> str:
    """``amount`` base units with ``decimals`` decimals as an exact decimal string ("1.25", "250")."""
    whole, frac = divmod(amount, 10**decimals)
    if decimals == 0 or frac == 0:
        return str(whole)
    return f"{whole}.{frac:0{decimals}d}".rstrip("0")


def format_eth(wei: int) -> str:
    """Wei as ETH (18 decimals), exact."""
    return format_units(wei, 18)
