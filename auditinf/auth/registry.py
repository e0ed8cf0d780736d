"""The client registry: client id → SHA-256 of its bearer token (never the token), in a JSON file.

File (``AUDITINF_CLIENTS_FILE``, default ``ledger/clients.json``), mode 0600 like the key files::

    {"version": 1,
     "clients": {"wallet-1": {"sha256": "<64 hex: SHA-256 of the token's UTF-8 bytes>",
                              "created_at": "2026-11-30T12:00:00Z",
                              "revoked_at": "2026-12-01T08:00:00Z"}}}     # revoked_at: only once revoked

- Read through the key files' check (:func:`auditinf.ledger.keys.read_secret_file`: missing, or
  readable by group/others → ``key_file_error``), then validated against :data:`SCHEMA` (JSON
  Schema 2020-12, ids follow :data:`~auditinf.auth.identity.CLIENT_ID_PATTERN`) and its one
  invariant, no two clients share a hash (``invalid_client_registry``). Error messages name the
  JSON path and the failed keyword, never a value from the file.
- Tokens (:func:`new_token`): ``ak-`` + 43 base64url characters, 32 bytes from :mod:`secrets`
  (256 bits). ``auditinf clients add`` prints a token once; only its hash is stored.
- :meth:`Registry.authenticate` hashes the presented token and compares the digest with every
  active client's digest by :func:`hmac.compare_digest`, without stopping at a match.
- Revoked clients stay in the file: a registry whose clients are all revoked still requires a
  token, so revoking the last client never turns authentication off.
- Writes (:func:`add_client`, :func:`revoke_client`) hold an exclusive :func:`fcntl.flock` on
  ``<file>.lock`` and write through :func:`~auditinf.ledger.keys.write_secret_file` (a temporary
  0600 file, fsynced, renamed into place, directory fsynced): a reader sees
  the old or the new registry, never a partial one.
- :class:`RegistryFile` (the server's view) re-reads the file when its ``(mtime, ctime, size,
  inode)`` changes, checked on every request: an added or revoked client takes effect on the next
  request, in every worker process. A changed file that fails to load keeps the registry in force
  (logged once per file state), and so does a deleted one: authentication, once on, stays on
  until a restart.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import jsonschema

from ..errors import AuditinfError, ClientRegistryError, InputError, KeyFileError, NotFound
from ..ledger.keys import read_secret_file, write_secret_file
from .identity import CLIENT_ID_PATTERN

__all__ = ["SCHEMA", "TOKEN_PREFIX", "ClientEntry", "Registry", "RegistryFile", "new_token", "token_sha256",
           "parse_registry", "load_registry", "add_client", "revoke_client"]

log = logging.getLogger("auditinf.auth")

TOKEN_PREFIX = "ak-"
_TOKEN_BYTES = 32
_MISSING_HINT = "; create it with `auditinf clients add ID`"

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "clients"],
    "properties": {
        "version": {"const": 1},
        "clients": {
            "type": "object",
            "propertyNames": {"pattern": CLIENT_ID_PATTERN},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["sha256", "created_at"],
                "properties": {
                    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    "created_at": {"type": "string", "minLength": 1, "maxLength": 64},
                    "revoked_at": {"type": "string", "minLength": 1, "maxLength": 64},
                },
            },
        },
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def new_token() -> str:
    """A fresh bearer token: ``ak-`` + base64url of 32 random bytes (:func:`secrets.token_urlsafe`)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def token_sha256(token: str) -> str:
    """SHA-256 of the token's UTF-8 bytes, 64 lowercase hex digits: what the registry stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ClientEntry:
    """One registered client; ``sha256`` is its token's hash (hex), ``revoked_at`` set once revoked."""

    client_id: str
    sha256: str
    created_at: str
    revoked_at: str | None = None

    @property
    def fingerprint(self) -> str:
        """The first 12 hex digits of the token's hash: enough to tell tokens apart, never the token."""
        return self.sha256[:12]

    def to_json(self) -> dict[str, str]:
        """The entry as stored in the file (without its id, which is the member name)."""
        out = {"sha256": self.sha256, "created_at": self.created_at}
        if self.revoked_at is not None:
            out["revoked_at"] = self.revoked_at
        return out

    def summary(self) -> dict[str, str]:
        """What ``auditinf clients list`` shows: id, fingerprint, status and dates."""
        out = {"client_id": self.client_id, "fingerprint": self.fingerprint,
               "status": "revoked" if self.revoked_at else "active", "created_at": self.created_at}
        if self.revoked_at is not None:
            out["revoked_at"] = self.revoked_at
        return out


class Registry:
    """An immutable set of clients. ``enabled``: at least one client (active or revoked) is
    registered, so the API requires a bearer token."""

    def __init__(self, clients: Mapping[str, ClientEntry] | None = None) -> None:
        self.clients: dict[str, ClientEntry] = dict(clients or {})
        self._active = tuple((bytes.fromhex(e.sha256), e.client_id) for e in self.clients.values()
                             if e.revoked_at is None)

    @property
    def enabled(self) -> bool:
        return bool(self.clients)

    def authenticate(self, token: str) -> str | None:
        """The id of the active client whose token is ``token``, else ``None``. The digest of
        ``token`` is compared with every active client's digest (:func:`hmac.compare_digest`),
        whether or not one already matched."""
        presented = hashlib.sha256(token.encode("utf-8")).digest()
        found = None
        for digest, client_id in self._active:
            if hmac.compare_digest(presented, digest):
                found = client_id
        return found

    def to_json(self) -> dict[str, Any]:
        """The file's JSON document."""
        return {"version": 1, "clients": {cid: e.to_json() for cid, e in sorted(self.clients.items())}}


def _json_path(path: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def parse_registry(raw: bytes, source: str = "<clients>") -> Registry:
    """Validate a registry file's bytes (:data:`SCHEMA`, unique hashes) and build the :class:`Registry`.

    Raises :class:`ClientRegistryError` (``invalid_client_registry``) naming ``source``, the JSON
    path and the failed schema keyword; no value from the file is quoted (it could be a token
    pasted into the wrong place)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ClientRegistryError(f"{source}: not valid JSON ({type(exc).__name__})") from exc
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise ClientRegistryError(f"{source}: {_json_path(first.absolute_path)}: fails the schema's "
                                  f"'{first.validator}' rule")
    entries = {cid: ClientEntry(cid, e["sha256"], e["created_at"], e.get("revoked_at"))
               for cid, e in doc["clients"].items()}
    by_hash: dict[str, str] = {}
    for entry in entries.values():
        if entry.sha256 in by_hash:
            raise ClientRegistryError(f"{source}: clients {by_hash[entry.sha256]!r} and {entry.client_id!r} "
                                      "share one token hash")
        by_hash[entry.sha256] = entry.client_id
    return Registry(entries)


def load_registry(path: Path) -> Registry:
    """The registry at ``path``. Raises :class:`KeyFileError` when the file is missing or readable
    by group/others, :class:`ClientRegistryError` when it is not a valid registry."""
    return parse_registry(read_secret_file(path, "client registry", _MISSING_HINT), str(path))


class RegistryFile:
    """The server's registry: loaded from ``path`` at start-up, re-read when the file changes.

    ``required``: the path was configured explicitly, so a missing file is an error
    (:class:`KeyFileError`) rather than "no registry" — a mistyped path must not turn
    authentication off. Start-up raises what :func:`load_registry` raises.
    """

    def __init__(self, path: Path, *, required: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._file_stamp()
        if self._stamp is None and required:
            raise KeyFileError(f"client registry {path} not found{_MISSING_HINT}")
        self._registry = load_registry(path) if self._stamp is not None else Registry()

    def _file_stamp(self) -> tuple[int, int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino

    def current(self) -> Registry:
        """The registry in force: re-read first when the file changed since the last call (one
        ``stat`` per call)."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._reload(stamp)
        return self._registry

    def _reload(self, stamp: tuple[int, int, int, int] | None) -> None:
        self._stamp = stamp  # one attempt (and at most one log line) per file state
        kept = len(self._registry.clients)
        if stamp is None:
            if self._registry.enabled:
                log.error("client registry removed; keeping its clients until restart",
                          extra={"fields": {"path": str(self.path), "clients": kept}})
            return
        try:
            registry = load_registry(self.path)
        except AuditinfError as exc:
            log.error("client registry not reloaded; the previous one stays in force",
                      extra={"fields": {"path": str(self.path), "error_code": exc.code, "error": exc.message,
                                        "clients": kept}})
            return
        if self._registry.enabled and not registry.enabled:
            log.error("client registry emptied; keeping its clients until restart",
                      extra={"fields": {"path": str(self.path), "clients": kept}})
            return
        self._registry = registry
        log.info("client registry reloaded", extra={"fields": {"path": str(self.path),
                                                               "clients": len(registry.clients)}})


@contextmanager
def _editing(path: Path) -> Iterator[dict[str, ClientEntry]]:
    """The registry's clients, to change in place; written back (atomically) when the block ends
    without an error. Holds ``<file>.lock`` (flock) throughout."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        clients = load_registry(path).clients if path.exists() else {}
        yield clients
        data = (json.dumps(Registry(clients).to_json(), indent=2) + "\n").encode()
        write_secret_file(path, data, replace=True)
    finally:
        os.close(lock_fd)  # releases the flock


def add_client(path: Path, client_id: str, *, replace: bool = False) -> str:
    """Register ``client_id`` with a new token and return the token (the file keeps its hash only).

    ``replace``: issue a new token for an existing (or revoked) id; the old token stops working.
    Raises :class:`InputError` ``invalid_request`` for an id outside the pattern, ``client_exists``
    when the id is registered and ``replace`` is false; what :func:`load_registry` raises."""
    if not re.fullmatch(CLIENT_ID_PATTERN, client_id):
        raise InputError("a client id is 1-64 characters of A-Z a-z 0-9 . _ : -", field="client_id")
    token = new_token()
    with _editing(path) as clients:
        if client_id in clients and not replace:
            state = "revoked" if clients[client_id].revoked_at else "registered"
            raise InputError(f"client {client_id!r} is already {state}; --replace issues a new token",
                             code="client_exists", field="client_id")
        clients[client_id] = ClientEntry(client_id, token_sha256(token), _now())
    return token


def revoke_client(path: Path, client_id: str) -> ClientEntry:
    """Revoke ``client_id``'s token (kept in the file with ``revoked_at``; revoking twice keeps
    the first date) and return its entry. Raises :class:`NotFound` ``client_not_found``."""
    with _editing(path) as clients:
        entry = clients.get(client_id)
        if entry is None:
            raise NotFound(f"no client {client_id!r} in {path}", code="client_not_found", field="client_id")
        if entry.revoked_at is None:
            entry = clients[client_id] = ClientEntry(client_id, entry.sha256, entry.created_at, _now())
    return entry
