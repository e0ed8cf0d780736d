"""Record bodies built in two steps: canonicalise the caller's content, then stamp it.

An audit record body is the RFC 8785 (JCS) canonical JSON of the caller's content plus five
fields only the sequencer knows: ``v`` (format version), ``seq``, ``prev`` (leaf hash of the
record before), ``kid`` (signing key id) and ``ts`` (ISO-8601 UTC). JCS serialises an object as
its members sorted by the UTF-16 code units of their names (RFC 8785 §3.2.3), each member being
``name:value`` in canonical form, so:

1. :func:`prepare` runs in the caller's thread: it canonicalises every top-level member once and
   raises :class:`~auditinf.errors.LedgerError` (``invalid_record``) for content JCS cannot carry —
   a bad record fails alone, never the batch it would have joined;
2. :func:`stamp` runs in the sequencer: it merges the five stamp members and joins — byte for
   byte ``rfc8785.dumps({**content, v, seq, prev, kid, ts})`` (property-tested).

The whole content is checked once for the orjson fast path (:func:`.canonical.canonical_members`);
when it does not apply, each member goes through :func:`.canonical.canonical_bytes` (``rfc8785``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import LedgerError
from .canonical import canonical_bytes, canonical_members

__all__ = ["PreparedContent", "prepare", "stamp", "STAMP_FIELDS", "BODY_VERSION"]

STAMP_FIELDS = ("kid", "prev", "seq", "ts", "v")
BODY_VERSION = 1


def _sort_key(name: str) -> bytes:
    """RFC 8785 §3.2.3 order: UTF-16 code units, compared as unsigned integers (big-endian bytes)."""
    return name.encode("utf-16-be", "surrogatepass")


@dataclass(frozen=True)
class PreparedContent:
    """Canonical ``(sort key, b'"name":value')`` members of a record's content."""

    members: tuple[tuple[bytes, bytes], ...]


def prepare(content: dict[str, Any]) -> PreparedContent:
    """Canonicalise ``content`` (a JSON object with string names) member by member.

    Raises :class:`LedgerError` (``invalid_record``) if ``content`` is not a dict, uses a stamp
    field name (``v``, ``seq``, ``prev``, ``kid``, ``ts``), or holds a value RFC 8785 refuses
    (floats that are not finite, integers beyond ±(2^53 − 1), non-JSON types).
    """
    if not isinstance(content, dict):
        raise LedgerError("record content must be a JSON object", code="invalid_record")
    fast = canonical_members(content)  # one check for the whole content; None: each member on its own
    members = []
    for name, value in content.items():
        if not isinstance(name, str):
            raise LedgerError("record member names must be strings", code="invalid_record")
        if name in STAMP_FIELDS:
            raise LedgerError(f"record member {name!r} is set by the ledger", code="invalid_record")
        if fast is not None:
            members.append((_sort_key(name), fast[name]))
            continue
        try:
            members.append((_sort_key(name), canonical_bytes(name) + b":" + canonical_bytes(value)))
        except Exception as exc:  # rfc8785 raises several types (domain errors, unsupported types, …)
            raise LedgerError(f"record member {name!r} is not RFC 8785 JSON: {type(exc).__name__}",
                              code="invalid_record") from exc
    return PreparedContent(tuple(members))


_STAMP_KEYS = {name: _sort_key(name) for name in STAMP_FIELDS}
_VERSION_MEMBER = (_STAMP_KEYS["v"], b'"v":%d' % BODY_VERSION)


def stamp(prepared: PreparedContent, *, seq: int, prev: str, kid: str, ts: str) -> bytes:
    """The canonical body: ``prepared`` plus the stamp fields. ``prev`` and ``kid`` are lowercase
    hex and ``seq`` a non-negative integer below 2^53 (written as they are); ``ts`` is serialised
    by RFC 8785."""
    members = [*prepared.members,
               (_STAMP_KEYS["kid"], b'"kid":"%s"' % kid.encode()),
               (_STAMP_KEYS["prev"], b'"prev":"%s"' % prev.encode()),
               (_STAMP_KEYS["seq"], b'"seq":%d' % seq),
               (_STAMP_KEYS["ts"], b'"ts":' + canonical_bytes(ts)),
               _VERSION_MEMBER]
    members.sort()  # names are unique: tuples order by their UTF-16 sort key alone
    return b"{" + b",".join([m[1] for m in members]) + b"}"
