"""Reusable daemon threads for blocking calls a caller may abandon at a deadline.

The hosted backend runs each model call on a worker so that the caller can stop waiting at the
attempt's deadline (:func:`call_within`). Starting a thread per call cost a few hundred µs to
several ms under load (the new thread must get the GIL before ``start()`` returns); a
:class:`WorkerPool` hands the call to a waiting worker instead (~15 µs).

The pool is elastic: a call never waits for a worker (an abandoned call may keep its worker busy
until its connection gives up, so a fixed-size pool could starve later calls into false
timeouts). When no worker is idle a new one starts; a worker idle for ``idle_s`` seconds exits.
Workers are daemon threads, like the thread-per-call they replace: an abandoned call never holds
up the process's exit.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

__all__ = ["WorkerPool", "call_within"]


class WorkerPool:
    """Daemon worker threads named ``name``; see the module docstring."""

    def __init__(self, name: str, idle_s: float = 60.0) -> None:
        self.name = name
        self.idle_s = idle_s
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unclaimed = 0  # idle workers that no queued job is meant for
        self._workers = 0

    @property
    def workers(self) -> int:
        """Worker threads alive now (busy or idle)."""
        with self._lock:
            return self._workers

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job()`` on an idle worker, or on a new one when none is idle. ``job`` must not
        raise (an exception it lets through is dropped)."""
        with self._lock:
            spawn = self._unclaimed == 0
            if spawn:
                self._workers += 1
            else:
                self._unclaimed -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name=self.name, daemon=True).start()

    def _work(self) -> None:
        job: Callable[[], None] | None = self._jobs.get()
        while job is not None:
            try:
                job()
            except BaseException:  # noqa: BLE001 - a job's failure must not kill the worker
                pass
            with self._lock:
                self._unclaimed += 1
            job = self._next()

    def _next(self) -> Callable[[], None] | None:
        """The next job, or ``None`` (this worker exits) after ``idle_s`` idle seconds.

        Invariant: workers waiting here = unclaimed + queued jobs. A worker whose wait timed out
        while every idle worker is claimed has a job on its way: it waits again."""
        while True:
            try:
                return self._jobs.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._unclaimed > 0:
                        self._unclaimed -= 1
                        self._workers -= 1
                        return None


def call_within(pool: WorkerPool, timeout_s: float, call: Callable[[], Any]) -> tuple[bool, Any, BaseException | None]:
    """Run ``call()`` on ``pool`` and wait at most ``timeout_s`` seconds.

    Returns ``(finished, value, error)``: ``finished`` is ``False`` when the deadline passed first
    (the call goes on running on its worker; the caller must make it fail soon, e.g. by closing its
    connection, and must ignore its outcome); otherwise ``error`` is what ``call`` raised, or
    ``None`` and ``value`` its result.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    pool.submit(run)
    if not done.wait(timeout_s):
        return False, None, None
    return True, box.get("value"), box.get("error")
