"""Liveness, readiness and metrics endpoints.

- ``GET /healthz`` — 200 ``{"status": "ok"}`` while the process serves HTTP (answered on the
  event loop, even when every worker thread is busy).
- ``GET /readyz`` — 200 ``{"status": "ready", "checks": {…}}`` when the policy is loaded, the
  ledger accepts a write transaction and every local model the policy routes to is loaded;
  otherwise 503 ``{"status": "not_ready", "checks": {…}}`` naming what is not (e.g.
  ``"local-gguf": "loading"``), as llama.cpp's server answers ``/health`` while loading. Both
  also say how clients are identified: ``"client_auth": "token"`` (a client registry is in force)
  or ``"declared"`` with ``"warnings": ["client authentication is off: …"]`` (:mod:`.auth`); the
  latter does not make the service unready.
- ``GET /metrics`` — Prometheus text format (see :mod:`auditinf.obs.metrics`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from ..inference.local import LocalBackend
from ..ledger import Ledger
from ..ledger.store import RecordRow
from ..obs.metrics import CONTENT_TYPE
from ..service import Service
from .auth import auth_status

__all__ = ["router", "local_backends", "ledger_problem"]

router = APIRouter()


def local_backends(service: Service) -> list[tuple[str, LocalBackend]]:
    """``(policy model name, backend)`` for every local model some route of the policy names."""
    policy = service.policy
    names = sorted({n for route in policy.routes.values() for ns in route.values() for n in ns
                    if policy.models[n].backend == "local"})
    return [(name, service.backend(name)) for name in names]


def ledger_problem(ledger: Ledger) -> str | None:
    """``None`` when the ledger can take a write now, else why not: a ``DELETE … WHERE`` false on
    the record table takes the write lock (SQLite) or fails in a read-only transaction
    (PostgreSQL standby), changes nothing, and is rolled back."""
    if getattr(ledger, "signer", None) is None:
        return "no signing key"
    try:
        with ledger.engine.connect() as conn:
            conn.exec_driver_sql(f"DELETE FROM {RecordRow.__tablename__} WHERE 1 = 0")
            conn.rollback()
    except SQLAlchemyError as exc:
        return f"not writable: {type(exc).__name__}"
    return None


def _local_state(backend: LocalBackend) -> str:
    worker = getattr(backend, "worker", None)
    if worker is None:
        return "missing"
    if worker.state == "unloaded":
        backend.start_loading()  # a model added by a policy reload: start loading (and warming) it now
        return "loading"
    return worker.state if worker.state != "failed" else f"failed: {worker.error}"


def readiness(service: Service) -> tuple[bool, dict[str, Any]]:
    """``(ready, checks)``; each check is ``"ok"`` or the reason it is not."""
    checks: dict[str, Any] = {"policy": "ok" if service.policy is not None else "not loaded"}
    checks["ledger"] = ledger_problem(service.ledger) or "ok"
    models = {name: _local_state(backend) for name, backend in local_backends(service)}
    checks["local_models"] = {name: "ok" if state == "ready" else state for name, state in models.items()}
    ready = checks["policy"] == "ok" and checks["ledger"] == "ok" and all(
        v == "ok" for v in checks["local_models"].values())
    return ready, checks


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz")
async def healthz() -> dict:
    """Liveness: the process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: the body names what is not"}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: policy loaded, ledger writable, local models loaded (503 while loading); and
    whether client authentication is on."""
    ready, checks = await run_in_threadpool(readiness, request.app.state.service)
    body = {"status": "ready" if ready else "not_ready", "checks": checks, **auth_status(request.app.state.clients)}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this app (text exposition format 0.0.4)."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
