"""Solidity JSON ABI → function descriptions (ABI method extraction).

Follows the Solidity ABI specification (“Contract ABI Specification”, function selector =
first 4 bytes of keccak-256 of the canonical signature, tuples written ``(t1,t2,…)``).
Overloads stay separate entries: two functions with one name are two methods with two selectors.
Legacy fields (``constant``/``payable`` without ``stateMutability``) are accepted and mapped as
Solidity < 0.4.16 meant them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NewType

from eth_abi.grammar import TupleType
from eth_abi.grammar import parse as parse_type
from eth_utils import keccak
from eth_utils.abi import collapse_if_tuple

from ..errors import BadAbi

__all__ = ["Selector", "AbiFunction", "parse_abi", "method_entry"]

Selector = NewType("Selector", str)
"""``0x`` + 8 lowercase hex digits."""

_MAX_ABI_ENTRIES = 5000
_MAX_TYPE_DEPTH = 12  # tuple levels + array dimensions: deeper types exist in no real contract
_MUTABILITIES = ("pure", "view", "nonpayable", "payable")


@dataclass(frozen=True)
class AbiFunction:
    """One ``type: function`` ABI entry, normalised.

    ``inputs``/``outputs`` are the ABI component dicts as given (names kept, ``""`` allowed);
    ``input_types`` are canonical eth-abi type strings (``(address,bool,bytes)[]``).
    """

    name: str
    signature: str
    selector: Selector
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    state_mutability: str
    input_types: tuple[str, ...] = field(repr=False)


def _type_depth(t: Any) -> int:
    own = len(t.arrlist or ())
    if isinstance(t, TupleType):
        return own + 1 + max((_type_depth(c) for c in t.components), default=0)
    return own


def _canonical_type(component: Any, where: str) -> str:
    if not isinstance(component, dict) or not isinstance(component.get("type"), str):
        raise BadAbi(f"{where}: each parameter needs a string 'type'", field="abi")
    name = component.get("name", "")
    if not isinstance(name, str) or (name and not name.isidentifier()) or len(name) > 128:
        raise BadAbi(f"{where}: parameter name must be empty or a Solidity identifier", field="abi")
    if component["type"].startswith("tuple"):
        comps = component.get("components")
        if not isinstance(comps, list):
            raise BadAbi(f"{where}: tuple parameter without 'components'", field="abi")
        for i, c in enumerate(comps):
            _canonical_type(c, f"{where}.components[{i}]")
        _unique_names(comps, f"{where}.components")
    elif "components" in component:
        raise BadAbi(f"{where}: 'components' is only allowed on tuple types", field="abi")
    try:
        canonical = collapse_if_tuple(component)
        parsed = parse_type(canonical)
        parsed.validate()
    except Exception as exc:  # eth-abi raises ParseError / ABITypeError; both mean "bad type"
        raise BadAbi(f"{where}: invalid ABI type {component['type'][:40]!r}", field="abi") from exc
    if _type_depth(parsed) > _MAX_TYPE_DEPTH:
        raise BadAbi(f"{where}: type nests deeper than {_MAX_TYPE_DEPTH} levels", field="abi")
    return canonical


def _unique_names(params: list, where: str) -> None:
    """Solidity forbids two parameters with one name; a decoder keyed by name would lose one."""
    names = [p.get("name") for p in params if isinstance(p, dict) and p.get("name")]
    if len(names) != len(set(names)):
        raise BadAbi(f"{where}: two parameters share a name", field="abi")


def _state_mutability(entry: dict) -> str:
    declared = entry.get("stateMutability")
    if declared is not None:
        if declared not in _MUTABILITIES:
            raise BadAbi(f"unknown stateMutability {str(declared)[:20]!r}", field="abi")
        return declared
    if entry.get("payable") is True:
        return "payable"
    if entry.get("constant") is True:
        return "view"
    return "nonpayable"


def parse_abi(abi: Any) -> list[AbiFunction]:
    """Return the functions of a JSON ABI, in file order, overloads kept apart.

    ``abi`` is a list of ABI entries or an object with an ``"abi"`` list (Hardhat/Foundry
    artifacts). Non-function entries (events, errors, constructor, fallback) are skipped.
    Raises :class:`BadAbi` (``invalid_abi``) naming the entry index on any malformed entry.
    """
    if isinstance(abi, dict) and "abi" in abi:
        abi = abi["abi"]
    if not isinstance(abi, list):
        raise BadAbi("ABI must be a JSON list of entries", field="abi")
    if len(abi) > _MAX_ABI_ENTRIES:
        raise BadAbi(f"ABI has more than {_MAX_ABI_ENTRIES} entries", field="abi")
    functions: list[AbiFunction] = []
    for i, entry in enumerate(abi):
        if not isinstance(entry, dict):
            raise BadAbi(f"abi[{i}] is not an object", field="abi")
        if entry.get("type", "function") != "function":
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 128:
            raise BadAbi(f"abi[{i}]: function without a valid 'name'", field="abi")
        inputs = entry.get("inputs", [])
        outputs = entry.get("outputs", [])
        if not isinstance(inputs, list) or not isinstance(outputs, list):
            raise BadAbi(f"abi[{i}]: 'inputs' and 'outputs' must be lists", field="abi")
        types = tuple(_canonical_type(c, f"abi[{i}].inputs[{j}]") for j, c in enumerate(inputs))
        _unique_names(inputs, f"abi[{i}].inputs")
        for j, c in enumerate(outputs):
            _canonical_type(c, f"abi[{i}].outputs[{j}]")
        signature = f"{name}({','.join(types)})"
        functions.append(
            AbiFunction(
                name=name,
                signature=signature,
                selector=Selector("0x" + keccak(text=signature)[:4].hex()),
                inputs=tuple(inputs),
                outputs=tuple(outputs),
                state_mutability=_state_mutability(entry),
                input_types=types,
            )
        )
    return functions


def _param(component: dict) -> dict:
    out = {"name": component.get("name", ""), "type": component["type"]}
    if "components" in component:
        out["components"] = [_param(c) for c in component["components"]]
    return out


def method_entry(fn: AbiFunction) -> dict:
    """JSON shape of one method: ``{name, signature, selector, inputs, outputs, state_mutability}``.

    ``outputs`` is exactly what the ABI declares (USDT's ``approve`` has ``[]``, not ``bool``).
    """
    return {
        "name": fn.name,
        "signature": fn.signature,
        "selector": fn.selector,
        "inputs": [_param(c) for c in fn.inputs],
        "outputs": [_param(c) for c in fn.outputs],
        "state_mutability": fn.state_mutability,
    }
