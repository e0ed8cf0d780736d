"""Structured JSON logs: one object per line, with the request id, and nothing secret.

Every line is ``{"ts", "level", "logger", "msg", "request_id"?, …fields}``; ``ts`` is RFC 3339
UTC. Fields come from ``extra={"fields": {...}}`` (plain values only). What never reaches a line:

- request content: our loggers log ids, codes, statuses and timings, never bodies;
- third-party detail: records from other libraries (openai, httpx, httpcore, llama_cpp, …)
  below WARNING are dropped, whatever the level — the openai SDK logs request options, with the
  prompt, at DEBUG;
- secrets: every line is scrubbed of the registered secret values (the hosted API key and any
  other value given to :func:`configure_logging`, with their base64 forms), ``Bearer`` tokens,
  ``sk-…`` keys, ``ak-…`` client tokens and 64-hex-digit runs (private keys), as defence in depth;
- exception messages (they may quote input): only the type and the stack's file/line/function.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import traceback
from datetime import datetime, timezone
from typing import Any, Iterable, TextIO

from .context import current_request

__all__ = ["JsonFormatter", "RedactingFilter", "configure_logging", "register_secret", "OWN_LOGGERS"]

OWN_LOGGERS = ("auditinf", "uvicorn.error")  # uvicorn.access is replaced by our request log
_REDACTED = "[redacted]"
_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + _REDACTED),
    (re.compile(r"\b[sa]k-[A-Za-z0-9_-]{6,}"), _REDACTED),  # provider keys, our client tokens
    (re.compile(r"(?<![0-9a-fA-F])(0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])"), _REDACTED),
]
_HANDLER_NAME = "auditinf-json"
_PROCESS_SECRETS: set[str] = set()  # forms registered by register_secret, scrubbed by every filter


def _secret_forms(secret: str) -> list[str]:
    raw = secret.encode()
    forms = {secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    forms |= {f.rstrip("=") for f in list(forms)}
    return sorted((f for f in forms if len(f) >= 8), key=len, reverse=True)


def register_secret(secret: str | None) -> None:
    """Make every :class:`RedactingFilter` of this process scrub ``secret`` (and its base64 forms)."""
    if secret:
        _PROCESS_SECRETS.update(_secret_forms(secret))


class RedactingFilter(logging.Filter):
    """Drops other libraries' records below WARNING and scrubs secrets from the rest.

    ``secrets``: exact values to remove wherever they occur (with their base64 forms).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._forms: list[str] = []
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str | None) -> None:
        """Register one more value that must never be logged."""
        if secret:
            self._forms = sorted(set(self._forms) | set(_secret_forms(secret)), key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for form in sorted(_PROCESS_SECRETS.union(self._forms), key=len, reverse=True):
            text = text.replace(form, _REDACTED)
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        own = any(record.name == n or record.name.startswith(n + ".") for n in OWN_LOGGERS)
        return own or record.levelno >= logging.WARNING


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; scrubbed by ``redactor`` when given."""

    def __init__(self, redactor: RedactingFilter | None = None) -> None:
        super().__init__()
        self.redactor = redactor or RedactingFilter()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = current_request()
        if ctx is not None:
            entry["request_id"] = ctx.request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({k: _plain(v) for k, v in fields.items() if k not in entry})
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["stack"] = [f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(record.exc_info[2])]
        return self.redactor.scrub(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))


def configure_logging(level: str | int = "INFO", *, stream: TextIO | None = None,
                      secrets: Iterable[str] = ()) -> RedactingFilter:
    """Send every log record through one JSON handler on the root logger (replacing a previous
    one of ours); returns its filter so callers can register more secrets.

    ``level``: our loggers' level (``DEBUG`` … ``ERROR``); other libraries stay at WARNING+.
    """
    redactor = RedactingFilter(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter(redactor))
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if logging.getLevelName(str(level).upper()) == logging.DEBUG else logging.INFO)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(str(level).upper() if isinstance(level, str) else level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # its lines carry query strings; ours do not
    return redactor
