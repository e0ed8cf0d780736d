"""Calldata → decoded call (method, signature, selector, named arguments).

Decoding is strict (eth-abi ``strict=True``: dirty padding and non-0/1 bools are rejected) and
bounded by :mod:`._bounds` first. Values are made JSON-safe and exact:

- ``uint``/``int`` → decimal string (wei stays wei; RFC 8785 forbids integers beyond 2^53);
- ``address`` → EIP-55 checksummed string;
- ``bytes``/``bytesN`` → ``0x`` hex (never text, even when it happens to be UTF-8);
- ``string`` → text; ``bool`` → bool; tuples → objects keyed by component name; arrays → lists.

``display`` adds human renderings for values a wallet must not show raw (2^256−1 → ``unlimited``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from decimal import Decimal
from typing import Any

import eth_abi
import eth_abi.registry
from eth_abi.codec import ABICodec
from eth_abi.decoding import AddressDecoder
from eth_abi.exceptions import DecodingError
from eth_abi.grammar import parse as parse_type

from ..errors import BadCalldata
from ._bounds import check_bounds
from .abi import AbiFunction
from .hexdata import checksum_address, to_hex

__all__ = ["DecodedCall", "decode_with", "format_value", "UINT256_MAX", "UINT160_MAX"]

UINT256_MAX = 2**256 - 1
UINT160_MAX = 2**160 - 1

# Foreign errors eth-abi lets through while decoding, and what they mean for the caller.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (DecodingError, OverflowError, UnicodeDecodeError, ValueError)


@dataclass(frozen=True)
class DecodedCall:
    """A decoded function call. ``args`` maps argument name → JSON-safe value; ``values`` holds
    the same values in ABI order (what rules use: names differ between ABIs)."""

    method: str
    signature: str
    selector: str
    args: dict[str, Any]
    types: dict[str, str]
    display: dict[str, str] = field(default_factory=dict)
    trailing_bytes: str | None = None
    values: tuple[Any, ...] = ()
    state_mutability: str = "nonpayable"
    outputs: tuple[dict, ...] = ()  # the function's ABI outputs (for return-data decoding)

    def to_dict(self) -> dict:
        out = {
            "method": self.method,
            "signature": self.signature,
            "selector": self.selector,
            "args": self.args,
            "types": self.types,
            "display": self.display,
        }
        if self.trailing_bytes is not None:
            out["trailing_bytes"] = self.trailing_bytes
        return out


def _arg_name(component: dict, index: int, taken: dict | None = None) -> str:
    name = component.get("name") or f"arg{index}"
    while taken is not None and name in taken:  # an unnamed arg{i} may clash with a declared name
        name = f"_{name}"
    return name


def format_value(component: dict, value: Any) -> Any:
    """Turn one eth-abi decoded value into its JSON-safe form, guided by the ABI component."""
    typ: str = component["type"]
    if typ.endswith("]"):
        inner = dict(component, type=typ[: typ.rindex("[")])
        return [format_value(inner, v) for v in value]
    if typ == "tuple":
        comps = component.get("components", [])
        out: dict[str, Any] = {}
        for i, (c, v) in enumerate(zip(comps, value)):
            out[_arg_name(c, i, out)] = format_value(c, v)
        return out
    if typ.startswith(("uint", "int")):
        return str(value)
    if typ == "address":
        return checksum_address(value)
    if typ.startswith("bytes"):
        return to_hex(value)
    if typ.startswith(("fixed", "ufixed")):
        return str(Decimal(value))
    return value  # bool, string


def _display(component: dict, value: Any) -> str | None:
    typ = component["type"]
    if typ == "uint256" and int(value) == UINT256_MAX:
        return "unlimited (2^256-1)"
    if typ == "uint160" and int(value) == UINT160_MAX:
        return "unlimited (2^160-1)"
    return None


@lru_cache(maxsize=1024)
def _parsed(input_types: tuple[str, ...]) -> list:
    """eth-abi grammar trees of a function's input types (parsed once per signature)."""
    return [parse_type(t) for t in input_types]


class _AddressDecoder(AddressDecoder):
    """eth-abi's address decoder, returning ``0x`` + lowercase hex directly: the same value its
    ``to_normalized_address`` gives for 20 bytes, without that function's generic conversions."""

    decoder_fn = staticmethod(lambda data: "0x" + data.hex())


_REGISTRY = eth_abi.registry.registry.copy()
_REGISTRY.unregister_decoder("address")
_REGISTRY.register_decoder("address", _AddressDecoder)
_CODEC = ABICodec(_REGISTRY)
"""eth-abi's default codec (strict decoding) with :class:`_AddressDecoder` registered for ``address``."""


def decode_with(fn: AbiFunction, data: bytes) -> DecodedCall:
    """Decode ``data`` (selector ‖ arguments) as a call of ``fn``.

    Raises :class:`BadCalldata` (``abi_decode_error``) when the arguments do not decode strictly
    (bad offset, length bomb, short data, dirty padding, invalid UTF-8 in a string). Bytes past
    the end of the encoding are returned as ``trailing_bytes`` (Solidity ignores them).
    """
    args_data = data[4:]
    types = _parsed(fn.input_types)
    try:
        extent = check_bounds(types, args_data)
    except BadCalldata as exc:
        raise BadCalldata(f"calldata does not decode as {fn.signature}: {exc.message}", field="data") from exc
    try:
        values = _CODEC.decode(list(fn.input_types), args_data, strict=True)
    except UnicodeDecodeError as exc:
        raise BadCalldata(f"invalid UTF-8 in a string argument of {fn.signature}", field="data") from exc
    except _DECODE_ERRORS as exc:  # eth-abi's text may quote raw input bytes: name the error only
        raise BadCalldata(f"calldata does not decode as {fn.signature} ({type(exc).__name__})",
                          field="data") from exc
    args: dict[str, Any] = {}
    arg_types: dict[str, str] = {}
    display: dict[str, str] = {}
    ordered = []
    for i, (component, value) in enumerate(zip(fn.inputs, values)):
        name = _arg_name(component, i, args)
        args[name] = format_value(component, value)
        ordered.append(args[name])
        arg_types[name] = fn.input_types[i]
        shown = _display(component, value)
        if shown:
            display[name] = shown
    trailing = args_data[extent:]
    return DecodedCall(
        method=fn.name,
        signature=fn.signature,
        selector=fn.selector,
        args=args,
        types=arg_types,
        display=display,
        trailing_bytes=to_hex(trailing) if trailing else None,
        values=tuple(ordered),
        state_mutability=fn.state_mutability,
        outputs=fn.outputs,
    )
