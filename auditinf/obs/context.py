"""The request being served, carried in a :class:`contextvars.ContextVar`.

One :class:`RequestContext` per HTTP request or job: its ``request_id`` (the ``X-Request-Id`` the
client sent, when well-formed, else a fresh UUID4) goes into the log lines and into the audit
record; ``authenticated_client`` is the client id a bearer token proved (records say
``client_auth: "token"`` for it, :mod:`auditinf.auth.identity`); ``kind``/``data_class`` label the metrics; ``sink`` receives streaming events (the
rules' analysis before the model runs); ``stream`` is the router's stream sink for model text
while it is written (once text has gone out, the router makes no further model attempt).

Sync endpoints run in a worker thread with a copy of the context (Starlette/anyio copy it), so
the service and the backends see the request that started them without extra arguments.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from ..policy.classify import text_secret

__all__ = ["RequestContext", "AnalysisSink", "bind_request", "current_request", "current_request_id",
           "current_stream", "request_id_from_header", "notify_analysis"]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_HEX_RUN = re.compile(r"[0-9a-fA-F]{60,}")  # a pasted 32-byte key (64 hex digits)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


class AnalysisSink(Protocol):
    """Where a streaming request's events go (see :mod:`auditinf.api.stream`)."""

    def analysis(self, facts: dict[str, Any], data_class: str) -> None:
        """The deterministic analysis (verdict, risk level, findings), before any model call."""



@dataclass
class RequestContext:
    """What observability knows about the request being served."""

    request_id: str
    kind: str | None = None          # explain | risk | methods | …: set by the endpoint
    data_class: str | None = None    # public | private | secret: set when known
    authenticated_client: str | None = None  # the client id a bearer token proved (auditinf.api.auth)
    sink: AnalysisSink | None = None   # set only for streaming requests
    stream: Any = None               # the router's StreamSink for model text (inference.base.StreamSink)
    extra: dict[str, Any] = field(default_factory=dict)


_CURRENT: ContextVar[RequestContext | None] = ContextVar("auditinf_request", default=None)


def request_id_from_header(value: str | None) -> str:
    """The client's ``X-Request-Id`` when it is 1–64 chars of ``[A-Za-z0-9._:-]`` and holds no
    signing material — no 60+ hex-digit run, no BIP-39 phrase (the detectors of
    :func:`auditinf.policy.classify.text_secret`, camelCase split: ``ActAddAgeAim…``) — since
    the id is logged, stored and echoed; else a new UUID4 (RFC 9562)."""
    if not value or not _REQUEST_ID.match(value):
        return str(uuid.uuid4())
    if _UUID.match(value):
        return value
    if _HEX_RUN.search(value) or text_secret(value):
        return str(uuid.uuid4())
    return value


def current_request() -> RequestContext | None:
    """The request being served in this context, if any."""
    return _CURRENT.get()


def current_request_id() -> str:
    """The current request's id, or a fresh UUID4 outside a request (CLI, tests)."""
    ctx = _CURRENT.get()
    return ctx.request_id if ctx is not None else str(uuid.uuid4())


def current_stream() -> Any:
    """The current request's model-text stream sink, or ``None`` (not a streaming request)."""
    ctx = _CURRENT.get()
    return ctx.stream if ctx is not None else None


@contextmanager
def bind_request(ctx: RequestContext) -> Iterator[RequestContext]:
    """Make ``ctx`` the current request inside the ``with`` block."""
    token = _CURRENT.set(ctx)
    try:
        yield ctx
    finally:
        _CURRENT.reset(token)


def notify_analysis(facts: dict[str, Any], data_class: str) -> None:
    """Hand the deterministic analysis (the prompt's facts) to the current request's stream sink,
    and note the data class for the metrics (no-op outside a request)."""
    ctx = _CURRENT.get()
    if ctx is not None:
        ctx.data_class = data_class
        if ctx.sink is not None:
            ctx.sink.analysis(facts, data_class)
