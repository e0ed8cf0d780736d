"""Rollout of model versions: weighted canaries (sticky per request id) and shadow runs.

Canary: a model with ``canary_of: P`` and ``canary_weight: w`` takes the share ``w`` of the
requests whose route names ``P``. The choice is sticky: it depends only on the request id and
``P`` — ``bucket = SHA-256(request_id ‖ 0x00 ‖ P)[:8] / 2^64`` in ``[0, 1)``; canaries own
consecutive slices of ``[0, Σw)`` in policy order, ``P`` keeps the rest. The same request id
therefore always reaches the same version.

Shadow: a model with ``shadow_of: P`` runs on a copy of every *public* request that ``P``
answered, on a background worker (bounded queue; when it is full the shadow run is dropped and
counted, never queued without bound). Its result is written as a separate ``shadow`` ledger
record carrying the primary's request id; it is never returned to the client.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from typing import Any, Callable

from ..policy import ModelSpec, Policy, usd_text
from .base import Backend, Prompt
from .breaker import Breakers
from .router import Candidate, RouteResult, route

__all__ = ["bucket", "choose_version", "route_candidates", "shadow_job", "ShadowRunner"]

log = logging.getLogger("auditinf.rollout")


def bucket(request_id: str, primary: str) -> float:
    """Position of ``request_id`` in ``[0, 1)`` for the route model ``primary`` (see module doc)."""
    digest = hashlib.sha256(request_id.encode() + b"\x00" + primary.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose_version(policy: Policy, spec: ModelSpec, request_id: str) -> tuple[ModelSpec, str | None]:
    """The model that serves route candidate ``spec`` for ``request_id``: ``(spec, None)`` or
    ``(canary, spec.name)`` when the request falls in a canary's slice."""
    canaries = policy.canaries(spec.name)
    if not canaries:
        return spec, None
    point, edge = bucket(request_id, spec.name), 0.0
    for canary in canaries:
        edge += canary.canary_weight
        if point < edge:
            return canary, spec.name
    return spec, None


def route_candidates(policy: Policy, kind: str, data_class: str, request_id: str,
                     backend_of: Callable[[str], Backend]) -> list[Candidate]:
    """The route for (``kind``, ``data_class``) with each model's canary choice applied."""
    candidates = []
    for spec in policy.candidates(kind, data_class):
        chosen, canary_of = choose_version(policy, spec, request_id)
        candidates.append(Candidate(backend_of(chosen.name), chosen, canary_of))
    return candidates


def shadow_job(policy: Policy, primary: RouteResult, data_class: str, prompt: Prompt, risk_level: str, *,
               backend_of: Callable[[str], Backend], breakers: Breakers, append: Callable[[dict], Any],
               link: dict[str, Any]) -> Callable[[], None] | None:
    """The background job running the shadows of the model that answered (public requests only),
    or ``None``. Each shadow run is one ``shadow`` record: ``link`` (request kind, request id,
    client id) + the shadow's model, attempts, output (``None`` when it failed) and cost; its
    cost is ``shadow_cost_usd``, outside the client's budget."""
    shadows = policy.shadows(primary.answered_by) if data_class == "public" and primary.answered_by else []
    if not shadows:
        return None

    def job() -> None:
        for spec in shadows:
            run = route(prompt, candidates=[Candidate(backend_of(spec.name), spec)], data_class="public",
                        policy=policy, risk_level=risk_level, breakers=breakers, fallback=False)
            append({"kind": "shadow", **link, "data_class": "public", "policy": policy.identity(),
                    "shadow_of": primary.answered_by, "model": run.model,
                    "attempts": [a.to_dict() for a in run.attempts],
                    "output": {"explanation": run.answer.content} if run.answer else None,
                    "shadow_cost_usd": usd_text(run.cost_usd)})
    return job


class ShadowRunner:
    """One background worker running shadow jobs from a bounded queue (``max_pending``)."""

    def __init__(self, max_pending: int = 16) -> None:
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0  # shadow runs refused because the queue was full
        self.failed = 0   # shadow jobs that raised (the primary answer is unaffected)

    def submit(self, job: Callable[[], None]) -> bool:
        """Queue ``job``; ``False`` (and ``dropped`` += 1) when the queue is full."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="auditinf-shadow", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(job)
            return True
        except queue.Full:
            self.dropped += 1
            return False

    def drain(self) -> None:
        """Block until every queued job has run (tests, shutdown)."""
        self._queue.join()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is not None:
                    job()
            except Exception as exc:  # noqa: BLE001 - a shadow failure must never reach the client
                self.failed += 1
                log.warning("shadow run failed: %s", type(exc).__name__)
            finally:
                self._queue.task_done()
