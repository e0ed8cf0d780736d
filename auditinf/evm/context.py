"""Chain context of the addresses a request touches: contract or EOA, proxy and implementation,
token metadata — each fact read from :class:`~auditinf.evm.chain.ChainFacts`, or listed as unknown.

For one address :func:`address_context` returns ``{"address", "is_contract": bool | None,
"proxy"?: {...}, "token"?: {"symbol", "name", "decimals"}}`` and the facts it could not learn:

- ``eth_getCode``: EOA or contract;
- proxies: EIP-1167 minimal proxy (target in the code) and EIP-1967 (implementation / beacon slot
  pushed by the code, read with ``eth_getStorageAt``) via :func:`~auditinf.evm.proxy.detect_proxy`;
  here also the EIP-1967 admin slot and, for a beacon, the beacon's ``implementation()``;
- ERC-20 metadata: ``symbol()``, ``name()``, ``decimals()`` with ``eth_call``; ``bytes32`` names
  and symbols (MKR) are read too (:mod:`auditinf.evm.tokens`). Token text is attacker-controlled:
  it reaches a model only quoted (:func:`auditinf.inference.prompt.quoted`).
"""

from __future__ import annotations

from typing import Any

from ..errors import BadCalldata
from .chain import ChainFacts
from .hexdata import checksum_address
from .proxy import EIP1967_ADMIN_SLOT, detect_proxy
from .tokens import decode_decimals, decode_token_text
from .units import format_units

__all__ = ["address_context", "token_metadata", "request_context", "amount_with_decimals", "SELECTORS"]

# ERC-20 metadata getters (EIP-20 optional methods) and EIP-1967 beacon's implementation()
SELECTORS = {"symbol": bytes.fromhex("95d89b41"), "name": bytes.fromhex("06fdde03"),
             "decimals": bytes.fromhex("313ce567"), "implementation": bytes.fromhex("5c60da1b")}


def _call(chain: ChainFacts, chain_id: int, address: str, what: str) -> bytes | None:
    read = getattr(chain, "call", None)
    return read(chain_id, address, SELECTORS[what]) if read else None


def token_metadata(chain: ChainFacts, chain_id: int, address: str) -> dict[str, Any] | None:
    """``{"symbol", "name", "decimals"}`` when ``decimals()`` answers like an ERC-20 (symbol/name
    ``None`` when they do not decode), else ``None``."""
    raw = _call(chain, chain_id, address, "decimals")
    try:
        decimals = decode_decimals(raw) if raw else None
    except BadCalldata:
        return None
    if decimals is None:
        return None
    meta: dict[str, Any] = {"decimals": decimals}
    for what in ("symbol", "name"):
        data = _call(chain, chain_id, address, what)
        try:
            meta[what] = decode_token_text(data) if data else None
        except BadCalldata:
            meta[what] = None
    return meta


def _proxy(chain: ChainFacts, chain_id: int, address: str, code: bytes, unknown: list[str]) -> dict | None:
    proxy = detect_proxy(code, chain=chain, chain_id=chain_id, address=address)
    if proxy is None:
        return None
    unknown.extend(proxy.pop("unknown", []))
    if proxy["standard"].startswith("EIP-1967"):
        read = getattr(chain, "storage", None)
        word = read(chain_id, address, EIP1967_ADMIN_SLOT) if read else None
        proxy["admin"] = checksum_address(word[-20:]) if word and any(word) else None
        if word is None:
            unknown.append(f"the EIP-1967 admin slot of {address} (eth_getStorageAt)")
    if proxy.get("beacon"):
        ret = _call(chain, chain_id, proxy["beacon"], "implementation")
        proxy["implementation"] = checksum_address(ret[12:32]) if ret and len(ret) >= 32 else None
        if proxy["implementation"] is None:
            unknown.append(f"the implementation of beacon {proxy['beacon']} (eth_call implementation())")
    return proxy


def address_context(chain: ChainFacts, chain_id: int, address: str, *, token: bool = False
                    ) -> tuple[dict[str, Any], list[str]]:
    """Chain context of ``address`` (see the module docstring); ``token``: also read ERC-20 metadata."""
    unknown: list[str] = []
    code = chain.code(chain_id, address)
    out: dict[str, Any] = {"address": address, "is_contract": None if code is None else bool(code)}
    if code is None:
        unknown.append(f"whether {address} is a contract (eth_getCode)")
        if token:
            unknown.append(f"symbol, name and decimals of token {address} (eth_call)")
        return out, unknown
    if not code:
        return out, unknown
    proxy = _proxy(chain, chain_id, address, code, unknown)
    if proxy is not None:
        out["proxy"] = proxy
    if token:
        if getattr(chain, "call", None) is None:
            unknown.append(f"symbol, name and decimals of token {address} (eth_call)")
        else:
            out["token"] = token_metadata(chain, chain_id, address)
    return out, unknown


def amount_with_decimals(amount: int, token: dict[str, Any] | None) -> str | None:
    """``"1.5 USDC (6 decimals)"`` from on-chain metadata; ``unlimited`` from 2^255; ``None`` unknown."""
    if not token or token.get("decimals") is None:
        return None
    symbol = token.get("symbol") or "tokens"
    if amount >= 2**255:
        return f"unlimited {symbol}"
    return f"{format_units(amount, token['decimals'])} {symbol} ({token['decimals']} decimals)"


def request_context(chain: ChainFacts, chain_id: int, roles: list[tuple[str, str, bool, int | None]]
                    ) -> tuple[dict[str, Any], list[str]]:
    """Context of each ``(role, address, is_token, amount)`` — e.g. ``("to", token, True, 10**6)``,
    ``("spender", addr, False, None)`` — as ``{role: address_context}``, with the amount formatted
    with the token's on-chain decimals (``amount_display``), and every unknown fact (no repeats)."""
    out: dict[str, Any] = {}
    unknown: list[str] = []
    for role, address, is_token, amount in roles:
        facts, missing = address_context(chain, chain_id, address, token=is_token)
        if amount is not None and (shown := amount_with_decimals(amount, facts.get("token"))):
            facts["amount_display"] = shown
        out[role] = facts
        unknown += [m for m in missing if m not in unknown]
    return out, unknown
