"""Observability: request context (request id, stream sink), JSON logs, Prometheus metrics."""

from .context import RequestContext, bind_request, current_request, current_request_id, request_id_from_header
from .logs import JsonFormatter, RedactingFilter, configure_logging
from .metrics import Metrics

__all__ = ["RequestContext", "bind_request", "current_request", "current_request_id", "request_id_from_header",
           "JsonFormatter", "RedactingFilter", "configure_logging", "Metrics"]
