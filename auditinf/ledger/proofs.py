"""Self-contained proof files: one record, its inclusion proof, and the signed checkpoint it leads to.

Format ``auditinf-proof/v1`` (JSON)::

    {"format": "auditinf-proof/v1",
     "record": {"seq", "leaf_hash", "kid", "signature", "body"},   # body: the exact RFC 8785 text
     "inclusion": {"leaf_index", "tree_size", "path": [hex, ...]},  # RFC 6962 §2.1.1 audit path
     "checkpoint": "<C2SP signed note>"}

:func:`verify_proof` needs only the file and the log's verifier key(s): the record body is RFC 8785
canonical, its leaf hash is SHA-256(0x00 ‖ body), the path leads from that leaf to the checkpoint's
root (RFC 9162 §2.1.3.2), the checkpoint is signed by a given key, and — when its key is given —
the record's own Ed25519 signature verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from ..errors import InputError, VerificationError
from .audit import checkpoint_size
from .keys import Verifier
from .merkle import verify_inclusion
from .note import NoteError, NoteVerifier, open_checkpoint
from .verify import is_canonical

__all__ = ["PROOF_FORMAT", "build_proof", "verify_proof"]

PROOF_FORMAT = "auditinf-proof/v1"


def build_proof(ledger, seq: int) -> dict[str, Any]:  # noqa: ANN001 - Ledger
    """The proof document for record ``seq`` against the latest checkpoint covering it (one is
    signed when none covers it yet, which needs the ledger's signer). Raises ``NotFound``."""
    row = ledger.get(seq)
    checkpoint, path = ledger.covering_checkpoint(seq)
    return {"format": PROOF_FORMAT,
            "record": {"seq": row.seq, "leaf_hash": row.leaf_hash, "kid": row.kid, "signature": row.signature,
                       "body": bytes(row.body).decode("utf-8")},
            "inclusion": {"leaf_index": seq, "tree_size": checkpoint.size, "path": [p.hex() for p in path]},
            "checkpoint": checkpoint.note}


def _field(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            raise InputError(f"proof file lacks {'.'.join(keys)}", code="invalid_proof")
        doc = doc[key]
    return doc


def verify_proof(doc: Any, keys: list[Verifier]) -> dict[str, Any]:
    """Check a proof document with the log's verifier ``keys``; returns ``{seq, tree_size, root_hash,
    record_signature: "verified" | "key not given"}``. Raises :class:`InputError` (``invalid_proof``)
    for a malformed file and :class:`VerificationError` for a proof that does not hold."""
    if _field(doc, "format") != PROOF_FORMAT:
        raise InputError(f"not an {PROOF_FORMAT} file", code="invalid_proof")
    record, note = _field(doc, "record"), _field(doc, "checkpoint")
    seq, index, size = _field(record, "seq"), _field(doc, "inclusion", "leaf_index"), _field(doc, "inclusion", "tree_size")
    body, path_hex = _field(record, "body"), _field(doc, "inclusion", "path")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, index, size)) \
            or not isinstance(body, str) or not isinstance(note, str) or not isinstance(path_hex, list):
        raise InputError("proof file fields have the wrong types", code="invalid_proof")
    try:
        path = [bytes.fromhex(p) for p in path_hex]
    except (TypeError, ValueError) as exc:
        raise InputError("inclusion path is not hex", code="invalid_proof") from exc
    raw = body.encode("utf-8", "surrogatepass")
    # 1. the body is the canonical record and the leaf hash is its RFC 6962 leaf hash
    if not is_canonical(raw):
        raise VerificationError(f"seq {seq}: body is not RFC 8785 canonical JSON", seq=seq, step="canonical_json")
    leaf = hashlib.sha256(b"\x00" + raw).digest()
    if record.get("leaf_hash") != leaf.hex() or json.loads(raw).get("seq") != seq or index != seq:
        raise VerificationError(f"seq {seq}: leaf hash or seq does not match the body", seq=seq, step="leaf_hash")
    # 2. the checkpoint is signed by a given key
    if checkpoint_size(note) != size:
        raise VerificationError("inclusion tree size differs from the checkpoint's", seq=seq, step="checkpoint")
    origins = {k.name for k in keys}
    notes = [NoteVerifier.from_log_key(k) for k in keys]
    checkpoint = None
    for origin in origins:
        try:
            checkpoint, _ = open_checkpoint(note.encode(), origin, notes)
            break
        except NoteError as exc:
            error = exc
    if checkpoint is None:
        raise VerificationError(f"checkpoint: {error.message}", seq=seq, step="checkpoint_signature")
    # 3. the audit path leads from the leaf to the signed root (RFC 9162 §2.1.3.2)
    verify_inclusion(index, checkpoint.size, leaf, path, checkpoint.root)
    # 4. the record's own signature, when its key was given
    status = "key not given"
    by_kid = {k.kid: k for k in keys}
    if record.get("kid") in by_kid:
        try:
            signature = base64.b64decode(record.get("signature") or "", validate=True)
        except (ValueError, binascii.Error) as exc:
            raise VerificationError(f"seq {seq}: signature is not base64", seq=seq, step="signature") from exc
        if not by_kid[record["kid"]].verify(signature, raw):
            raise VerificationError(f"seq {seq}: Ed25519 signature does not verify", seq=seq, step="signature")
        status = "verified"
    return {"seq": seq, "tree_size": checkpoint.size, "root_hash": checkpoint.root.hex(), "record_signature": status}
