"""Request observation: request id, one JSON log line and the request metrics per HTTP request.

A pure ASGI middleware (it does not buffer bodies, so Server-Sent Events stream through it):

- takes the client's ``X-Request-Id`` when well-formed (else makes one), binds it as the current
  request (:mod:`auditinf.obs.context`) for the service, the backends and the log lines, and
  returns it in the ``X-Request-Id`` response header; the audit record carries the same id;
- when the response has ended, logs ``request`` with method, route template, status and
  duration (never the query string, headers or body) and, for the request endpoints (explain,
  risk, methods, gate, job submission: each names its kind, :func:`~auditinf.api.deps.request_kind`),
  counts ``auditinf_requests_total{kind, data_class, status}`` and its latency — refusals before
  the endpoint runs (401/403 from authentication, 413, 422 from body parsing) included, with
  ``data_class="unknown"``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..obs.context import RequestContext, bind_request, request_id_from_header
from ..obs.metrics import Metrics

__all__ = ["ObservabilityMiddleware"]

log = logging.getLogger("auditinf.api.request")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class ObservabilityMiddleware:
    """See the module docstring. ``metrics``: the app's :class:`~auditinf.obs.metrics.Metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestContext(request_id_from_header(_header(scope, b"x-request-id")))
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", ctx.request_id.encode())]}
            await send(message)

        with bind_request(ctx):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._finish(scope, ctx, status["code"], time.perf_counter() - started)

    def _finish(self, scope: Scope, ctx: RequestContext, status: int, seconds: float) -> None:
        if ctx.kind is not None:
            self.metrics.observe_request(ctx.kind, ctx.data_class, status, seconds)
        fields = {"method": scope.get("method"), "route": _route_template(scope), "status": status,
                  "duration_ms": round(seconds * 1000, 3)}
        if ctx.kind is not None:
            fields.update(kind=ctx.kind, data_class=ctx.data_class)
        fields.update(ctx.extra)
        log.info("request", extra={"fields": fields})
