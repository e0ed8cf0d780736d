"""Group commit: one writer thread per ledger turns concurrent requests into batched transactions.

Callers :meth:`Sequencer.submit` a job and block. The writer takes the first waiting job, then
every job queued behind it (up to ``max_batch``), and hands the batch to ``commit`` — one database
transaction, so one fsync for the whole batch. A caller is answered only after ``commit``
returned, i.e. after its transaction committed. If ``commit`` raises, *every* job of the batch
fails with :class:`~auditinf.errors.LedgerError` (the transaction rolled back: no partial record,
no gap); a job whose result is an exception (refused before the transaction) fails alone. There is no waiting for a batch to fill: under no load a job commits alone, under load
the batch is whatever queued during the previous commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Sequence

from ..errors import LedgerError

__all__ = ["Job", "Sequencer"]

log = logging.getLogger("auditinf.ledger")


class Job:
    """One request to the writer: ``kind`` (``append``, ``checkpoint``) and its payload. The caller
    waits on a plain lock the writer releases once the outcome is set — lighter than a Future,
    which matters when hundreds of callers wake after each batch."""

    __slots__ = ("kind", "payload", "result", "error", "_done")

    def __init__(self, kind: str, payload: Any = None) -> None:
        self.kind, self.payload, self.result, self.error = kind, payload, None, None
        self._done = threading.Lock()
        self._done.acquire()

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self._done.release()

    def wait(self) -> Any:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.result


_STOP = Job("stop")


class Sequencer:
    """A single writer thread calling ``commit(batch) -> results`` (one result per job, in order)."""

    def __init__(self, commit: Callable[[Sequence[Job]], Sequence[Any]], *, max_batch: int = 1000,
                 name: str = "auditinf-ledger-writer") -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, kind: str, payload: Any = None) -> Any:
        """Queue a job and wait for its result; raises what ``commit`` raised, as ``LedgerError``."""
        job = Job(kind, payload)
        with self._close_lock:
            if self._closed:
                raise LedgerError("ledger is closed", code="ledger_closed")
            self._queue.put(job)
        return job.wait()

    def close(self) -> None:
        """Finish every queued job, then stop the writer (idempotent)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            if batch[0] is _STOP:
                return
            while len(batch) < self._max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                batch.append(job)
            self._run_batch(batch)

    def _run_batch(self, batch: list[Job]) -> None:
        try:
            results = self._commit(batch)
        except LedgerError as exc:
            for job in batch:
                job.finish(error=exc)
        except Exception as exc:  # never let the writer die: the batch fails, the next one may succeed
            log.error("ledger batch of %d failed: %s", len(batch), type(exc).__name__)
            error = LedgerError(f"audit records could not be committed: {type(exc).__name__}")
            error.__cause__ = exc
            for job in batch:
                job.finish(error=error)
        else:
            for job, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    job.finish(error=result)
                else:
                    job.finish(result)
