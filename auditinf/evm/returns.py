"""Return data → values (Solidity ABI spec: outputs are encoded like a tuple of the output types).

Tokens such as USDT declare no return value for ``transfer``/``approve``/``transferFrom``: empty
return data from such a function is a successful call, not a decoding error. For Multicall3's
``aggregate3`` / ``aggregate3Value`` / ``tryAggregate`` the ``(bool success, bytes returnData)[]``
results are decoded and each inner call's return data decoded against that call's ABI outputs.
"""

from __future__ import annotations

from typing import Any, Sequence

import eth_abi
from eth_abi.grammar import parse as parse_type
from eth_utils.abi import collapse_if_tuple

from ..errors import BadCalldata
from ._bounds import check_bounds
from .decode import DecodedCall, format_value

__all__ = ["decode_return", "decode_results", "return_values"]

_ERRORS = (eth_abi.exceptions.DecodingError, OverflowError, UnicodeDecodeError, ValueError)
_RESULT_LISTS = ("aggregate3", "aggregate3Value", "tryAggregate")


def decode_return(outputs: Sequence[dict], data: bytes) -> dict[str, Any]:
    """``{"success": true, "values": [...]}`` for ``data`` returned by a function with ABI
    ``outputs``; ``values`` are JSON-safe like decoded arguments. Empty data from a function that
    declares outputs gives ``"empty_return": true`` (a non-standard token: the call succeeded).
    Raises :class:`BadCalldata` (``abi_decode_error``, field ``return_data``) otherwise."""
    if not outputs or not data:
        return {"success": True, "values": [], **({"empty_return": True} if outputs and not data else {})}
    types = [collapse_if_tuple(o) for o in outputs]
    try:
        check_bounds([parse_type(t) for t in types], data)
        values = eth_abi.decode(types, data, strict=True)
    except (BadCalldata, *_ERRORS) as exc:
        raise BadCalldata(f"return data does not decode as ({','.join(types)})", field="return_data") from exc
    return {"success": True, "values": [format_value(o, v) for o, v in zip(outputs, values)]}


def decode_results(decoded: DecodedCall, inner: Sequence[Any], data: bytes) -> list[dict[str, Any]] | None:
    """Per-call results of a Multicall3 result list (``Result[]`` = ``(bool,bytes)[]``), each
    return decoded against its inner call's outputs when known; ``None`` for other methods."""
    if decoded.method not in _RESULT_LISTS:
        return None
    (results,) = decode_return([{"name": "r", "type": "tuple[]", "components": [
        {"name": "success", "type": "bool"}, {"name": "returnData", "type": "bytes"}]}], data)["values"]
    out = []
    for i, result in enumerate(results):
        entry: dict[str, Any] = {"index": i, "success": result["success"], "return_data": result["returnData"]}
        call = inner[i].call if i < len(inner) else None
        if result["success"] and call is not None and call.decoded is not None:
            try:
                entry["values"] = decode_return(call.decoded.outputs, bytes.fromhex(result["returnData"][2:]))["values"]
            except BadCalldata as exc:
                entry["error"] = exc.message
        out.append(entry)
    return out


def return_values(call: Any, data: bytes) -> dict[str, Any]:
    """Return data of a decoded call (:class:`~auditinf.evm.calls.CallAnalysis`): the function's
    values, plus ``results`` per inner call for Multicall3 result lists."""
    out = decode_return(call.decoded.outputs, data)
    results = decode_results(call.decoded, call.inner, data) if call.inner and data else None
    if results is not None:
        out["results"] = results
    return out
