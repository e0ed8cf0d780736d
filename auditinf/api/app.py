"""The HTTP API (FastAPI). Thin: read and bound the body, delegate to :class:`~auditinf.service.Service`.

Endpoints (JSON in, JSON out; errors are ``{"error": {"code", "message"[, "field"]}}`` with a 4xx):

- ``POST /v1/explain`` — what a transaction does; ``POST /v1/risk`` — pre-signing risk summary.
  Body :class:`~auditinf.api.models.TransactionRequest`; answer :class:`~auditinf.api.models.Answer`.
- ``POST /v1/methods`` — ABI method extraction from an ABI or runtime bytecode.
- ``GET /v1/records/{seq}`` — a stored audit record (body, leaf hash, signature, key id).
- ``GET /v1/pubkey`` — the verifier key auditors use with ``auditinf verify``.
- ``GET /v1/checkpoints/latest|{size}``, ``GET /v1/records/{seq}/proof``, ``GET /v1/consistency`` —
  signed checkpoints and Merkle proofs (:mod:`auditinf.api.ledger_routes`).
- ``GET /healthz`` — process up.

The optional ``X-Client-Id`` header names the client in the record (default ``anonymous``).
"""


import base64
import json
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Settings
from ..errors import AuditinfError, InputError, RequestTooLarge
from ..jsonin import load_json
from ..ledger import Ledger, load_signer
from ..policy.reload import PolicyReloader
from ..service import Service
from . import ledger_routes
from .models import Answer, MethodsAnswer, MethodsRequest, PublicKey, StoredRecord, TransactionRequest

__all__ = ["create_app", "build_service"]

log = logging.getLogger("auditinf.api")
_CLIENT_ID = r"^[A-Za-z0-9._:-]{1,64}$"


def build_service(settings: Settings) -> Service:
    """Load key, policy and ledger; raises ``KeyFileError``/``PolicyError``/``LedgerError`` at start-up."""
    signer = load_signer(settings.key_file, settings.origin)
    return Service(settings, Ledger(settings.ledger_url, signer, checkpoint_every_records=settings.checkpoint_every_records,
                                    checkpoint_every_s=settings.checkpoint_every_s))


def _body_doc(model: type) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def create_app(settings: Settings | None = None, service: Service | None = None) -> FastAPI:
    """Build the FastAPI app around ``service`` (built from ``settings`` when not given)."""
    settings = settings or Settings()
    service = service or build_service(settings)
    app = FastAPI(title="auditinf", version="0.1.0",
                  description="Auditable inference for Web3 wallets and agents: every answer is signed into a "
                              "hash-chained ledger before it is returned.")
    app.state.service = service
    app.include_router(ledger_routes.router)
    app.state.policy_reloader = reloader = PolicyReloader(service, poll_s=settings.policy_poll_s)  # SIGHUP + poll
    app.router.on_startup.append(reloader.start)
    app.router.on_shutdown.append(reloader.stop)

    @app.exception_handler(AuditinfError)
    async def _auditinf_error(_request: Request, exc: AuditinfError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

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

    async def json_body(request: Request) -> Any:
        limit = settings.max_body_bytes
        too_large = RequestTooLarge(f"request body over {limit} bytes")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large  # refused before reading a byte
        chunks, size = [], 0
        async for chunk in request.stream():  # chunked uploads: stop at the limit, never buffer more
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return load_json(b"".join(chunks))

    Body = Annotated[Any, Depends(json_body)]
    ClientId = Annotated[str, Header(alias="X-Client-Id", pattern=_CLIENT_ID)]

    @app.post("/v1/explain", response_model=Answer, openapi_extra=_body_doc(TransactionRequest),
              responses={422: {"description": "typed input error"}})
    def explain(body: Body, client_id: ClientId = "anonymous") -> dict:
        """Explain what a transaction does. The record is committed before this returns."""
        return service.explain(body, client_id)

    @app.post("/v1/risk", response_model=Answer, openapi_extra=_body_doc(TransactionRequest),
              responses={422: {"description": "typed input error"}})
    def risk(body: Body, client_id: ClientId = "anonymous") -> dict:
        """Pre-signing risk summary: verdict, risk level and findings from the rules, explained."""
        return service.risk(body, client_id)

    @app.post("/v1/methods", response_model=MethodsAnswer, openapi_extra=_body_doc(MethodsRequest),
              responses={422: {"description": "typed input error"}})
    def methods(body: Body, client_id: ClientId = "anonymous") -> dict:
        """ABI method extraction from a JSON ABI, or from runtime bytecode when no ABI is known."""
        return service.methods(body, client_id)

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

    @app.head("/healthz", include_in_schema=False)
    @app.get("/healthz")
    async def healthz() -> dict:  # async: answered on the event loop even when the worker pool is busy
        """Liveness: the process is up."""
        return {"status": "ok"}

    return app
