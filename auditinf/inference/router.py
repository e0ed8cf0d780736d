"""Route one prompt through the policy's ordered candidates until one answers.

For each candidate, in order (strictly forward — a backend is never tried again after a later
one):

- a non-public request is never handed to a hosted backend (refused here and in the backend);
- an open circuit breaker skips the candidate (recorded as ``circuit_open``);
- up to ``retries.max_attempts`` attempts, each with ``min(model timeout, time left)`` seconds;
  a retry only for an error the policy's ``retry_on`` names (HTTP status, ``timeout``,
  ``connection``), after exponential backoff with full jitter, or after ``Retry-After`` when the
  server sends one (longer than ``backoff_max_s``: the candidate is left instead), all within
  ``retries.deadline_s``;
- output that is truncated (``finish_reason == length``) or not the answer JSON earns one repair
  attempt with a correcting prompt, then the next candidate;
- an error that tells nothing about the backend earns one immediate extra attempt per candidate,
  not counted against ``max_attempts`` nor by the circuit breaker (:data:`NO_VERDICT`): the hosted
  backend switching ``response_format``, or a kept-alive connection the server had closed
  (``stale_connection``: the extra attempt runs on a new connection);
- once a streamed chunk has reached the client (:class:`StreamSink`), no further model attempt is
  made.

When every candidate fails, the deterministic answer is the degraded answer. Every attempt is
recorded (:class:`Attempt`), with its cost in USD from the policy's price table.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..errors import InferenceError, InvalidModelOutput, PrivacyViolation
from ..policy import ModelSpec, Policy, RetryPolicy, usd_text
from .base import REPAIRABLE, Backend, ModelAnswer, Prompt, StreamSink, crash_error_type
from .breaker import Breakers
from .deterministic import DeterministicBackend
from .prompt import check_consistent

__all__ = ["Attempt", "Candidate", "RouteResult", "route", "NO_VERDICT"]

_LOCAL_KINDS = ("local", "deterministic")
NO_VERDICT = frozenset({"response_format_unsupported", "stale_connection"})
log = logging.getLogger("auditinf.router")


@dataclass(frozen=True)
class Candidate:
    """A backend on the route with its policy model; ``canary_of`` names the model whose traffic
    share it took (rollout), ``None`` for the route's own model."""

    backend: Backend
    spec: ModelSpec
    canary_of: str | None = None


@dataclass(frozen=True)
class Attempt:
    """One model attempt as the audit record stores it (times in UTC, duration in ms, cost in USD
    as a decimal string). ``backend`` is the backend kind, ``model`` the policy model name,
    ``response_model`` the model name the backend reported.

    ``outcome``: ``success`` | ``error`` | ``refused`` (privacy) | ``skipped`` (not configured) |
    ``circuit_open`` (breaker open: not attempted)."""

    backend: str
    model: str
    attempt: int
    started_at: str
    duration_ms: float
    outcome: str
    error_type: str | None = None
    http_status: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    response_model: str | None = None
    cost_usd: str = "0"
    repair: bool = False
    canary_of: str | None = None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record's attempt object (every field a JSON scalar: no deep copy needed)."""
        return {f.name: getattr(self, f.name) for f in _ATTEMPT_FIELDS}


_ATTEMPT_FIELDS = fields(Attempt)


@dataclass(frozen=True)
class RouteResult:
    """The answer, the identity of the backend that gave it, and every attempt in start order."""

    answer: ModelAnswer | None  # None only with route(fallback=False) when every candidate failed
    model: dict[str, Any] | None
    attempts: list[Attempt]
    degraded: bool
    stream_interrupted: bool = False
    answered_by: str | None = None  # policy model name
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost_usd(self) -> Decimal:
        """Total USD cost of every attempt."""
        return sum((Decimal(a.cost_usd) for a in self.attempts), Decimal(0))


def _retry_key(exc: InferenceError) -> Any:
    """The ``retries.retry_on`` entry that names ``exc``: its HTTP status, else its error type (a
    stale kept-alive connection, past its one free attempt, is a ``connection`` error)."""
    if exc.error_type == "stale_connection":
        return "connection"
    return exc.status if exc.status is not None and exc.error_type not in ("timeout", "connection") else exc.error_type


def _backoff(retries: RetryPolicy, attempt: int) -> float:
    """Full jitter (seconds): ``uniform(0, min(backoff_max_s, backoff_base_s · 2^(attempt-1)))``."""
    return random.uniform(0, min(retries.backoff_max_s, retries.backoff_base_s * 2 ** (attempt - 1)))


def _generate(backend: Backend, prompt: Prompt, data_class: str, timeout_s: float,
              stream: StreamSink | None) -> ModelAnswer:
    """``backend.generate``; any other exception becomes an InferenceError (a backend bug must not
    lose the answer: it is recorded, and the next candidate answers)."""
    try:
        if stream is not None and getattr(backend, "streams", False):
            return backend.generate(prompt, data_class=data_class, timeout_s=timeout_s, stream=stream)
        return backend.generate(prompt, data_class=data_class, timeout_s=timeout_s)
    except InferenceError:
        raise
    except Exception as crash:
        raise InferenceError(f"backend raised {type(crash).__name__}", error_type=crash_error_type(crash)) from crash


class _Recorder:
    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.warnings: list[dict[str, Any]] = []

    def add(self, cand: Candidate, n: int, started: float, wall: datetime, outcome: str, *,
            answer: ModelAnswer | None = None, exc: InferenceError | None = None, repair: bool = False) -> None:
        source = answer if answer is not None else exc  # a refused answer was still billed
        tokens_in, tokens_out = getattr(source, "tokens_in", None), getattr(source, "tokens_out", None)
        served = getattr(source, "response_model", None)
        warning = None
        pinned = cand.spec.pinned_version
        if pinned and outcome in ("success", "error") and served != pinned and (answer or served):
            warning = "version_mismatch" if served else "version_unreported"
            self.warnings.append({"code": warning, "model": cand.spec.name, "pinned": pinned, "served": served})
        self.attempts.append(Attempt(
            backend=cand.backend.kind, model=cand.spec.name, attempt=n, started_at=wall.isoformat(),
            duration_ms=round((time.monotonic() - started) * 1000, 3), outcome=outcome,
            error_type=exc.error_type if exc else None, http_status=exc.status if exc else None,
            tokens_in=tokens_in, tokens_out=tokens_out, response_model=served,
            cost_usd=usd_text(cand.spec.cost_usd(tokens_in, tokens_out)), repair=repair, canary_of=cand.canary_of,
            warning=warning))


def route(prompt: Prompt, *, candidates: list[Candidate], data_class: str, policy: Policy, risk_level: str,
          breakers: Breakers | None = None, stream: StreamSink | None = None, fallback: bool = True) -> RouteResult:
    """Answer ``prompt`` with the first candidate that succeeds (see the module docstring).

    ``candidates`` is the ordered route for the request (rollout already applied). Answers that
    fail the schema or contradict the rules (``risk_level``) count as failed attempts. Never
    raises for a model failure: the last resort is the deterministic degraded answer (with
    ``fallback=False``, as for shadow runs, the result then has ``answer=None``).
    """
    retries = policy.retries
    deadline = time.monotonic() + retries.deadline_s
    rec = _Recorder()
    interrupted = False
    for cand in candidates:
        backend = cand.backend
        if data_class != "public" and backend.kind not in _LOCAL_KINDS:
            rec.add(cand, 1, time.monotonic(), datetime.now(timezone.utc), "refused",
                    exc=PrivacyViolation("non-public data is never routed to a hosted model"))
            continue
        breaker = breakers.get(cand.spec.name, policy.breaker) if breakers and backend.kind != "deterministic" else None
        n, budget, granted, current = 0, retries.max_attempts, set(), prompt
        while n < budget and not interrupted:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if breaker is not None and not breaker.allow():
                rec.add(cand, n + 1, time.monotonic(), datetime.now(timezone.utc), "circuit_open")
                break
            n += 1
            started, wall = time.monotonic(), datetime.now(timezone.utc)
            answer = None
            try:
                answer = _generate(backend, current, data_class, min(cand.spec.timeout_s, left), stream)
                if backend.kind != "deterministic":  # the guards judge model text, not the rules' own template
                    check_consistent(answer.content, risk_level, prompt.facts)
            except InferenceError as exc:
                configured = exc.error_type != "not_configured"
                if exc.error_type == "auth":  # an operator must fix the credentials; the key is never logged
                    log.warning("model %s: upstream auth failure (HTTP %s); check its API key", cand.spec.name,
                                exc.status)
                rec.add(cand, n, started, wall, "error" if configured else "skipped", answer=answer, exc=exc,
                        repair=current.repair is not None)
                free = exc.error_type in NO_VERDICT and exc.error_type not in granted
                if breaker is not None and configured and not free:
                    breaker.failure()
                elif breaker is not None:  # no verdict on the backend: its probe (if any) is given back
                    breaker.release()
                if free:
                    granted.add(exc.error_type)
                    budget += 1  # once per candidate and kind, not counted against max_attempts
                    continue
                if stream is not None and stream.started:
                    interrupted = True
                    break
                if isinstance(exc, InvalidModelOutput):
                    if exc.error_type in REPAIRABLE and current.repair is None:
                        current, budget = prompt.repaired(exc.error_type), n + 1
                        continue
                    break
                if isinstance(exc, PrivacyViolation) or not exc.retryable or _retry_key(exc) not in retries.retry_on:
                    break
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None and retry_after > retries.backoff_max_s:
                    break  # the server asks for a longer pause than the policy allows: next candidate
                pause = retry_after if retry_after is not None else _backoff(retries, n)
                if n >= budget or pause >= deadline - time.monotonic():
                    break
                time.sleep(pause)
                continue
            if breaker is not None:
                breaker.success()
            rec.add(cand, n, started, wall, "success", answer=answer, repair=current.repair is not None)
            return RouteResult(answer=answer, model=backend.identity(), attempts=rec.attempts,
                               degraded=backend.kind == "deterministic", answered_by=cand.spec.name,
                               warnings=rec.warnings)
        if interrupted:
            break
    if not fallback:
        return RouteResult(answer=None, model=None, attempts=rec.attempts, degraded=True, warnings=rec.warnings)
    det = Candidate(DeterministicBackend(), ModelSpec("deterministic", "deterministic", {}))
    started, wall = time.monotonic(), datetime.now(timezone.utc)
    answer = det.backend.generate(prompt, data_class=data_class, timeout_s=0)
    rec.add(det, 1, started, wall, "success", answer=answer)
    return RouteResult(answer=answer, model=det.backend.identity(), attempts=rec.attempts, degraded=True,
                       stream_interrupted=interrupted, answered_by="deterministic", warnings=rec.warnings)
