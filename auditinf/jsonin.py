"""Bounded JSON input: every request body and input file goes through :func:`load_json`.

Limits checked *before* parsing, so no input can exhaust the stack (some dependencies raise
Python's recursion limit far above what the C stack holds) or produce a record that later fails
canonicalisation:

- the bytes are UTF-8 (RFC 8259 §8.1) — ``json.loads`` would also sniff UTF-16/32, which the
  depth scan below would misread;
- nesting depth ≤ :data:`MAX_DEPTH` (objects and arrays);
- every string valid Unicode (no lone surrogates such as ``"\\ud800"``; RFC 8785 / RFC 8259 §8.2);
- numbers finite: ``NaN``, ``Infinity`` and overflowing literals such as ``1e400`` are not JSON;
- no object repeats a member name (RFC 8259 §4 says names SHOULD be unique and leaves the result
  of duplicates to the parser; I-JSON, RFC 7493 §2.3, requires unique names): ``{"private": true,
  "private": false}`` would otherwise silently keep the last value.

Fields that accept integers check their own ranges (RFC 8785 allows at most ±(2^53−1)).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InputError

__all__ = ["MAX_DEPTH", "load_json", "check_depth"]

MAX_DEPTH = 32


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``invalid_json`` if brackets nest deeper than ``max_depth`` (strings skipped)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                raise InputError(f"JSON nests deeper than {max_depth} levels", code="invalid_json")
        elif ch in "]}":
            depth -= 1


def _check_strings(node: Any) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError("JSON string is not valid Unicode (lone surrogate)", code="invalid_json") from exc
        elif isinstance(item, float) and not math.isfinite(item):
            raise InputError("JSON number overflows (not finite)", code="invalid_json")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        name = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise InputError("JSON object repeats a member name (RFC 7493 §2.3)", code="invalid_json",
                         field=name if _printable(name) else None)
    return obj


def _printable(name: str) -> bool:
    # ≤ 32 characters cannot hold a 32-byte hex key (64 digits) nor 12 BIP-39 words (≥ 36 letters)
    return len(name) <= 32 and name.isascii() and name.isprintable()


def load_json(raw: bytes | str) -> Any:
    """Parse ``raw`` with the limits above; raises :class:`InputError` (``invalid_json``; for a
    repeated member name ``field`` names it, unless it could hold a secret)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError as exc:
        raise InputError("JSON must be UTF-8 encoded (RFC 8259 §8.1)", code="invalid_json") from exc
    check_depth(text)
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_unique_members)
    except ValueError as exc:
        raise InputError("request body is not valid JSON", code="invalid_json") from exc
    _check_strings(value)
    return value
