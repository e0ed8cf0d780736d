"""Key events: the ledger's record of which Ed25519 key signs from which ``seq``.

A rotation is an ordinary record (``kind: "key_event"``) signed by the outgoing key; it names the
incoming key (key id and C2SP verifier key) and carries the incoming key's proof of possession, an
Ed25519 signature over the RFC 8785 JSON of ``{v: "auditinf/key-event/v1", old_kid, new_kid,
new_verifier_key}``. From the next ``seq`` on only the incoming key may sign; the outgoing one is
retired. The ``key_event`` table mirrors these records (written in the same transaction) so the
store can refuse appends signed by a retired key without scanning the chain.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlmodel import Field, SQLModel

from ..errors import KeyFileError, VerificationError
from .canonical import canonical_bytes
from .keys import Signer, Verifier, parse_verifier_key

__all__ = ["KeyEventRow", "KEY_EVENT_KIND", "key_event_content", "check_key_event", "active_kid"]

KEY_EVENT_KIND = "key_event"
_POSSESSION_V = "auditinf/key-event/v1"


class KeyEventRow(SQLModel, table=True):
    """Mirror of one key-event record: from ``seq + 1`` on, ``new_kid`` signs."""

    __tablename__ = "key_event"

    seq: int = Field(primary_key=True)
    old_kid: str = Field(max_length=16)
    new_kid: str = Field(max_length=16)
    verifier_key: str = Field(max_length=256)


def _possession_message(old_kid: str, new_kid: str, verifier_key: str) -> bytes:
    return canonical_bytes({"v": _POSSESSION_V, "old_kid": old_kid, "new_kid": new_kid,
                            "new_verifier_key": verifier_key})


def key_event_content(old: Signer, new: Signer) -> dict[str, Any]:
    """The content of the record that hands signing from ``old`` to ``new`` (append it with ``old``)."""
    vkey = new.verifier.verifier_key
    proof = new.sign(_possession_message(old.kid, new.kid, vkey))
    return {"kind": KEY_EVENT_KIND,
            "key_event": {"type": "rotate", "old_kid": old.kid, "new_kid": new.kid, "new_verifier_key": vkey,
                          "possession": base64.b64encode(proof).decode()}}


def check_key_event(body: dict, seq: int) -> Verifier:
    """Check the key event in ``body`` (a record already verified under its ``kid``) and return the
    incoming key. Raises :class:`VerificationError` (step ``key_event``) when the event is malformed,
    does not start from the record's own key, names a key whose id does not match, or lacks a valid
    proof of possession by the incoming key."""
    event = body.get("key_event")
    if not isinstance(event, dict) or event.get("type") != "rotate":
        raise VerificationError(f"seq {seq}: malformed key event", seq=seq, step="key_event")
    old_kid, new_kid, vkey, proof = (event.get(k) for k in ("old_kid", "new_kid", "new_verifier_key", "possession"))
    if old_kid != body.get("kid") or not all(isinstance(v, str) for v in (new_kid, vkey, proof)):
        raise VerificationError(f"seq {seq}: key event does not start from the key that signed it",
                                seq=seq, step="key_event")
    try:
        incoming = parse_verifier_key(vkey)
        signature = base64.b64decode(proof, validate=True)
    except (KeyFileError, ValueError) as exc:
        raise VerificationError(f"seq {seq}: key event names an unusable key", seq=seq, step="key_event") from exc
    if incoming.kid != new_kid or new_kid == old_kid:
        raise VerificationError(f"seq {seq}: key event's key id does not match its key", seq=seq, step="key_event")
    if not incoming.verify(signature, _possession_message(old_kid, new_kid, vkey)):
        raise VerificationError(f"seq {seq}: incoming key did not prove possession", seq=seq, step="key_event")
    return incoming


def active_kid(conn: Connection) -> str | None:
    """The key id that must sign the next record per the ``key_event`` table (``None``: no rotation yet)."""
    return conn.execute(select(KeyEventRow.new_kid).order_by(KeyEventRow.seq.desc()).limit(1)).scalar()
