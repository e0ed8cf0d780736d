"""The key-encryption key (KEK) that wraps every per-client data key of the vault, and its files.

- File: 32 random bytes (AES-256), mode 0600, beside the signing key (``data.kek`` by default).
  Loading refuses a missing-but-expected, short or group/world-readable file, like the signing key.
- Key id: the first 8 hex digits of SHA-256("auditinf/kek/v1" ‖ 0x00 ‖ key), stored with each wrapped
  data key so that a wrong KEK is reported as such, never as corrupt data.
- During a rotation (:mod:`.kek_rotation`) the successor lives in ``<file>.next`` until the
  database has committed to it; :class:`KekFiles` finds a KEK by id in either file, and
  serialises rotations and their recovery with an advisory lock on ``<file>.lock``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import KeyFileError
from .keys import fsync_dir, read_secret_file, write_secret_file

__all__ = ["Kek", "KekFiles", "new_kek", "load_kek", "load_or_create_kek"]

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


def new_kek() -> Kek:
    """A fresh random 256-bit KEK (in memory; see :func:`~.keys.write_secret_file`)."""
    return _kek(os.urandom(_KEK_BYTES))


def load_kek(path: Path) -> Kek:
    """Load the KEK at ``path``; raises :class:`KeyFileError` when missing, readable by others or not 32 bytes."""
    key = read_secret_file(path, "key-encryption key")
    if len(key) != _KEK_BYTES:
        raise KeyFileError(f"key-encryption key {path} must hold exactly {_KEK_BYTES} bytes")
    return _kek(key)


def load_or_create_kek(path: Path) -> Kek:
    """Load the KEK at ``path``, creating it (32 random bytes, mode 0600) when absent (see
    :func:`~.keys.write_secret_file`: a concurrent reader never sees a partial file)."""
    if not path.exists():
        write_secret_file(path, new_kek().key, replace=False)
    return load_kek(path)


class KekFiles:
    """The KEK file ``path`` (current) and ``<path>.next`` (a rotation's successor, transient)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pending = path.with_name(path.name + ".next")

    def find(self, kek_id: str) -> Kek:
        """The KEK with id ``kek_id`` from the current or the pending file (the current one is read
        again last: a rotation may rename the pending file over it meanwhile). Raises
        :class:`KeyFileError` when neither holds it — it was rotated away, or the file is wrong."""
        for candidate in (self.path, self.pending, self.path):
            if candidate.exists():
                try:
                    kek = load_kek(candidate)
                except KeyFileError:
                    if candidate is self.pending:
                        continue  # a half-written successor is not the caller's problem
                    raise
                if kek.kek_id == kek_id:
                    return kek
        raise KeyFileError(f"key-encryption key {kek_id} is not at {self.path}: it was rotated away "
                           f"(destroyed), or this is not the vault's KEK file")

    def pending_kek(self) -> Kek | None:
        """The successor KEK of an unfinished rotation, or ``None``."""
        return load_kek(self.pending) if self.pending.exists() else None

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive advisory lock (``flock``) on ``<path>.lock``: one rotation or recovery at a time."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def install_pending(self) -> None:
        """Make the pending KEK the current one and destroy the old KEK file: its bytes are
        overwritten with zeros and fsynced (best effort: copy-on-write and journaling filesystems
        and SSD wear levelling may keep the old blocks), then the pending file is renamed over it
        and the directory fsynced. Idempotent once the rename happened."""
        if not self.pending.exists():
            return
        try:
            with open(self.path, "r+b") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(0)
                f.write(b"\x00" * size)
                f.flush()
                os.fsync(f.fileno())
        except FileNotFoundError:
            pass
        os.replace(self.pending, self.path)
        fsync_dir(self.path.parent)

    def discard_pending(self) -> None:
        """Delete the pending KEK (a rotation the database never committed to) and the temporary
        files a crash while writing it may have left."""
        strays = list(self.path.parent.glob(f".{self.pending.name}.*.tmp"))
        if self.pending.exists() or strays:
            self.pending.unlink(missing_ok=True)
            for stray in strays:
                stray.unlink(missing_ok=True)
            fsync_dir(self.path.parent)
