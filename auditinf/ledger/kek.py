"""The key-encryption key (KEK) that wraps every per-client data key of the vault.

- File: 32 random bytes (AES-256), mode 0600, beside the signing key (``data.kek`` by default).
  Loading refuses a missing-but-expected, short or group/world-readable file, like the signing key.
- Key id: the first 8 hex digits of SHA-256("auditinf/kek/v1" ‖ 0x00 ‖ key), stored with each wrapped
  data key so that a wrong KEK is reported as such, never as corrupt data.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import KeyFileError
from .keys import read_secret_file

__all__ = ["Kek", "load_kek", "load_or_create_kek"]

_KEK_BYTES = 32


@dataclass(frozen=True, repr=False)
class Kek:
    """A 256-bit AES key-encryption key and its key id (8 hex digits)."""

    key: bytes
    kek_id: str

    def __repr__(self) -> str:  # never print key material
        return f"Kek(kek_id={self.kek_id!r})"


def _kek(key: bytes) -> Kek:
    return Kek(key, hashlib.sha256(b"auditinf/kek/v1\x00" + key).hexdigest()[:8])


def load_kek(path: Path) -> Kek:
    """Load the KEK at ``path``; raises :class:`KeyFileError` when missing, readable by others or not 32 bytes."""
    key = read_secret_file(path, "key-encryption key")
    if len(key) != _KEK_BYTES:
        raise KeyFileError(f"key-encryption key {path} must hold exactly {_KEK_BYTES} bytes")
    return _kek(key)


def load_or_create_kek(path: Path) -> Kek:
    """Load the KEK at ``path``, creating it (32 random bytes, mode 0600) when absent.

    The new key is written and fsynced under a temporary name, then hard-linked into place, so a
    concurrent reader never sees a partial file and two creators cannot both win.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(_KEK_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another process created it first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    return load_kek(path)
