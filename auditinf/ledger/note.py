"""C2SP signed notes and tlog-checkpoints: the signed tree heads auditors keep.

Formats (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint, as implemented by
golang.org/x/mod/sumdb/note):

- A **note** is UTF-8 text with no ASCII control character except ``"\\n"``, ending in ``"\\n"``;
  then one blank line; then one or more signature lines ``"— <name> <base64(key id ‖ signature)>\\n"``
  (U+2014 EM DASH, a space). The split is at the *last* blank line.
- Verifiers ignore signatures from keys they do not know (witness cosignatures, rotated keys) and
  line order carries no meaning; a known key with a bad signature makes the note invalid; at least
  one known key must have signed.
- A **checkpoint** note's text is the origin line (the log's identity, compared byte for byte), the
  tree size in decimal, the base64 RFC 6962 root hash, then optional non-empty extension lines.
- Signature types: 0x01 Ed25519 over the note text (the log's own key); 0x04 tlog-cosignature/v1,
  an 8-byte big-endian timestamp ‖ Ed25519 signature over ``"cosignature/v1\\ntime <t>\\n" ‖ text``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import InputError
from .keys import Signer, Verifier

__all__ = ["Checkpoint", "NoteError", "NoteVerifier", "cosigner", "open_checkpoint", "open_note",
           "sign_checkpoint", "sign_note"]

_DASH = "\u2014 "
_MAX_SIGNATURES = 100
_SIZE = re.compile(r"^(0|[1-9][0-9]{0,18})$")
_ED25519, _COSIGNATURE = 0x01, 0x04


class NoteError(InputError):
    """A note or checkpoint that is malformed, unsigned by a trusted key, or for another log (HTTP 422)."""

    code = "invalid_checkpoint"


@dataclass(frozen=True)
class NoteVerifier:
    """A key that may have signed a note: its name, 4-byte key id and signature type."""

    name: str
    key_hash: bytes
    public_key: Ed25519PublicKey
    sig_type: int = _ED25519

    @classmethod
    def from_log_key(cls, verifier: Verifier) -> "NoteVerifier":
        return cls(verifier.name, bytes.fromhex(verifier.kid), verifier.public_key, _ED25519)

    def verify(self, text: bytes, sig: bytes) -> bool:
        if self.sig_type == _COSIGNATURE:
            if len(sig) != 72:
                return False
            timestamp = int.from_bytes(sig[:8], "big")
            text = b"cosignature/v1\ntime %d\n" % timestamp + text
            sig = sig[8:]
        elif len(sig) != 64:
            return False
        try:
            self.public_key.verify(sig, text)
        except InvalidSignature:
            return False
        return True


def cosigner(vkey: str) -> NoteVerifier:
    """Parse a witness verifier key ``name+hexkid+base64(0x04 ‖ pubkey)`` (tlog-cosignature/v1)."""
    try:
        name, kid, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise NoteError("witness key must be name+keyid+base64") from exc
    if len(raw) != 33 or raw[0] != _COSIGNATURE:
        raise NoteError("witness key is not a tlog-cosignature/v1 Ed25519 key")
    if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() != kid:
        raise NoteError("witness key id does not match its name and public key")
    return NoteVerifier(name, bytes.fromhex(kid), Ed25519PublicKey.from_public_bytes(raw[1:]), _COSIGNATURE)


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)


def sign_note(text: str, signer: Signer) -> str:
    """Sign ``text`` (must end in ``"\\n"``) with the log key; returns the full note."""
    if not text.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("note text must end in a newline and hold no control characters")
    sig = bytes.fromhex(signer.kid) + signer.sign(text.encode())
    return f"{text}\n{_DASH}{signer.verifier.name} {base64.b64encode(sig).decode()}\n"


@dataclass(frozen=True)
class OpenedNote:
    text: str
    verified_by: tuple[str, ...]


def open_note(raw: bytes, verifiers: list[NoteVerifier]) -> OpenedNote:
    """Parse ``raw`` strictly and verify it; returns the text and the names that verified.

    Raises :class:`NoteError` on: invalid UTF-8, a control character other than newline, a missing
    final newline, an empty or malformed signature block, a bad signature from a known key, or no
    signature from any known key.
    """
    try:
        message = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("note is not valid UTF-8") from exc
    if any(ord(ch) < 0x20 and ch != "\n" for ch in message) or "\x7f" in message:
        raise NoteError("note holds a control character")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    text, block = message[:split + 1], message[split + 2:]
    if not block or not block.endswith("\n"):
        raise NoteError("signature block must be non-empty and end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError("too many signatures")
    known = {(v.name, v.key_hash): v for v in verifiers}
    verified: list[str] = []
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError("malformed signature line")
        name, _, b64 = line[len(_DASH):].partition(" ")
        try:
            sig = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error) as exc:
            raise NoteError("signature is not base64") from exc
        if not _valid_name(name) or len(sig) < 5:
            raise NoteError("malformed signature line")
        verifier = known.get((name, sig[:4]))
        if verifier is None:
            continue  # unknown key: ignored (witnesses, rotated keys)
        if not verifier.verify(text.encode(), sig[4:]):
            raise NoteError(f"invalid signature by {name}")
        if name not in verified:
            verified.append(name)
    if not verified:
        raise NoteError("no signature from a trusted key")
    return OpenedNote(text, tuple(verified))


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint: origin, tree size (records), RFC 6962 root hash (32 bytes)."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note for ``checkpoint``; the origin must be the signer's key name."""
    if checkpoint.origin != signer.verifier.name:
        raise NoteError("checkpoint origin must be the log key's name")
    return sign_note(checkpoint.text(), signer)


def open_checkpoint(raw: bytes, origin: str, verifiers: list[NoteVerifier]) -> tuple[Checkpoint, OpenedNote]:
    """Open a signed checkpoint note for the log ``origin`` (compared byte for byte).

    Raises :class:`NoteError` for any note error (see :func:`open_note`), an origin mismatch, a
    tree size that is not a canonical decimal, or a root that is not base64 of 32 bytes.
    """
    note = open_note(raw, verifiers)
    lines = note.text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, size and root lines")
    if lines[0] != origin:
        raise NoteError(f"checkpoint origin {lines[0]!r} is not this log's {origin!r}")
    if not _SIZE.match(lines[1]) or int(lines[1]) > 2**63 - 1:
        raise NoteError("checkpoint tree size is not a canonical decimal")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise NoteError("checkpoint root is not base64") from exc
    if len(root) != 32 or any(not line for line in lines[3:]):
        raise NoteError("checkpoint root must be 32 bytes; extension lines non-empty")
    return Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:])), note
