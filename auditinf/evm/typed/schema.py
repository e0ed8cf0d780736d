"""Strict validation of EIP-712 typed data (the ``eth_signTypedData_v4`` payload).

:func:`parse_typed_data` checks, before anything is hashed:

- shape: ``{"types", "primaryType", "domain", "message"}`` and nothing else;
- ``types``: every type an identifier with a non-empty list of ``{"name", "type"}`` fields, field
  names unique, every referenced type either an EIP-712 atomic/dynamic type (``address``, ``bool``,
  ``string``, ``bytes``, ``bytes1``…``bytes32``, ``uint8``…``uint256``, ``int8``…``int256``), a
  declared struct, or an array of one (``T[]``, ``T[k]``, nested);
- ``EIP712Domain`` present, with only the fields EIP-712 defines (``name string``, ``version
  string``, ``chainId uint256``, ``verifyingContract address``, ``salt bytes32``);
- ``primaryType`` declared and not ``EIP712Domain``;
- values: the domain and message hold exactly the declared fields (an undeclared field would be
  shown to the user but not signed), every value in range for its type (addresses EIP-55 checked
  when mixed-case, ``bytesN`` exactly N bytes, fixed arrays of the declared length);
- bounds: at most :data:`MAX_TYPES` types of :data:`MAX_FIELDS` fields, :data:`MAX_VALUES` values
  and struct nesting :data:`MAX_DEPTH` (recursive types are legal but must end);
- hashing work: eth-account encodes the type of every struct value it hashes by walking that
  type's dependency closure (EIP-712 ``encodeType``), so the work is Σ over struct values of the
  closure's field count; above :data:`MAX_HASH_WORK` the data is refused (422
  ``typed_data_too_complex``) before anything is hashed;
- unused types: a declared type that neither ``primaryType`` nor ``EIP712Domain`` reaches is not
  part of any hash (EIP-712 ``encodeType`` takes the referenced types only; MetaMask's
  eth-sig-util and the EIP's reference ``Example.js`` ignore the rest). It is dropped from
  ``types`` (what is hashed and shown) and named in ``unused_types``, so the digest is the one the
  wallet signs.

Values come out in two forms: ``json`` (addresses checksummed, integers as decimal strings, bytes
as 0x hex — safe for RFC 8785 records) and ``native`` (ints and bytes, for hashing).
Raises :class:`~auditinf.errors.BadTypedData` (``invalid_typed_data``) naming the JSON path,
never echoing a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ...errors import BadTypedData, InputError
from ..hexdata import parse_hex
from ..tx import parse_address

__all__ = ["TypedData", "parse_typed_data", "MAX_TYPES", "MAX_FIELDS", "MAX_VALUES", "MAX_DEPTH", "MAX_HASH_WORK"]

MAX_TYPES = 64
MAX_FIELDS = 64
MAX_VALUES = 4096
MAX_DEPTH = 12
MAX_HASH_WORK = 100_000
"""Field visits eth-account's hashing may make (Σ over struct values of their type's closure fields)."""

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")
_ARRAY = re.compile(r"^(.+)\[([0-9]*)\]$")
_INT = re.compile(r"^(u?)int([0-9]{1,3})$")
_BYTES_N = re.compile(r"^bytes([0-9]{1,2})$")
_DEC = re.compile(r"^-?[0-9]{1,78}$")
_HEXQ = re.compile(r"^0[xX][0-9a-fA-F]{1,64}$")
_DOMAIN_FIELDS = {"name": "string", "version": "string", "chainId": "uint256", "verifyingContract": "address",
                  "salt": "bytes32"}


@dataclass(frozen=True)
class TypedData:
    """Validated typed data. ``types`` keeps declaration order; ``domain``/``message`` are the
    JSON forms, ``native`` the ``{"types", "primaryType", "domain", "message"}`` form for hashing."""

    types: dict[str, list[dict[str, str]]]
    primary_type: str
    domain: dict[str, Any]
    message: dict[str, Any]
    native: dict[str, Any]
    unused_types: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # declared, never hashed

    @property
    def chain_id(self) -> int | None:
        """``domain.chainId`` (EIP-155), or ``None`` when the domain has none."""
        value = self.domain.get("chainId")
        return int(value) if value is not None else None

    @property
    def verifying_contract(self) -> str | None:
        return self.domain.get("verifyingContract")


def _atomic(kind: str) -> bool:
    if kind in ("address", "bool", "string", "bytes"):
        return True
    if m := _BYTES_N.match(kind):
        return 1 <= int(m.group(1)) <= 32
    if m := _INT.match(kind):
        bits = int(m.group(2))
        return 8 <= bits <= 256 and bits % 8 == 0
    return False


def _check_types(types: Any) -> dict[str, list[dict[str, str]]]:
    if not isinstance(types, dict) or not types:
        raise BadTypedData("types must be a non-empty object", field="types")
    if len(types) > MAX_TYPES:
        raise BadTypedData(f"more than {MAX_TYPES} types", field="types")
    out: dict[str, list[dict[str, str]]] = {}
    for name, fields in types.items():
        where = f"types.{name}" if _IDENT.match(name) else "types"
        if not _IDENT.match(name) or _atomic(name):
            raise BadTypedData("a type name must be an identifier that is not an atomic type", field=where)
        if not isinstance(fields, list) or not (fields or name == "EIP712Domain"):
            raise BadTypedData("a type must be a non-empty list of {name, type} fields", field=where)
        if len(fields) > MAX_FIELDS:
            raise BadTypedData(f"more than {MAX_FIELDS} fields", field=where)
        seen: set[str] = set()
        clean = []
        for i, f in enumerate(fields):
            if not isinstance(f, dict) or set(f) != {"name", "type"} or not all(isinstance(v, str) for v in f.values()):
                raise BadTypedData("each field must be exactly {\"name\": str, \"type\": str}", field=f"{where}[{i}]")
            if not _IDENT.match(f["name"]) or f["name"] in seen:
                raise BadTypedData("field names must be unique identifiers", field=f"{where}[{i}].name")
            seen.add(f["name"])
            clean.append({"name": f["name"], "type": f["type"]})
        out[name] = clean
    for name, fields in out.items():
        for i, f in enumerate(fields):
            base = f["type"]
            while m := _ARRAY.match(base):
                if m.group(2) and not 0 < int(m.group(2)) <= MAX_VALUES:
                    raise BadTypedData("fixed array length out of range", field=f"types.{name}[{i}].type")
                base = m.group(1)
            if not (_atomic(base) or (base in out and base != "EIP712Domain")):
                raise BadTypedData(f"type '{base[:64]}' is neither an EIP-712 type nor declared",
                                   field=f"types.{name}[{i}].type")
    if "EIP712Domain" not in out:
        raise BadTypedData("types must declare EIP712Domain (eth_signTypedData_v4)", field="types.EIP712Domain")
    for i, f in enumerate(out["EIP712Domain"]):
        if _DOMAIN_FIELDS.get(f["name"]) != f["type"]:
            raise BadTypedData("EIP712Domain may only hold name string, version string, chainId uint256, "
                               "verifyingContract address, salt bytes32", field=f"types.EIP712Domain[{i}]")
    return out


def _base(kind: str) -> str:
    while m := _ARRAY.match(kind):
        kind = m.group(1)
    return kind


def _references(types: dict[str, list[dict[str, str]]]) -> dict[str, set[str]]:
    """Struct type → the struct types its fields name (arrays stripped)."""
    return {name: {b for b in (_base(f["type"]) for f in fields) if b in types} for name, fields in types.items()}


def _closure(refs: dict[str, set[str]], root: str) -> set[str]:
    """``root`` and every struct type it references, directly or not (EIP-712 ``encodeType``)."""
    seen, todo = {root}, [root]
    while todo:
        for ref in refs[todo.pop()] - seen:
            seen.add(ref)
            todo.append(ref)
    return seen


class _Walker:
    """Validates values against types; counts values and hashing work to bound them."""

    def __init__(self, types: dict[str, list[dict[str, str]]], refs: dict[str, set[str]]) -> None:
        self.types = types
        self.refs = refs
        self.count = 0
        self.work = 0
        self._closure_fields: dict[str, int] = {}

    def struct(self, kind: str, value: Any, path: str, depth: int) -> tuple[dict, dict]:
        if depth > MAX_DEPTH:
            raise BadTypedData(f"structs nest deeper than {MAX_DEPTH} levels", field=path)
        if kind not in self._closure_fields:
            self._closure_fields[kind] = sum(len(self.types[t]) for t in _closure(self.refs, kind))
        self.work += self._closure_fields[kind]
        if self.work > MAX_HASH_WORK:
            raise BadTypedData(f"hashing this typed data would take more than {MAX_HASH_WORK} field encodings "
                               "(struct values × their types' dependency fields)", code="typed_data_too_complex",
                               field=path)
        fields = self.types[kind]
        if not isinstance(value, dict):
            raise BadTypedData(f"{kind} value must be an object", field=path)
        names = [f["name"] for f in fields]
        extra = [k for k in value if k not in names]
        if extra:
            raise BadTypedData(f"field not declared in {kind} (it would be shown but not signed)",
                               field=f"{path}.{str(extra[0])[:64]}")
        missing = [n for n in names if n not in value]
        if missing:
            raise BadTypedData(f"{kind} field missing", field=f"{path}.{missing[0]}")
        js, nat = {}, {}
        for f in fields:
            js[f["name"]], nat[f["name"]] = self.value(f["type"], value[f["name"]], f"{path}.{f['name']}", depth)
        return js, nat

    def value(self, kind: str, value: Any, path: str, depth: int) -> tuple[Any, Any]:
        self.count += 1
        if self.count > MAX_VALUES:
            raise BadTypedData(f"more than {MAX_VALUES} values", field=path)
        if m := _ARRAY.match(kind):
            if not isinstance(value, list):
                raise BadTypedData(f"{kind} value must be an array", field=path)
            if m.group(2) and len(value) != int(m.group(2)):
                raise BadTypedData(f"{kind} needs exactly {m.group(2)} elements", field=path)
            pairs = [self.value(m.group(1), v, f"{path}[{i}]", depth) for i, v in enumerate(value)]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        if kind in self.types:
            return self.struct(kind, value, path, depth + 1)
        return _atomic_value(kind, value, path)


def _atomic_value(kind: str, value: Any, path: str) -> tuple[Any, Any]:
    if kind == "address":
        try:
            addr = parse_address(value, path)
        except InputError as exc:
            raise BadTypedData(exc.message, field=path) from exc
        return addr, addr
    if kind == "bool":
        if not isinstance(value, bool):
            raise BadTypedData("bool value must be true or false", field=path)
        return value, value
    if kind == "string":
        if not isinstance(value, str):
            raise BadTypedData("string value must be a JSON string", field=path)
        return value, value
    if kind == "bytes" or kind.startswith("bytes"):
        data = _bytes(value, path)
        if kind != "bytes" and len(data) != int(kind[5:]):
            raise BadTypedData(f"{kind} value must be exactly {kind[5:]} bytes", field=path)
        return "0x" + data.hex(), data
    signed, bits = kind.startswith("int"), int(_INT.match(kind).group(2))
    number = _integer(value, path)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not low <= number <= high:
        raise BadTypedData(f"{kind} value out of range", field=path)
    return str(number), number


def _bytes(value: Any, path: str) -> bytes:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise BadTypedData("bytes value must be 0x hex", field=path)
    try:
        return parse_hex(value, field=path)
    except InputError as exc:
        raise BadTypedData(exc.message, field=path) from exc


def _integer(value: Any, path: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DEC.match(value):
        return int(value)
    if isinstance(value, str) and _HEXQ.match(value):
        return int(value, 16)
    raise BadTypedData("integer value must be a JSON integer, a decimal string or a 0x quantity", field=path)


def parse_typed_data(raw: Any) -> TypedData:
    """Validate EIP-712 typed data (a parsed JSON object); raises ``invalid_typed_data``."""
    if not isinstance(raw, dict):
        raise BadTypedData("typed data must be a JSON object", field="typed_data")
    keys = {"types", "primaryType", "domain", "message"}
    if set(raw) != keys:
        unexpected = sorted(set(raw) - keys)
        raise BadTypedData("typed data must hold exactly types, primaryType, domain and message",
                           field=str(unexpected[0])[:64] if unexpected else sorted(keys - set(raw))[0])
    types = _check_types(raw["types"])
    primary = raw["primaryType"]
    if not isinstance(primary, str) or primary not in types or primary == "EIP712Domain":
        raise BadTypedData("primaryType must name a declared type other than EIP712Domain", field="primaryType")
    refs = _references(types)
    used = _closure(refs, primary) | {"EIP712Domain"}
    unused = {name: fields for name, fields in types.items() if name not in used}
    types = {name: fields for name, fields in types.items() if name in used}
    walker = _Walker(types, refs)
    domain_js, domain_nat = walker.struct("EIP712Domain", raw["domain"], "domain", 0)
    message_js, message_nat = walker.struct(primary, raw["message"], "message", 0)
    native = {"types": types, "primaryType": primary, "domain": domain_nat, "message": message_nat}
    return TypedData(types=types, primary_type=primary, domain=domain_js, message=message_js, native=native,
                     unused_types=unused)
