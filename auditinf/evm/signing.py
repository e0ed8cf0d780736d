"""Signing requests in the JSON-RPC shape wallets receive them, and what they would sign.

``{"method": M, "params": [...], "chain_id"?: int, "private"?: bool, "rpc_url"?: str}`` with

| method                 | params                                   | standard                        |
|------------------------|------------------------------------------|---------------------------------|
| ``eth_signTypedData_v4`` | ``[signer, typedData]`` (JSON string or object) | EIP-712                  |
| ``personal_sign``      | ``[message, signer]`` (0x hex bytes or text) | EIP-191 version 0x45        |
| ``eth_sign``           | ``[signer, data]`` (0x hex, normally a 32-byte hash) | blind: no standard framing |

``chain_id`` is the wallet's active chain (EIP-155); for typed data it is compared with
``domain.chainId``. ``id``/``jsonrpc`` of a JSON-RPC envelope are accepted and ignored.

Errors: ``unsupported_method``, ``invalid_request`` (params shape, unknown field),
``invalid_address``, ``invalid_hex``, ``invalid_typed_data`` (see :mod:`.typed.schema`),
``request_too_large`` (typed data over 512 KiB, a message over 128 KiB).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError, RequestTooLarge
from ..jsonin import load_json
from .hexdata import parse_hex
from .tx import MAX_CALLDATA_BYTES, parse_address
from .typed import TypedData, field_listing, hash_typed_data, parse_typed_data, personal_message_digest, \
    read_typed_data
from .typed.recognise import Reading

__all__ = ["SIGNING_METHODS", "SigningRequest", "is_signing_request", "parse_signing_request",
           "secret_scan_view", "binary_text_views", "message_text"]

SIGNING_METHODS = ("eth_signTypedData_v4", "personal_sign", "eth_sign")
MAX_TYPED_DATA_CHARS = 512 * 1024
_FIELDS = {"method", "params", "chain_id", "private", "rpc_url", "id", "jsonrpc"}
_HEX_BYTES = re.compile(r"^0[xX]([0-9a-fA-F]{2})*$")
_MAX_CHAIN_ID = 2**53 - 1


@dataclass(frozen=True)
class SigningRequest:
    """A validated signing request. Exactly one of ``typed`` / ``message`` / ``raw`` is set."""

    method: str
    signer: str
    chain_id: int | None
    typed: TypedData | None = None
    message: bytes | None = None  # personal_sign payload
    raw: bytes | None = None  # eth_sign payload

    @property
    def reading(self) -> Reading | None:
        return read_typed_data(self.typed) if self.typed is not None else None

    def to_dict(self) -> dict[str, Any]:
        """Normalised request for the record (typed data in JSON form, bytes as 0x hex)."""
        out: dict[str, Any] = {"method": self.method, "signer": self.signer, "chain_id": self.chain_id}
        if self.typed is not None:
            out["typed_data"] = {"types": self.typed.types, "primaryType": self.typed.primary_type,
                                 "domain": self.typed.domain, "message": self.typed.message}
            if self.typed.unused_types:  # declared but never hashed (see evm.typed.schema)
                out["typed_data"]["unused_types"] = list(self.typed.unused_types)
        else:
            out["data"] = "0x" + (self.message if self.message is not None else self.raw or b"").hex()
        return out

    def decoded(self, reading: Reading | None = None) -> dict[str, Any]:
        """The answer's ``decoded``: for typed data ``{kind: "typed_data", primary_type,
        recognised_as, standard, domain, message, types, fields, summary, display,
        domain_separator, struct_hash, digest}``; for ``personal_sign`` ``{kind:
        "personal_message", is_text, text?, data, digest}``; for ``eth_sign`` ``{kind: "raw_hash",
        data, bytes}``."""
        base = {"method": self.method, "signer": self.signer}
        if self.typed is not None:
            reading = reading or read_typed_data(self.typed)
            return {"kind": "typed_data", **base, "primary_type": self.typed.primary_type,
                    "recognised_as": reading.recognised_as, "standard": reading.standard,
                    "domain": self.typed.domain, "message": self.typed.message, "types": self.typed.types,
                    "fields": field_listing(self.typed), "summary": reading.summary, "display": reading.display,
                    **({"unused_types": list(self.typed.unused_types)} if self.typed.unused_types else {}),
                    **hash_typed_data(self.typed).to_dict()}
        if self.message is not None:
            text = message_text(self.message)
            return {"kind": "personal_message", **base, "is_text": text is not None,
                    **({"text": text} if text is not None else {}), "data": "0x" + self.message.hex(),
                    "bytes": len(self.message), "digest": personal_message_digest(self.message)}
        raw = self.raw or b""
        return {"kind": "raw_hash", **base, "data": "0x" + raw.hex(), "bytes": len(raw)}


def message_text(message: bytes) -> str | None:
    """The message as text when it is UTF-8 with no control characters other than tab/newline/CR."""
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any((ord(c) < 0x20 and c not in "\t\n\r") or 0x7F <= ord(c) <= 0x9F for c in text):
        return None
    return text


def is_signing_request(body: Any) -> bool:
    """True when ``body`` has the JSON-RPC signing shape (a ``method`` field)."""
    return isinstance(body, dict) and "method" in body


def _chain_id(body: dict) -> int | None:
    value = body.get("chain_id")
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"0x[0-9a-fA-F]{1,14}", value):
        value = int(value, 16)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _MAX_CHAIN_ID:
        raise InputError("chain_id must be an integer from 1 to 2^53-1", code="invalid_chain_id", field="chain_id")
    return value


def _params(body: dict) -> tuple[str, list]:
    method = body.get("method")
    if method not in SIGNING_METHODS:
        raise InputError(f"method must be one of {', '.join(SIGNING_METHODS)}", code="unsupported_method",
                         field="method")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InputError("unknown field in a signing request", code="invalid_request", field=str(unknown[0])[:64])
    params = body.get("params")
    if not isinstance(params, list) or len(params) != 2:
        raise InputError(f"{method} params must be a list of 2 items", code="invalid_request", field="params")
    return method, params


def _typed_json(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_TYPED_DATA_CHARS:
            raise RequestTooLarge("typed data is over 512 KiB", field="params[1]")
        return load_json(value)
    return value


def parse_signing_request(body: dict) -> SigningRequest:
    """Validate a signing request (see the module docstring for the shape and error codes)."""
    method, params = _params(body)
    chain_id = _chain_id(body)
    if method == "eth_signTypedData_v4":
        signer = parse_address(params[0], "params[0]")
        return SigningRequest(method, signer, chain_id, typed=parse_typed_data(_typed_json(params[1])))
    if method == "personal_sign":
        signer = parse_address(params[1], "params[1]")
        message = params[0]
        if not isinstance(message, str):
            raise InputError("personal_sign message must be 0x hex or text", code="invalid_request", field="params[0]")
        data = parse_hex(message, field="params[0]", max_bytes=MAX_CALLDATA_BYTES) if _HEX_BYTES.match(message) \
            else message.encode("utf-8")
        if len(data) > MAX_CALLDATA_BYTES:
            raise RequestTooLarge("message is over 128 KiB", field="params[0]")
        return SigningRequest(method, signer, chain_id, message=data)
    signer = parse_address(params[0], "params[0]")
    if not isinstance(params[1], str) or params[1][:2] not in ("0x", "0X"):
        raise InputError("eth_sign data must be 0x hex", code="invalid_hex", field="params[1]")
    return SigningRequest(method, signer, chain_id, raw=parse_hex(params[1], field="params[1]",
                                                                   max_bytes=MAX_CALLDATA_BYTES))


_PLACEHOLDER = "0x"


def _blank_bytes(typed: TypedData, kind: str, value: Any) -> Any:
    """``value`` with every bytes/bytesN leaf replaced by a placeholder (they are binary by type)."""
    if kind.endswith("]"):
        element = kind[: kind.rindex("[")]
        return [_blank_bytes(typed, element, v) for v in value]
    if kind in typed.types:
        return {f["name"]: _blank_bytes(typed, f["type"], value[f["name"]]) for f in typed.types[kind]}
    return _PLACEHOLDER if kind.startswith("bytes") else value


def _readable(data: bytes, encoding: str) -> str:
    text = data.decode(encoding, errors="replace")
    return "".join(" " if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c == "\ufffd") else c for c in text)


def binary_text_views(data: bytes) -> str:
    """What text ``data`` holds, for the secret scan: its UTF-8, UTF-16LE and UTF-16BE readings
    (RFC 3629, RFC 2781), control characters and undecodable bytes turned into spaces, one per
    line. One control character or a UTF-16 encoding must not hide a phrase or key typed into a
    message; random binary (a hash) decodes to no 64-hex-digit run nor 12 BIP-39 words."""
    even = data[: len(data) // 2 * 2]
    return "\n".join([_readable(data, "utf-8"), _readable(even, "utf-16-le"), _readable(even, "utf-16-be")])


def secret_scan_view(body: dict) -> dict:
    """The body as the secret scan should see it.

    Binary payloads are 32 bytes as often as a private key is, so their hex is not scanned:
    ``eth_sign`` data and a non-text ``personal_sign`` message are scanned as the text they hold
    (:func:`binary_text_views`), ``bytes``/``bytesN`` typed-data values (Seaport ``zoneHash``, a
    domain ``salt``) are blanked. A text message is scanned as text. Anything that does not parse
    is scanned as sent.
    """
    try:
        request = parse_signing_request(body)
    except InputError:
        return body
    view = copy.deepcopy(body)
    if request.typed is not None:
        typed = request.typed
        view["params"][1] = {"types": {**typed.types, **typed.unused_types}, "primaryType": typed.primary_type,
                             "domain": _blank_bytes(typed, "EIP712Domain", typed.domain),
                             "message": _blank_bytes(typed, typed.primary_type, typed.message)}
    elif request.message is not None:
        view["params"][0] = message_text(request.message) or binary_text_views(request.message)
    else:
        view["params"][1] = binary_text_views(request.raw or b"")
    return view
