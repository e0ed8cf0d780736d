"""Ed25519 signing keys, key ids and verifier keys (C2SP signed-note conventions).

- Private key file: PKCS#8 PEM, mode 0600. Loading refuses a file readable by group or others.
- Key id (``kid``): the C2SP signed-note key id, SHA-256(name ‖ "\\n" ‖ 0x01 ‖ public key)[:4],
  shown as 8 hex digits; 0x01 is the Ed25519 signature type.
- Verifier key (what auditors get, ``signing.pub``): ``<name>+<hex key id>+<base64(0x01 ‖ public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import KeyFileError

__all__ = ["Signer", "Verifier", "generate_key", "new_signer", "write_signer", "load_signer", "parse_verifier_key",
           "read_secret_file", "write_secret_file", "fsync_dir"]

_ED25519 = b"\x01"


def _key_id(name: str, public: bytes) -> str:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public).digest()[:4].hex()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A public key with its name and key id."""

    name: str
    kid: str
    public_key: Ed25519PublicKey

    @property
    def verifier_key(self) -> str:
        raw = _raw_public(self.public_key)
        return f"{self.name}+{self.kid}+{base64.b64encode(_ED25519 + raw).decode()}"

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey
    verifier: Verifier

    @property
    def kid(self) -> str:
        return self.verifier.kid

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message`` (RFC 8032)."""
        return self.private_key.sign(message)


def _signer(private: Ed25519PrivateKey, name: str) -> Signer:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise KeyFileError(f"key name {name!r} must be non-empty, without '+' or whitespace (C2SP signed-note)")
    public = private.public_key()
    return Signer(private, Verifier(name, _key_id(name, _raw_public(public)), public))


def new_signer(name: str) -> Signer:
    """A fresh Ed25519 key named ``name`` (kept in memory; see :func:`write_signer`)."""
    return _signer(Ed25519PrivateKey.generate(), name)


def write_signer(path: Path, signer: Signer, *, overwrite: bool = False) -> None:
    """Write ``signer``'s private key to ``path`` (PKCS#8 PEM, mode 0600, fsynced). Raises
    :class:`KeyFileError` if ``path`` exists and ``overwrite`` is false."""
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} exists; refusing to overwrite a signing key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = signer.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o600)


def generate_key(path: Path, name: str, *, overwrite: bool = False) -> Signer:
    """Create a new Ed25519 key at ``path`` (mode 0600) and its verifier key beside it (``.pub``).

    Raises :class:`KeyFileError` if ``path`` exists and ``overwrite`` is false.
    """
    signer = new_signer(name)
    write_signer(path, signer, overwrite=overwrite)
    path.with_suffix(".pub").write_text(signer.verifier.verifier_key + "\n")
    return signer


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that a rename or unlink inside it is durable (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_secret_file(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write ``data`` (a key, a registry) to ``path`` atomically: a temporary file (mode 0600) is written and fsynced,
    then renamed into place (``replace``) or hard-linked (never replacing: two creators cannot
    both win), then the directory is fsynced. Returns whether ``path`` now holds ``data``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
            written = True
        else:
            try:
                os.link(tmp, path)
                written = True
            except FileExistsError:
                written = False  # another process created it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return written


def read_secret_file(path: Path, what: str, missing_hint: str = "") -> bytes:
    """The bytes of a key file (``what`` names it in errors); raises :class:`KeyFileError` when it is
    missing or readable by group or others (it must be mode 0600 or stricter)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyFileError(f"{what} {path} not found{missing_hint}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{what} {path} is readable by other users (mode {oct(mode & 0o777)}); "
                           f"run `chmod 600 {path}`")
    return path.read_bytes()


def load_signer(path: Path, name: str) -> Signer:
    """Load the signing key at ``path``; refuses a missing, group/world-readable or malformed file."""
    try:
        private = serialization.load_pem_private_key(
            read_secret_file(path, "signing key", "; create one with `auditinf keygen`"), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"signing key {path} is not an unencrypted PKCS#8 PEM key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyFileError(f"signing key {path} is not an Ed25519 key")
    return _signer(private, name)


def parse_verifier_key(text: str) -> Verifier:
    """Parse ``name+hexkid+base64(0x01‖pubkey)``; checks that the key id matches the key."""
    try:
        name, kid, b64 = text.strip().split("+", 2)  # the name has no "+"; base64 may
        raw = base64.b64decode(b64, validate=True)
    except ValueError as exc:
        raise KeyFileError("verifier key must be name+keyid+base64") from exc
    if len(raw) != 33 or raw[:1] != _ED25519:
        raise KeyFileError("verifier key is not an Ed25519 key")
    if _key_id(name, raw[1:]) != kid:
        raise KeyFileError("verifier key id does not match its name and public key")
    return Verifier(name, kid, Ed25519PublicKey.from_public_bytes(raw[1:]))
