"""Hot reload of the service's policy: on SIGHUP and when the file changes (polled).

A reload reads the file the current policy came from. Same bytes (same sha256): nothing
happens. Otherwise the new bytes are validated like at start-up, and

- valid: a ``policy_change`` record ``{outcome: "applied", old, new}`` (policy identities:
  id, version, sha256, prices_sha256) is committed, then the service switches to the new policy
  (requests already routing finish under the old one); circuit breakers keep their state;
- invalid or unreadable: the old policy stays in force and a ``policy_change`` record
  ``{outcome: "refused", old, attempted_sha256, error}`` is committed — once per distinct
  refused file content, not once per poll. ``error`` names the file and the JSON path.

The poll compares the file's ``(mtime_ns, size, inode)`` every ``poll_s`` seconds and reads it
only when they change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import PolicyError
from .loader import parse_policy

if TYPE_CHECKING:  # pragma: no cover
    from ..service import Service

__all__ = ["PolicyReloader"]

log = logging.getLogger("auditinf.policy")


class PolicyReloader:
    """Reloads ``service.policy`` from ``path`` (default: the file it was loaded from)."""

    def __init__(self, service: "Service", path: str | Path | None = None, poll_s: float = 2.0) -> None:
        self.service = service
        self.path = Path(path or service.policy.path)
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamp = self._file_stamp()
        self._refused_sha: str | None = None

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def reload(self, trigger: str = "manual") -> bool:
        """Reload now; ``trigger`` (``sighup`` | ``file_change`` | ``manual``) goes into the record.

        Returns ``True`` when a new policy was applied. Raises :class:`LedgerError` if the
        ``policy_change`` record cannot be committed (the old policy then stays in force)."""
        with self._lock:
            old = self.service.policy
            try:
                raw = self.path.read_bytes()
            except OSError as exc:
                return self._refuse(old, trigger, None, f"{self.path}: cannot read policy: {exc.strerror}")
            sha = hashlib.sha256(raw).hexdigest()
            if sha == old.sha256:
                self._refused_sha = None
                return False
            try:
                new = parse_policy(raw, str(self.path))
            except PolicyError as exc:
                return self._refuse(old, trigger, sha, exc.message)
            self.service.ledger.append({"kind": "policy_change", "trigger": trigger, "outcome": "applied",
                                       "old": old.identity(), "new": new.identity()})
            self.service.policy = new
            self._refused_sha = None
            log.info("policy reloaded: %s → %s", old.sha256[:12], new.sha256[:12])
            return True

    def _refuse(self, old, trigger: str, sha: str | None, error: str) -> bool:
        if sha is None or sha != self._refused_sha:
            self.service.ledger.append({"kind": "policy_change", "trigger": trigger, "outcome": "refused",
                                        "old": old.identity(), "attempted_sha256": sha, "error": error})
            self._refused_sha = sha
            log.warning("policy reload refused; keeping %s: %s", old.sha256[:12], error)
        return False

    def poll_once(self) -> bool:
        """Reload if the file's stamp changed since the last look."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return self.reload("file_change")

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - keep polling; the old policy stays in force
                log.error("policy reload failed: %s", type(exc).__name__)

    def _on_sighup(self, _signum, _frame) -> None:
        # The handler may interrupt a thread holding our lock: reload on another thread.
        threading.Thread(target=self._reload_logged, args=("sighup",), name="auditinf-policy-sighup",
                         daemon=True).start()

    def _reload_logged(self, trigger: str) -> None:
        try:
            self.reload(trigger)
        except Exception as exc:  # noqa: BLE001
            log.error("policy reload failed: %s", type(exc).__name__)

    def start(self) -> None:
        """Install the SIGHUP handler (main thread only) and start the file poll (``poll_s > 0``)."""
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGHUP, self._on_sighup)
        if self.poll_s > 0 and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="auditinf-policy-poll", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the poll (the SIGHUP handler stays; a later reload is harmless)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
