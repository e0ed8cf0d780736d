"""Prometheus metrics for one app, in its own :class:`~prometheus_client.CollectorRegistry`
(never the process-global one, so two apps — or two tests — never share counters).

Label values are bounded: request kinds, data classes, HTTP statuses, policy model names,
backend kinds, outcomes and error types. Never a client id, a request id or any input.

| metric | type | labels |
|---|---|---|
| ``auditinf_requests_total`` | counter | kind, data_class, status |
| ``auditinf_request_duration_seconds`` | histogram | kind |
| ``auditinf_model_attempts_total`` | counter | backend, model, outcome, error_type |
| ``auditinf_model_attempt_duration_seconds`` | histogram | backend, model |
| ``auditinf_ledger_append_duration_seconds`` | histogram | |
| ``auditinf_model_tokens_total`` | counter | backend, model, direction (input/output) |
| ``auditinf_model_cost_usd_total`` | counter | backend, model |
| ``auditinf_fallbacks_total`` | counter | kind |
| ``auditinf_degraded_answers_total`` | counter | kind, data_class |
| ``auditinf_local_queue_depth`` / ``_capacity`` | gauge | model |
| ``auditinf_local_queue_rejections_total`` | counter | |
| ``auditinf_local_model_state`` | gauge (1 for the current state) | model, state |
| ``auditinf_circuit_state`` | gauge (1 for the current state) | backend, state |
| ``auditinf_jobs`` | gauge | status |
"""

from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LEDGER = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
LOCAL_STATES = ("unloaded", "loading", "ready", "failed")
CIRCUIT_STATES = ("closed", "half_open", "open")


class _StateCollector(Collector):
    """Gauges read at scrape time from live objects (queues, model load states, breakers, jobs)."""

    def __init__(self) -> None:
        self.local_models: Callable[[], Iterable[tuple[str, str, int, int]]] = lambda: ()
        self.circuits: Callable[[], dict[str, str]] = dict
        self.jobs: Callable[[], dict[str, int]] = dict

    def collect(self):  # noqa: ANN201 - prometheus_client API
        depth = GaugeMetricFamily("auditinf_local_queue_depth", "Local model requests queued or running",
                                  labels=["model"])
        capacity = GaugeMetricFamily("auditinf_local_queue_capacity", "Local model queue size (waiting slots)",
                                     labels=["model"])
        state = GaugeMetricFamily("auditinf_local_model_state", "Local model load state (1 = current)",
                                  labels=["model", "state"])
        for model, current, queued, size in self.local_models():
            depth.add_metric([model], queued)
            capacity.add_metric([model], size)
            for s in LOCAL_STATES:
                state.add_metric([model, s], 1.0 if s == current else 0.0)
        circuit = GaugeMetricFamily("auditinf_circuit_state", "Circuit breaker state per backend (1 = current)",
                                    labels=["backend", "state"])
        for backend, current in self.circuits().items():
            for s in CIRCUIT_STATES:
                circuit.add_metric([backend, s], 1.0 if s == current else 0.0)
        jobs = GaugeMetricFamily("auditinf_jobs", "Async jobs in the job table by status", labels=["status"])
        for status, count in self.jobs().items():
            jobs.add_metric([status], count)
        yield from (depth, capacity, state, circuit, jobs)


def _usd(value: Any) -> float | None:
    try:
        return float(Decimal(str(value))) if value is not None else None
    except (InvalidOperation, ValueError):
        return None


class Metrics:
    """The app's metrics. ``observe_answer`` takes an answer dict as the service returns it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("auditinf_requests_total", "Answered or refused requests",
                                ["kind", "data_class", "status"], registry=r)
        self.request_seconds = Histogram("auditinf_request_duration_seconds", "Request latency, end to end",
                                         ["kind"], buckets=_LATENCY, registry=r)
        self.attempts = Counter("auditinf_model_attempts_total", "Model attempts by outcome",
                                ["backend", "model", "outcome", "error_type"], registry=r)
        self.attempt_seconds = Histogram("auditinf_model_attempt_duration_seconds", "Model attempt latency",
                                         ["backend", "model"], buckets=_LATENCY, registry=r)
        self.ledger_seconds = Histogram("auditinf_ledger_append_duration_seconds",
                                        "Ledger append latency (sign + durable commit)", buckets=_LEDGER, registry=r)
        self.tokens = Counter("auditinf_model_tokens_total", "Model tokens", ["backend", "model", "direction"],
                              registry=r)
        self.cost = Counter("auditinf_model_cost_usd_total", "Model cost in USD (from recorded attempt costs)",
                            ["backend", "model"], registry=r)
        self.fallbacks = Counter("auditinf_fallbacks_total", "Answers given by a later route candidate than the "
                                 "first one tried", ["kind"], registry=r)
        self.degraded = Counter("auditinf_degraded_answers_total", "Deterministic (degraded) answers",
                                ["kind", "data_class"], registry=r)
        self.queue_rejections = Counter("auditinf_local_queue_rejections_total",
                                        "Requests refused with 503 queue_full", registry=r)
        self.state = _StateCollector()
        r.register(self.state)

    def instrument_ledger(self, ledger: Any) -> None:
        """Time ``ledger.append`` (sign + durable commit) into ``auditinf_ledger_append_duration_seconds``.

        Wraps the instance's method once; a later app over the same ledger takes the timing over.
        """
        original = getattr(ledger, "_untimed_append", None) or ledger.append
        histogram = self.ledger_seconds

        def append(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        ledger._untimed_append = original
        ledger.append = append

    def render(self) -> bytes:
        """The text exposition format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def observe_request(self, kind: str, data_class: str | None, status: int, seconds: float) -> None:
        self.requests.labels(kind, data_class or "unknown", str(status)).inc()
        self.request_seconds.labels(kind).observe(seconds)

    def observe_answer(self, kind: str, answer: dict[str, Any]) -> None:
        """Attempts, tokens, cost, fallback and degraded flag of one answer."""
        attempts = answer.get("attempts") or []
        for a in attempts:
            backend, model = str(a.get("backend")), str(a.get("model"))
            self.attempts.labels(backend, model, str(a.get("outcome")), str(a.get("error_type") or "")).inc()
            if a.get("outcome") not in ("skipped", "refused"):
                self.attempt_seconds.labels(backend, model).observe(float(a.get("duration_ms") or 0) / 1000)
            for direction, key in (("input", "tokens_in"), ("output", "tokens_out")):
                if isinstance(a.get(key), int) and a[key] > 0:
                    self.tokens.labels(backend, model, direction).inc(a[key])
            cost = _usd(a.get("cost_usd"))
            if cost:
                self.cost.labels(backend, model).inc(cost)
        tried = [a.get("model") for a in attempts if a.get("outcome") not in ("skipped",)]
        answered = attempts[-1].get("model") if attempts else None
        if tried and answered != tried[0]:
            self.fallbacks.labels(kind).inc()
        if answer.get("degraded"):
            self.degraded.labels(kind, str(answer.get("data_class"))).inc()
