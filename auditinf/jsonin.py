"""Bounded JSON input: every request body and input file goes through :func:`load_json`.

Limits checked before parsing (the depth: no input can exhaust the stack; some dependencies raise
Python's recursion limit far above what the C stack holds) or while parsing, so that no input
produces a record that later fails canonicalisation:

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
import re
from typing import Any

from .errors import InputError

__all__ = ["MAX_DEPTH", "load_json", "check_depth"]

MAX_DEPTH = 32


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a complete JSON string literal
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``invalid_json`` if brackets nest deeper than ``max_depth`` (strings skipped).

    String literals are cut out first — by splitting at the quotes when the text has no escape
    (a quote then always opens or closes a string), else by a regular expression — and an
    unterminated one runs to the end; then only the brackets left are walked, stopping at the
    first one too deep. C speed on the characters, Python only per bracket."""
    if "\\" in text:
        structure = _STRING.sub("", text)
        unterminated = structure.find('"')
        if unterminated >= 0:
            structure = structure[:unterminated]
    else:
        structure = "".join(text.split('"')[0::2])
    depth = 0
    for bracket in _NOT_BRACKET.sub("", structure):
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                raise InputError(f"JSON nests deeper than {max_depth} levels", code="invalid_json")
        else:
            depth -= 1


def _finite(literal: str) -> float:
    """``parse_float``: an overflowing literal such as ``1e400`` is not a JSON number we accept."""
    value = float(literal)
    if not math.isfinite(value):
        raise InputError("JSON number overflows (not finite)", code="invalid_json")
    return value


def _check_strings(node: Any) -> None:
    """Refuse a lone surrogate (only a ``\\uD800``-style escape can make one: the text was valid
    UTF-8) anywhere in ``node``, member names included."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError("JSON string is not valid Unicode (lone surrogate)", code="invalid_json") from exc
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
        value = json.loads(text, parse_constant=_no_constants, parse_float=_finite, object_pairs_hook=_unique_members)
    except InputError:
        raise
    except ValueError as exc:
        raise InputError("request body is not valid JSON", code="invalid_json") from exc
    if not isinstance(raw, (bytes, bytearray)) or "\\u" in text:  # valid UTF-8 without a \u escape
        _check_strings(value)                                         # cannot hold a lone surrogate
    return value
