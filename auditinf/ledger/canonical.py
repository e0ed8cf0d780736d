"""Canonical bytes, leaf hashes and salted commitments for audit records.

- Body bytes: RFC 8785 JSON Canonicalization Scheme. Integers beyond ±(2^53−1) are refused by
  JCS, so wei and uint256 values are carried as decimal strings.
- Leaf hash: SHA-256(0x00 ‖ body) — the RFC 6962 §2.1 leaf hash, also the ``prev`` link of the
  next record, so one stream is both a hash chain and the leaves of a Merkle tree.
- Commitment: SHA-256(domain tag ‖ 0x00 ‖ 32-byte salt ‖ content), with a fresh random salt, so a
  low-entropy input (a guessable approve call) cannot be confirmed by hashing candidates.

RFC 8785 fast path. ``rfc8785`` (the reference library, pure Python) costs about 100 µs for a
1.4 KB record; ``orjson`` with sorted keys writes the same bytes in a few µs whenever the value
holds only strings, booleans, null, integers within ±(2^53−1), objects with string
names and arrays, and no character outside the Basic Multilingual Plane:

- strings: orjson escapes exactly what RFC 8785 §3.2.2.2 escapes (``"``, ``\\``, ``\\b \\t \\n \\f
  \\r`` and other controls as lowercase ``\\u00xx``) and writes everything else as UTF-8;
- names: orjson sorts by code point, which equals RFC 8785 §3.2.3's UTF-16 order inside the BMP;
- integers print alike below 2^53. Floats are where the two differ (``1e-05``, ``12.0``), so a
  number with a fraction or an exponent sends the value to ``rfc8785``.

Integers beyond 2^53 make orjson raise (``OPT_STRICT_INTEGER``). Floats are found by looking at
the text with every string's content removed, where a digit followed by ``.``, ``e`` or ``E`` can
only be a number with a fraction or an exponent; characters beyond the BMP by their UTF-8 lead
byte. Anything orjson cannot write, or writes from a type RFC 8785 refuses (a UUID, an enum), is
caught by reading the text back and comparing, and then ``rfc8785`` decides and names the error.
Property tests check both directions against ``rfc8785``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any, NewType

import orjson
import rfc8785

__all__ = ["LeafHash", "canonical_bytes", "canonical_members", "parse_canonical", "is_canonical", "NOT_CANONICAL", "leaf_hash",
           "commit", "GENESIS_PREV"]

LeafHash = NewType("LeafHash", str)
"""64 lowercase hex digits."""

GENESIS_PREV = LeafHash("00" * 32)

NOT_CANONICAL = object()
"""What :func:`parse_canonical` returns for JSON that is not RFC 8785 canonical."""

_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER  # STRICT_INTEGER: beyond ±(2^53−1) raises
_ESCAPE = re.compile(rb"\\.")  # a backslash escape inside a string (its first two bytes)
_FLOAT = re.compile(rb"\d[.eE]")  # outside strings, only a number with a fraction or an exponent
_BELOW_F0 = bytes(range(0xF0))  # every byte but the UTF-8 lead bytes of 4-byte sequences


def _needs_reference(text: bytes) -> bool:
    """Could RFC 8785 write the value of ``text`` (compact JSON) differently from orjson? True for a
    character beyond the BMP or a number with a fraction or an exponent (a float)."""
    if not text.isascii() and text.translate(None, _BELOW_F0):
        return True
    if b"\\" in text:
        text = _ESCAPE.sub(b"", text)  # no escaped quote left: every '"' now opens or closes a string
    outside = b"".join(text.split(b'"')[::2])  # the text with every string's content removed
    return _FLOAT.search(outside) is not None


def _fast(obj: Any) -> bytes | None:
    """orjson's text of ``obj`` when it is provably the RFC 8785 text, else ``None``."""
    try:
        text = orjson.dumps(obj, option=_SORTED)
        if not _needs_reference(text) and orjson.loads(text) == obj:
            return text
    except (TypeError, ValueError, RecursionError):
        pass
    return None


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 canonical JSON of ``obj`` (UTF-8 bytes). Raises ``rfc8785.CanonicalizationError``
    (or a subclass) for floats that are not finite, integers beyond ±(2^53−1), names that are not
    strings, lone surrogates and types JSON has no form for."""
    text = _fast(obj)
    return rfc8785.dumps(obj) if text is None else text  # rfc8785 decides, and names the problem


def canonical_members(obj: dict[str, Any]) -> dict[str, bytes] | None:
    """``{name: b'"name":value'}`` in RFC 8785 form for every member of the JSON object ``obj``,
    found with one fast-path check of the whole object; ``None`` when that check fails (then each
    member must go through :func:`canonical_bytes`, which names the problem)."""
    if _fast(obj) is None:
        return None
    return {name: orjson.dumps(name) + b":" + orjson.dumps(value, option=_SORTED) for name, value in obj.items()}


def _not_json(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _reference_parse(body: bytes) -> Any:
    parsed = json.loads(body, parse_constant=_not_json)
    try:
        return parsed if rfc8785.dumps(parsed) == body else NOT_CANONICAL
    except Exception:  # rfc8785 raises its own errors (integers beyond 2^53, lone surrogates, ...)
        return NOT_CANONICAL


def parse_canonical(body: bytes) -> Any:
    """The parsed value of ``body`` if it is RFC 8785 canonical JSON, byte for byte, else
    :data:`NOT_CANONICAL`; raises ``ValueError`` (or ``RecursionError``) when it is not JSON."""
    if _needs_reference(body):
        return _reference_parse(body)
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _reference_parse(body)  # not JSON for orjson: the reference path says why, or reads it
    try:
        return parsed if orjson.dumps(parsed, option=_SORTED) == body else NOT_CANONICAL
    except orjson.JSONEncodeError:  # an integer beyond ±(2^53−1): RFC 8785 cannot carry it
        return NOT_CANONICAL


def is_canonical(body: bytes) -> bool:
    """Is ``body`` RFC 8785 canonical JSON (byte for byte)?"""
    try:
        return parse_canonical(body) is not NOT_CANONICAL
    except (ValueError, RecursionError):
        return False


def leaf_hash(body: bytes) -> LeafHash:
    """RFC 6962 §2.1 leaf hash of ``body``, as hex."""
    return LeafHash(hashlib.sha256(b"\x00" + body).hexdigest())


def commit(tag: str, content: bytes, salt: bytes | None = None) -> tuple[str, bytes]:
    """Return (``sha256:<hex>`` commitment, salt) for ``content`` under domain ``tag``."""
    salt = os.urandom(32) if salt is None else salt
    digest = hashlib.sha256(tag.encode() + b"\x00" + salt + content).hexdigest()
    return f"sha256:{digest}", salt
