"""Async jobs: long requests answered later.

``POST /v1/jobs`` with ``{"kind": "explain" | "risk" | "methods", "request": {…the kind's body…}}``
→ 202 ``{"id", "status": "queued", …}`` and ``Location: /v1/jobs/{id}``. ``GET /v1/jobs/{id}`` →
``{"id", "kind", "status": "queued" | "running" | "done" | "failed", "request_id", "created_at",
"started_at"?, "finished_at"?, "result"? (the answer, with its receipt), "error"? ({code, message})}``.

- The job table is bounded (``AUDITINF_JOBS_MAX``): finished jobs are kept ``AUDITINF_JOB_TTL_S``
  seconds, then dropped; when every slot holds a job, a new one is refused with 503
  ``job_table_full`` and ``Retry-After``. An unknown or expired id is 404 ``not_found``.
- It is bounded by bytes too (``AUDITINF_JOBS_MAX_BYTES``): a queued job holds its request as
  compact JSON bytes, parsed again (:func:`auditinf.jsonin.load_json`) when the job starts — a
  parsed body costs ~70× its JSON (``[{}, {}, …]``: ~24 MB per MiB) — and the bytes of queued
  requests together stay under the bound: beyond it a new job is refused with 503
  ``job_table_full`` (``Retry-After``), a request larger than the whole bound with 413
  ``request_too_large``.
- Jobs run on a small thread pool (``AUDITINF_JOB_WORKERS``) and wait for room in the local
  model's queue instead of being refused. Each runs as its submitting request (same request id in
  the logs and the record). The request body is dropped as soon as the job starts.
- Bad input fails the job with the same typed error the synchronous endpoint would return.
- Both endpoints authenticate like the synchronous ones (:mod:`.auth`). A job submitted with a
  client token is visible only to that client: any other caller gets the 404 ``not_found`` of an
  unknown id, so a job id reveals nothing about other clients' jobs. Its records say
  ``client_auth: "token"``. Without a client registry any caller may read any job by its id (a
  random UUID4), as before.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..auth import DECLARED, TOKEN
from ..config import Settings
from ..errors import AuditinfError, InputError, NotFound, Overloaded, RequestTooLarge
from ..jsonin import load_json
from ..obs.context import RequestContext, bind_request, current_request
from ..obs.metrics import Metrics
from ..service import Service
from .admission import admit
from .auth import AUTH_RESPONSES, Client
from .deps import Body, request_kind

__all__ = ["Job", "JobTable", "router", "JOB_KINDS"]

JOB_KINDS = ("explain", "risk", "methods")
log = logging.getLogger("auditinf.api.jobs")
_ADMISSION_WAIT_S = 600.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Job:
    """One job's state. ``request`` (compact JSON bytes) is held only until the job starts."""

    id: str
    kind: str
    request_id: str
    client_id: str
    request: bytes | None
    client_auth: str = DECLARED  # TOKEN: client_id was authenticated (auditinf.auth.identity)
    status: str = "queued"
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    finished_mono: float | None = None
    result: dict | None = None
    error: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "status": self.status,
                               "request_id": self.request_id, "created_at": self.created_at}
        for key in ("started_at", "finished_at", "result", "error"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class JobTable:
    """Bounded table of jobs run by ``run(kind, request, client_id) -> answer`` on a thread pool;
    at most ``max_jobs`` jobs, and at most ``max_bytes`` bytes of queued requests (JSON).

    ``before_run(kind)`` blocks until the job may start (admission); ``on_done(job, outcome,
    http_status, seconds)`` observes each finished job (metrics, log) before its status is published.
    """

    def __init__(self, run: Callable[[str, Any, str], dict], *, max_jobs: int, ttl_s: float, workers: int,
                 max_bytes: int = 64 << 20, before_run: Callable[[str], None] | None = None,
                 on_done: Callable[[Job, str, int, float], None] | None = None) -> None:
        self._run, self._before_run, self._on_done = run, before_run, on_done
        self.max_jobs, self.ttl_s, self.max_bytes = max_jobs, ttl_s, max_bytes
        self.queued_bytes = 0  # request bytes held by queued jobs
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auditinf-job")

    def _purge(self, now: float) -> None:
        expired = [j.id for j in self._jobs.values() if j.finished_mono is not None and now - j.finished_mono > self.ttl_s]
        for job_id in expired:
            del self._jobs[job_id]

    def submit(self, kind: str, request: Any, client_id: str, request_id: str,
               client_auth: str = DECLARED) -> dict[str, Any]:
        """Queue a job for ``request`` (a JSON value, or its UTF-8 JSON bytes) and return its state
        as queued (``Job.to_dict``); ``client_auth`` says how ``client_id`` was established
        (``token`` | ``declared``) and is carried into the job's records. Raises ``Overloaded``
        (503 ``job_table_full``) when the table is full, by count or by queued bytes, and
        ``RequestTooLarge`` (413) for a request over ``max_bytes`` on its own."""
        raw = request if isinstance(request, bytes) else \
            json.dumps(request, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        if len(raw) > self.max_bytes:
            raise RequestTooLarge(f"a job request is at most {self.max_bytes} bytes of JSON", field="request")
        now = time.monotonic()
        with self._lock:
            self._purge(now)
            if len(self._jobs) >= self.max_jobs:
                finished = [j.finished_mono for j in self._jobs.values() if j.finished_mono is not None]
                wait = (min(finished) + self.ttl_s - now) if finished else 5.0
                raise Overloaded(f"job table holds its maximum of {self.max_jobs} jobs", code="job_table_full",
                                 retry_after_s=max(1, int(wait) + 1))
            if self.queued_bytes + len(raw) > self.max_bytes:
                raise Overloaded(f"queued job requests hold their maximum of {self.max_bytes} bytes",
                                 code="job_table_full", retry_after_s=5)
            job = Job(id=str(uuid.uuid4()), kind=kind, request_id=request_id, client_id=client_id, request=raw,
                      client_auth=client_auth, created_at=_now())
            self._jobs[job.id] = job
            self.queued_bytes += len(raw)
            queued = job.to_dict()  # before a worker can pick it up
        self._pool.submit(self._execute, job)
        return queued

    def get(self, job_id: str, owner: str | None = None) -> Job:
        """The job ``job_id``; raises ``NotFound`` (404) for an unknown or expired id and, with
        ``owner`` (an authenticated client id), for a job that client did not submit with its token."""
        with self._lock:
            self._purge(time.monotonic())
            job = self._jobs.get(job_id)
        if job is not None and owner is not None and (job.client_id, job.client_auth) != (owner, TOKEN):
            job = None  # another client's job: the same answer as an unknown id
        if job is None:
            raise NotFound("no such job (unknown id, or expired)")
        return job

    def counts(self) -> dict[str, int]:
        """Jobs in the table by status (for ``/metrics``)."""
        with self._lock:
            statuses = [j.status for j in self._jobs.values()]
        return {s: statuses.count(s) for s in ("queued", "running", "done", "failed")}

    def _execute(self, job: Job) -> None:
        ctx = RequestContext(job.request_id, kind=job.kind,
                             authenticated_client=job.client_id if job.client_auth == TOKEN else None)
        started = time.perf_counter()
        status, outcome = 200, "done"
        with bind_request(ctx):
            try:
                if self._before_run is not None:
                    self._before_run(job.kind)
                request = self._take_request(job)
                job.status, job.started_at = "running", _now()
                job.result = self._run(job.kind, load_json(request), job.client_id)
            except AuditinfError as exc:
                status, job.error, outcome = exc.http_status, exc.to_dict()["error"], "failed"
            except Exception as exc:  # a bug: the job fails, the message (maybe input) is not kept
                log.error("job crashed", exc_info=exc, extra={"fields": {"job_id": job.id}})
                status, outcome = 500, "failed"
                job.error = {"code": "internal_error", "message": "internal error"}
            finally:
                self._take_request(job)
                job.finished_at, job.finished_mono = _now(), time.monotonic()
                if self._on_done is not None:
                    self._on_done(job, outcome, status, time.perf_counter() - started)
                job.status = outcome  # published last: a client that sees it sees the metrics too

    def _take_request(self, job: Job) -> bytes:
        """The job's request bytes, released from the table's byte count (once)."""
        with self._lock:
            request, job.request = job.request, None
            if request is not None:
                self.queued_bytes -= len(request)
        return request or b""

    def shutdown(self) -> None:
        """Stop accepting work; running jobs finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_job_table(service: Service, settings: Settings, metrics: Metrics) -> JobTable:
    """The app's job table: runs the service's request kinds, waits for local-queue room, and
    feeds the request metrics."""
    runners = {"explain": service.explain, "risk": service.risk, "methods": service.methods}

    def wait_for_room(kind: str) -> None:
        deadline = time.monotonic() + _ADMISSION_WAIT_S
        while True:
            try:
                admit(service, kind)
                return
            except Overloaded:
                if time.monotonic() > deadline:
                    return  # run anyway: the router falls back if the queue is still full
                time.sleep(0.05)

    def on_done(job: Job, outcome: str, status: int, seconds: float) -> None:
        ctx = current_request()
        if job.result is not None:
            metrics.observe_answer(job.kind, job.result)
        metrics.observe_request(job.kind, ctx.data_class if ctx else None, status, seconds)
        log.info("job finished", extra={"fields": {"job_id": job.id, "kind": job.kind, "status": outcome,
                                                   "error_code": (job.error or {}).get("code"),
                                                   "duration_ms": round(seconds * 1000, 3)}})

    return JobTable(lambda kind, request, client_id: runners[kind](request, client_id),
                    max_jobs=settings.jobs_max, ttl_s=settings.job_ttl_s, workers=settings.job_workers,
                    max_bytes=settings.jobs_max_bytes,
                    before_run=wait_for_room, on_done=on_done)


router = APIRouter()


def _envelope(body: Any) -> tuple[str, Any]:
    if not isinstance(body, dict) or set(body) - {"kind", "request"} or "request" not in body:
        raise InputError("a job is {\"kind\": ..., \"request\": {...}}", code="invalid_request")
    kind = body.get("kind")
    if kind not in JOB_KINDS:
        raise InputError(f"kind must be one of {', '.join(JOB_KINDS)}", code="invalid_request", field="kind")
    return kind, body["request"]


@router.post("/v1/jobs", status_code=202, responses={**AUTH_RESPONSES,
                                                     202: {"description": "queued; poll the Location"},
                                                     503: {"description": "job_table_full, with Retry-After"}},
             dependencies=[request_kind("job")])
async def submit_job(request: Request, client: Client, body: Body) -> JSONResponse:
    """Queue ``{"kind", "request"}`` for a background answer; 202 with the job and its Location."""
    kind, inner = _envelope(body)
    ctx = current_request()
    request_id = ctx.request_id if ctx is not None else str(uuid.uuid4())
    job = request.app.state.jobs.submit(kind, inner, client.client_id, request_id, client.client_auth)
    return JSONResponse(job, status_code=202, headers={"Location": f"/v1/jobs/{job['id']}"})


@router.get("/v1/jobs/{job_id}", responses={**AUTH_RESPONSES,
                                            404: {"description": "unknown or expired job id, or another client's job"}})
async def get_job(request: Request, client: Client, job_id: str) -> dict:
    """A job's status; when ``done``, its ``result`` is the answer with its receipt. With a client
    registry, only the client that submitted the job sees it."""
    owner = client.client_id if client.client_auth == TOKEN else None
    return request.app.state.jobs.get(job_id, owner).to_dict()
