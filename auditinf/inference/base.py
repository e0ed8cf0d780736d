"""What every model backend takes and returns, and the structured answer it must produce.

A backend turns a :class:`Prompt` into a :class:`ModelAnswer` whose ``content`` validates against
:data:`ANSWER_SCHEMA`, or raises an :class:`~auditinf.errors.InferenceError` subclass whose
``error_type`` goes into the audit record. Backends never see verdicts they could change: the
answer's verdict and risk level come from the rules alone.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import jsonschema

from ..errors import InvalidModelOutput
from ..ledger.canonical import canonical_bytes

__all__ = ["ANSWER_SCHEMA", "Prompt", "ModelAnswer", "Backend", "StreamSink", "parse_answer", "safe_count",
           "safe_label", "REPAIRABLE", "crash_error_type"]

# Output errors that earn one repair attempt on the same backend before the next candidate.
REPAIRABLE = frozenset({"truncated", "invalid_json", "schema_invalid", "empty_output"})
_REPAIR_NOTE = {
    "truncated": "Your previous reply was cut off. Reply again with a much shorter JSON object.",
}
_REPAIR_DEFAULT = ("Your previous reply was not a JSON object with exactly the keys summary, key_points and "
                   "risk_notes. Reply again with only that JSON object.")


def safe_count(value: Any) -> int | None:
    """A token count reported by a backend, or ``None`` when it is not a plausible count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53 else None


def safe_label(value: Any, limit: int = 128) -> str | None:
    """A model name or response id from a backend: printable, valid Unicode, at most ``limit`` chars."""
    if not isinstance(value, str):
        return None
    clean = "".join(ch for ch in value[:limit] if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF)
    return clean or None

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "key_points", "risk_notes"],
    "properties": {
        "summary": {"type": "string", "minLength": 10, "maxLength": 300},
        "key_points": {"type": "array", "maxItems": 3, "items": {"type": "string", "minLength": 1, "maxLength": 100}},
        "risk_notes": {"type": "array", "maxItems": 3, "items": {"type": "string", "minLength": 1, "maxLength": 100}},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(ANSWER_SCHEMA)


@dataclass(frozen=True)
class Prompt:
    """One model request. ``facts`` is the deterministic analysis the text is built from
    (the deterministic backend reads it directly); ``system``/``user`` are the chat messages."""

    kind: str
    system: str
    user: str
    facts: dict[str, Any]
    schema: dict[str, Any] = field(default_factory=lambda: ANSWER_SCHEMA)
    repair: str | None = None  # the output error this prompt repairs (None: first try)
    prefix: str = ""  # the start of ``user`` that no request changes (task line): a local model reuses its evaluation

    def repaired(self, error_type: str) -> "Prompt":
        """The repair prompt after an output error (``truncated`` | ``invalid_json`` | …): the
        same request with a correcting instruction appended, so the retry is not byte-identical."""
        note = _REPAIR_NOTE.get(error_type, _REPAIR_DEFAULT)
        return replace(self, user=f"{self.user}\n{note}", repair=error_type)


class StreamSink:
    """Where a streaming backend sends answer text as it is produced (``emit``).

    Once one chunk has been emitted (``started``), the router makes no further model attempt
    for the request: the client has seen text from this attempt, and a retry or fallback would
    splice two answers. ``on_text`` receives each chunk (the SSE writer).
    """

    def __init__(self, on_text=None) -> None:
        self._on_text = on_text
        self._started = threading.Event()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def emit(self, text: str) -> None:
        if text:
            self._started.set()
            if self._on_text is not None:
                self._on_text(text)


@dataclass(frozen=True)
class ModelAnswer:
    """A validated answer. Token counts are the backend's own (``None`` when not reported)."""

    content: dict[str, Any]
    finish_reason: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    response_model: str | None = None
    response_id: str | None = None


class Backend(Protocol):
    """A model backend. ``kind`` is ``local`` | ``hosted`` | ``deterministic``."""

    name: str
    kind: str

    def identity(self) -> dict[str, Any]:
        """``{backend, name, id}`` — e.g. the GGUF file's sha256, or provider base URL + model."""

    def generate(self, prompt: Prompt, *, data_class: str, timeout_s: float) -> ModelAnswer:
        """Answer ``prompt`` within ``timeout_s`` seconds or raise ``InferenceError``."""


def parse_answer(text: str | None, finish_reason: str | None) -> dict[str, Any]:
    """Validate a model's raw text as the answer JSON.

    ``finish_reason == "length"`` is refused before parsing (error type ``truncated``): partial
    JSON is never repaired and passed off as complete. Non-JSON → ``invalid_json``; JSON that
    fails :data:`ANSWER_SCHEMA` → ``schema_invalid``.
    """
    if finish_reason == "length":
        raise InvalidModelOutput("model output was cut at max_tokens (finish_reason=length)", error_type="truncated")
    if not text:
        raise InvalidModelOutput("model returned no content", error_type="empty_output")
    try:
        content = json.loads(text, strict=False)  # tolerate raw newlines inside strings
    except ValueError as exc:
        raise InvalidModelOutput(f"model output is not JSON: {exc.msg}", error_type="invalid_json") from exc
    try:
        canonical_bytes(content)  # it goes into the signed record: must be I-JSON (no lone surrogates)
    except Exception as exc:  # rfc8785 raises CanonicalizationError subclasses
        raise InvalidModelOutput("model output is not representable as I-JSON", error_type="invalid_json") from exc
    error = next(iter(_VALIDATOR.iter_errors(content)), None)
    if error is not None:
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        # Name the rule that failed, never the model's text (it must not reach the client).
        raise InvalidModelOutput(f"model output fails the answer schema at {where} ({error.validator})",
                                 error_type="schema_invalid")
    return content


_CRASH_TYPES = (  # (exception type, words in its message) → error type; first match wins
    (ValueError, ("context window", "exceed context", "n_ctx", "too many tokens"), "context_overflow"),
    (ValueError, ("grammar",), "structured_output_setup"),
    (RuntimeError, ("llama_decode",), "decode_failed"),
)


def crash_error_type(exc: BaseException) -> str:
    """The audit record's error type for an exception a backend let through (llama.cpp raises
    plain ``ValueError``/``RuntimeError``): ``context_overflow`` | ``structured_output_setup`` |
    ``decode_failed`` | ``backend_error``. Only the type is kept, never the message."""
    text = str(exc).lower()
    for kind, words, error_type in _CRASH_TYPES:
        if isinstance(exc, kind) and any(w in text for w in words):
            return error_type
    return "backend_error"
