"""The HTTP API (FastAPI). Thin: read and bound the body, delegate to :class:`~auditinf.service.Service`.

Endpoints (JSON in, JSON out; errors are ``{"error": {"code", "message"[, "field"]}}`` with a 4xx,
or 503 with ``Retry-After`` when a queue is full):

- ``POST /v1/explain`` — what a transaction does; ``POST /v1/risk`` — pre-signing risk summary.
  Body :class:`~auditinf.api.models.TransactionRequest` or :class:`~auditinf.api.models.SigningRequestBody`; answer :class:`~auditinf.api.models.Answer`.
  ``?stream=true`` answers as Server-Sent Events (:mod:`.stream`).
- ``POST /v1/methods`` — ABI method extraction from an ABI or runtime bytecode.
- ``POST /v1/jobs``, ``GET /v1/jobs/{id}`` — the same requests as background jobs (:mod:`.jobs`).
- ``GET /v1/records/{seq}`` — a stored audit record (body, leaf hash, signature, key id).
- ``GET /v1/pubkey`` — the verifier key auditors use with ``auditinf verify``.
- ``GET /v1/checkpoints/latest|{size}``, ``GET /v1/records/{seq}/proof``, ``GET /v1/consistency`` —
  signed checkpoints and Merkle proofs (:mod:`auditinf.api.ledger_routes`).
- ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` — liveness, readiness, Prometheus (:mod:`.health`).

With a client registry, the request endpoints (explain, risk, methods, gate, jobs) require
``Authorization: Bearer <client token>`` and the token names the client; without one, the optional
``X-Client-Id`` header does (default ``anonymous``), self-declared (:mod:`.auth`).
``X-Request-Id`` is accepted and always returned (:mod:`.observe`).
"""


import base64
import json
import logging
import os
from typing import Annotated, Any, Callable

from fastapi import FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings
from ..errors import AuditinfError, InputError
from ..ledger import Ledger, load_signer
from ..obs.context import current_request
from ..obs.logs import register_secret
from ..obs.metrics import Metrics
from ..policy.reload import PolicyReloader
from ..service import Service
from . import gate_routes, health, jobs, ledger_routes
from .admission import admit
from .auth import AUTH_RESPONSES, Client, client_registry
from .deps import Body, request_kind
from .models import (Answer, MethodsAnswer, MethodsRequest, PublicKey, SigningRequestBody, StoredRecord,
                     TransactionRequest)
from .observe import ObservabilityMiddleware
from .stream import stream_answer

__all__ = ["create_app", "build_service"]

log = logging.getLogger("auditinf.api")


def build_service(settings: Settings) -> Service:
    """Load key, policy and ledger; raises ``KeyFileError``/``PolicyError``/``LedgerError`` at start-up."""
    signer = load_signer(settings.key_file, settings.origin)
    return Service(settings, Ledger(settings.ledger_url, signer, checkpoint_every_records=settings.checkpoint_every_records,
                                    checkpoint_every_s=settings.checkpoint_every_s))


_RESPONSES = {**AUTH_RESPONSES, 422: {"description": "typed input error"}, 503: {"description": "queue_full"}}


def _body_doc(*models: type) -> dict:
    """OpenAPI request body: the model's schema, or ``anyOf`` the models' schemas."""
    schemas = [m.model_json_schema() for m in models]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _register_secrets(service: Service) -> None:
    """Hosted API keys (settings, or the environment variable a policy model names) never appear
    in a log line."""
    for spec in service.policy.models.values():
        if spec.backend == "hosted" and spec.options.get("api_key_env"):
            register_secret(os.environ.get(spec.options["api_key_env"]))
    if service.settings.hosted_api_key is not None:
        register_secret(service.settings.hosted_api_key.get_secret_value())


def _wire_metrics(service: Service, metrics: Metrics, job_table: jobs.JobTable) -> None:
    def local_models():
        for name, backend in health.local_backends(service):
            worker = getattr(backend, "worker", None)
            if worker is not None:
                yield name, worker.state, worker.depth, worker.queue_size

    def circuits() -> dict[str, str]:
        breakers = getattr(service, "breakers", None)  # the router's per-backend circuit breakers
        return breakers.states() if breakers is not None else {}

    metrics.state.local_models = local_models
    metrics.state.circuits = circuits
    metrics.state.jobs = job_table.counts
    metrics.instrument_ledger(service.ledger)


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """Build the FastAPI app around ``service`` (built from ``settings`` when not given).

    Each app has its own metrics registry, job table and view of the client registry
    (:func:`~auditinf.api.auth.client_registry`; raises ``KeyFileError``/``ClientRegistryError``
    for a bad registry file). On start-up (ASGI lifespan) the local
    models the policy routes to begin loading in the background (``/readyz`` is 503 until they
    are loaded), unless ``settings.warm_local_models`` is false.
    """
    settings = settings or Settings()
    service = service or build_service(settings)
    metrics = Metrics()
    job_table = jobs.make_job_table(service, settings, metrics)
    reloader = PolicyReloader(service, poll_s=settings.policy_poll_s)

    def warm_local_models() -> None:
        if settings.warm_local_models:
            for _name, backend in health.local_backends(service):
                if hasattr(backend, "start_loading"):
                    backend.start_loading()  # background: /readyz is 503 until loaded

    app = FastAPI(title="auditinf", version="0.1.0",
                  description="Auditable inference for Web3 wallets and agents: every answer is signed into a "
                              "hash-chained ledger before it is returned.")
    app.state.service, app.state.settings, app.state.metrics, app.state.jobs = service, settings, metrics, job_table
    app.state.clients = client_registry(settings)
    app.state.policy_reloader = reloader  # SIGHUP + file poll
    app.router.on_startup.extend([reloader.start, warm_local_models])
    app.router.on_shutdown.extend([reloader.stop, job_table.shutdown])
    app.include_router(ledger_routes.router)
    app.include_router(gate_routes.router)
    _register_secrets(service)
    _wire_metrics(service, metrics, job_table)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)

    @app.exception_handler(AuditinfError)
    async def _auditinf_error(_request: Request, exc: AuditinfError) -> JSONResponse:
        ctx = current_request()
        if ctx is not None:
            ctx.extra["error_code"] = exc.code
            if exc.code == "secret_in_request":
                ctx.data_class = "secret"
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        # The offending input is never echoed: it may be a secret.
        err = InputError(f"invalid request at '{where}': {first.get('msg', 'invalid')}", field=where or None)
        return JSONResponse(err.to_dict(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        body = {"error": {"code": codes.get(exc.status_code, f"http_{exc.status_code}"), "message": str(exc.detail)}}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s", type(exc).__name__)  # no message: it could carry request content
        return JSONResponse({"error": {"code": "internal_error", "message": "internal error"}}, status_code=500)

    def observe(kind: str, answer: dict) -> None:
        ctx = current_request()
        if ctx is not None:
            ctx.data_class = answer.get("data_class")
            ctx.extra.update(seq=answer["receipt"]["seq"], degraded=answer.get("degraded"),
                             answered_by=answer.get("model", {}).get("backend"))
        metrics.observe_answer(kind, answer)

    async def answer(kind: str, run: Callable[[Any, str], dict], body: Any, client_id: str, stream: bool = False):
        admit(service, kind, metrics)  # 503 queue_full before any work
        if stream:
            return await stream_answer(lambda: run(body, client_id), lambda a: observe(kind, a))
        result = await run_in_threadpool(run, body, client_id)
        observe(kind, result)
        return result

    Stream = Annotated[bool, Query(description="answer as Server-Sent Events (analysis, token…, final)")]

    @app.post("/v1/explain", response_model=Answer, openapi_extra=_body_doc(TransactionRequest, SigningRequestBody),
              responses=_RESPONSES, dependencies=[request_kind("explain")])
    async def explain(client: Client, body: Body, stream: Stream = False) -> Any:
        """Explain what a transaction does. The record is committed before this returns (or, with
        ``stream=true``, before the final event)."""
        return await answer("explain", service.explain, body, client.client_id, stream)

    @app.post("/v1/risk", response_model=Answer, openapi_extra=_body_doc(TransactionRequest, SigningRequestBody),
              responses=_RESPONSES, dependencies=[request_kind("risk")])
    async def risk(client: Client, body: Body, stream: Stream = False) -> Any:
        """Pre-signing risk summary: verdict, risk level and findings from the rules, explained."""
        return await answer("risk", service.risk, body, client.client_id, stream)

    @app.post("/v1/methods", response_model=MethodsAnswer, openapi_extra=_body_doc(MethodsRequest),
              responses=_RESPONSES, dependencies=[request_kind("methods")])
    async def methods(client: Client, body: Body) -> Any:
        """ABI method extraction from a JSON ABI, or from runtime bytecode when no ABI is known."""
        return await answer("methods", service.methods, body, client.client_id)

    @app.get("/v1/records/{seq}", response_model=StoredRecord, responses={404: {"description": "no such record"}})
    def record(seq: Annotated[int, Path(ge=0, le=2**63 - 1)]) -> dict:
        """The stored record at ``seq``: its canonical body (parsed and as base64), leaf hash,
        signature and key id."""
        row = service.ledger.get(seq)
        return {"seq": row.seq, "leaf_hash": row.leaf_hash, "signature": row.signature, "kid": row.kid,
                "body": json.loads(row.body), "body_b64": base64.b64encode(row.body).decode()}

    @app.get("/v1/pubkey", response_model=PublicKey)
    def pubkey() -> dict:
        """The ledger's verifier key (C2SP signed-note format) and key id."""
        verifier = service.ledger.signer.verifier
        return {"kid": verifier.kid, "name": verifier.name, "verifier_key": verifier.verifier_key}

    app.include_router(health.router)
    app.include_router(jobs.router)
    return app
