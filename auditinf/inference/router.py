"""Route one prompt through the policy's ordered candidates until one answers.

For each candidate, in order (strictly forward — a backend is never tried again after a later
one): up to ``retries.max_attempts`` attempts, each with ``min(model timeout, time left)``
seconds; a retry only for an error the policy's ``retry_on`` names, after exponential backoff
with full jitter (``Retry-After`` honoured), all within ``retries.deadline_s``. A non-public
request is never handed to a hosted backend (refused here and in the backend). When every
candidate fails, the deterministic answer is the degraded answer. Every attempt is recorded.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import InferenceError, InvalidModelOutput, PrivacyViolation
from ..policy import Policy, RetryPolicy
from .base import Backend, ModelAnswer, Prompt
from .deterministic import DeterministicBackend
from .prompt import check_consistent

__all__ = ["Attempt", "RouteResult", "route"]

_LOCAL_KINDS = ("local", "deterministic")


@dataclass(frozen=True)
class Attempt:
    """One model attempt as the audit record stores it (times in UTC, duration in ms)."""

    backend: str
    model: str
    attempt: int
    started_at: str
    duration_ms: float
    outcome: str  # success | error | refused (privacy) | skipped (not configured)
    error_type: str | None = None
    http_status: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    response_model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RouteResult:
    answer: ModelAnswer
    model: dict[str, Any]  # identity of the backend that answered
    attempts: list[Attempt]
    degraded: bool


def _retry_key(exc: InferenceError) -> Any:
    return exc.status if exc.status is not None and exc.error_type not in ("timeout", "connection") else exc.error_type


def _backoff(retries: RetryPolicy, attempt: int, exc: InferenceError) -> float:
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return min(retry_after, retries.backoff_max_s)
    return random.uniform(0, min(retries.backoff_max_s, retries.backoff_base_s * 2 ** (attempt - 1)))


def _generate(backend: Backend, prompt: Prompt, data_class: str, timeout_s: float) -> ModelAnswer:
    """``backend.generate``; any other exception becomes an InferenceError (a backend bug must not
    lose the answer: it is recorded, and the next candidate answers)."""
    try:
        return backend.generate(prompt, data_class=data_class, timeout_s=timeout_s)
    except InferenceError:
        raise
    except Exception as crash:
        raise InferenceError(f"backend raised {type(crash).__name__}", error_type="backend_error") from crash


def route(prompt: Prompt, *, backends: list[tuple[Backend, float]], data_class: str, policy: Policy,
          risk_level: str) -> RouteResult:
    """Answer ``prompt`` with the first candidate that succeeds.

    ``backends`` is the ordered ``(backend, timeout_s)`` list for the request's route. Answers
    that fail the schema or contradict the rules (``risk_level``) count as failed attempts.
    Never raises for a model failure: the last resort is the deterministic degraded answer.
    """
    retries = policy.retries
    deadline = time.monotonic() + retries.deadline_s
    attempts: list[Attempt] = []

    def record(backend: Backend, n: int, started: float, wall: datetime, outcome: str,
               answer: ModelAnswer | None = None, exc: InferenceError | None = None) -> None:
        attempts.append(Attempt(
            backend=backend.kind, model=backend.name, attempt=n, started_at=wall.isoformat(),
            duration_ms=round((time.monotonic() - started) * 1000, 3), outcome=outcome,
            error_type=exc.error_type if exc else None, http_status=exc.status if exc else None,
            tokens_in=answer.tokens_in if answer else None, tokens_out=answer.tokens_out if answer else None,
            response_model=answer.response_model if answer else None))

    for backend, timeout_s in backends:
        if data_class != "public" and backend.kind not in _LOCAL_KINDS:
            record(backend, 1, time.monotonic(), datetime.now(timezone.utc), "refused",
                   exc=PrivacyViolation("non-public data is never routed to a hosted model"))
            continue
        n = 0
        adapted = False
        while n < retries.max_attempts:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            n += 1
            started, wall = time.monotonic(), datetime.now(timezone.utc)
            try:
                answer = _generate(backend, prompt, data_class, min(timeout_s, left))
                check_consistent(answer.content, risk_level, prompt.facts)
            except InferenceError as exc:
                record(backend, n, started, wall, "skipped" if exc.error_type == "not_configured" else "error",
                       exc=exc)
                if exc.error_type == "response_format_unsupported" and not adapted:
                    adapted, n = True, n - 1  # one adaptation, not counted against max_attempts
                    continue
                if isinstance(exc, (PrivacyViolation, InvalidModelOutput)) or not exc.retryable:
                    break
                if _retry_key(exc) not in retries.retry_on:
                    break
                pause = _backoff(retries, n, exc)
                if n < retries.max_attempts and pause < deadline - time.monotonic():
                    time.sleep(pause)
                continue
            record(backend, n, started, wall, "success", answer=answer)
            return RouteResult(answer=answer, model=backend.identity(), attempts=attempts,
                               degraded=backend.kind == "deterministic")
    fallback = DeterministicBackend()
    started, wall = time.monotonic(), datetime.now(timezone.utc)
    answer = fallback.generate(prompt, data_class=data_class, timeout_s=0)
    record(fallback, 1, started, wall, "success", answer=answer)
    return RouteResult(answer=answer, model=fallback.identity(), attempts=attempts, degraded=True)
