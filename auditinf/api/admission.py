"""Admission control: refuse a model request before any work when the local model's queue is full.

A request of kind ``k`` is admitted unless a local model that a route of ``k`` names has every
waiting slot taken (:meth:`~auditinf.inference.local.LocalWorker.full`); then it is refused with
503 ``queue_full`` and ``Retry-After`` (the queue's expected drain time, ≥ 1 s): no analysis, no
record, no model call. The data class is not known before the body is analysed, so both routes of
the kind count — the local queue is the host's shared capacity.
"""

from __future__ import annotations

from ..errors import Overloaded
from ..obs.metrics import Metrics
from ..service import Service

__all__ = ["admit"]


def admit(service: Service, kind: str, metrics: Metrics | None = None) -> None:
    """Raise :class:`~auditinf.errors.Overloaded` (503 ``queue_full``) when a local model that
    ``kind`` may need has a full queue; return otherwise."""
    policy = service.policy
    names = {n for ns in policy.routes.get(kind, {}).values() for n in ns if policy.models[n].backend == "local"}
    for name in sorted(names):
        worker = getattr(service.backend(name), "worker", None)  # None: no file, or a test double
        if worker is not None and worker.full():
            if metrics is not None:
                metrics.queue_rejections.inc()
            raise Overloaded(f"local model {name!r} has {worker.depth} requests queued or running; retry later",
                             retry_after_s=worker.retry_after_s())
