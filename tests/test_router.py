"""Router behaviour: circuit breaker, costs, repair retry, version pinning, streaming guard,
Retry-After and deadline bounds."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest

from auditinf import service as service_module
from auditinf.errors import UpstreamError
from auditinf.inference import Breakers, Candidate, StreamSink, build_prompt, route
from auditinf.inference.hosted import _retry_after
from auditinf.obs.context import RequestContext, bind_request
from auditinf.policy import parse_policy

from .conftest import ROOT
from .fakes.backends import ScriptedBackend
from .fakes.fault_server import GOOD_ANSWER, FaultServer
from .test_inference import body, hosted_service, stored

FAST = {"max_attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
        "retry_on": [429, 500, 503, "timeout", "connection"], "deadline_s": 30}
FACTS = {"to": "0x" + "11" * 20, "value_wei": "0", "value_eth": "0", "risk_level": "none", "verdict": "ok",
         "call": {"kind": "call", "method": "approve", "signature": "approve(address,uint256)", "args": {}},
         "findings": []}


def policy(retries=None, **extra):
    doc = {"id": "t", "version": "1",
           "models": {"a": {"backend": "local", "price_usd_per_1m": {"input": "2", "output": "4"}},
                      "b": {"backend": "local"}, "deterministic": {"backend": "deterministic"}},
           "routes": {k: {"public": ["a", "b"], "private": ["a", "b"]} for k in ("explain", "risk", "methods")},
           "retries": retries or FAST, "classification": {}, **extra}
    return parse_policy(json.dumps(doc).encode())


def run(pol, *backends, **kw):
    cands = [Candidate(b, pol.models[name]) for name, b in zip(("a", "b"), backends)]
    return route(build_prompt("explain", FACTS), candidates=cands, data_class="public", policy=pol,
                 risk_level="none", **kw)


def test_open_circuit_skips_backend_then_half_open_probe_closes_it(make_service):
    with FaultServer([{"status": 500}, {"status": 500}, {"answer": GOOD_ANSWER}]) as upstream:
        service = hosted_service(make_service, upstream, retries=dict(FAST, max_attempts=1),
                                 extra={"circuit_breaker": {"open_after_consecutive_failures": 2, "open_s": 0.3}})
        first, second = service.risk(body()), service.risk(body())
        assert [a["error_type"] for a in first["attempts"][:1] + second["attempts"][:1]] == ["server_error"] * 2
        assert service.breakers.states() == {"hosted-a": "open"}
        third = service.risk(body())
        assert len(upstream.requests) == 2  # skipped: no request reached the server
        assert third["attempts"][0]["outcome"] == "circuit_open" and third["degraded"] is True
        assert stored(service, third["receipt"]["seq"])["attempts"][0]["outcome"] == "circuit_open"
        time.sleep(0.35)
        assert service.breakers.states() == {"hosted-a": "half_open"}
        fourth = service.risk(body())
    assert len(upstream.requests) == 3 and fourth["model"]["backend"] == "hosted"
    assert service.breakers.states() == {"hosted-a": "closed"}


def test_cost_is_computed_from_usage_and_prices(make_service):
    # the fault server reports 100 prompt + 20 completion tokens per call
    price = {"price_usd_per_1m": {"input": "1.00", "output": "2.00"}}
    with FaultServer([{"content": '{"summary": "cut', "finish_reason": "length"}, {"answer": GOOD_ANSWER}]) as up:
        service = hosted_service(make_service, up, hosted=price, retries=dict(FAST, max_attempts=1))
        answer = service.risk(body())
    per_call = (100 * Decimal("1.00") + 20 * Decimal("2.00")) / 10**6
    assert [a["cost_usd"] for a in answer["attempts"]] == [str(per_call), str(per_call)]
    assert answer["attempts"][0]["error_type"] == "truncated" and answer["attempts"][0]["tokens_out"] == 20
    record = stored(service, answer["receipt"]["seq"])
    assert Decimal(record["cost_usd"]) == 2 * per_call


def test_truncated_output_gets_one_repair_with_a_different_prompt(make_service):
    with FaultServer([{"content": '{"summary": "cut', "finish_reason": "length"}, {"answer": GOOD_ANSWER}]) as up:
        service = hosted_service(make_service, up, retries=dict(FAST, max_attempts=1))
        answer = service.risk(body())
        bodies = [r["body"] for r in up.requests]
    assert len(bodies) == 2 and bodies[0] != bodies[1]  # never a byte-identical re-send
    assert "cut off" in json.loads(bodies[1])["messages"][1]["content"]
    assert [(a["outcome"], a["repair"]) for a in answer["attempts"]] == [("error", False), ("success", True)]
    assert answer["model"]["backend"] == "hosted"


def test_invalid_json_repaired_once_then_next_candidate():
    a = ScriptedBackend(name="a", script=[("Hello! How can I help?", "stop")])
    b = ScriptedBackend(name="b")
    result = run(policy(), a, b)
    assert len(a.calls) == 2 and len(b.calls) == 1  # max_attempts is 3, but output errors get one repair only
    assert a.calls[1][1].repair == "invalid_json" and a.calls[1][1].user != a.calls[0][1].user
    assert result.answered_by == "b"


def test_pinned_version_mismatch_is_a_recorded_warning(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}], model="gpt-test-2026-02-02") as up:
        service = hosted_service(make_service, up, hosted={"pinned_version": "gpt-test-2026-01-01"})
        answer = service.risk(body())
    assert answer["model"]["backend"] == "hosted"  # a warning, not a failure
    assert answer["attempts"][0]["warning"] == "version_mismatch"
    assert answer["attempts"][0]["response_model"] == "gpt-test-2026-02-02"
    record = stored(service, answer["receipt"]["seq"])
    assert record["warnings"] == [{"code": "version_mismatch", "model": "hosted-a", "pinned": "gpt-test-2026-01-01",
                                   "served": "gpt-test-2026-02-02"}]


def test_matching_pinned_version_has_no_warning(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}], model="gpt-test-2026-01-01") as up:
        service = hosted_service(make_service, up, hosted={"pinned_version": "gpt-test-2026-01-01"})
        answer = service.risk(body())
    assert answer["attempts"][0]["warning"] is None
    assert "warnings" not in stored(service, answer["receipt"]["seq"])


class StreamingBackend(ScriptedBackend):
    streams = True

    def generate(self, prompt, *, data_class, timeout_s, stream=None):
        stream.emit("Approves ")
        return super().generate(prompt, data_class=data_class, timeout_s=timeout_s)


def test_no_retry_or_fallback_model_after_a_streamed_token():
    a = StreamingBackend(name="a", script=[UpstreamError("boom", status=500, error_type="server_error", retryable=True)])
    b = ScriptedBackend(name="b")
    chunks: list[str] = []
    result = run(policy(), a, b, stream=StreamSink(chunks.append))
    assert chunks == ["Approves "] and len(a.calls) == 1 and b.calls == []
    assert result.stream_interrupted and result.answered_by == "deterministic"


def test_before_any_streamed_token_a_failure_is_retried():
    a = ScriptedBackend(name="a", script=[UpstreamError("boom", status=500, error_type="server_error",
                                                        retryable=True), GOOD_ANSWER])
    sink = StreamSink()
    result = run(policy(), a, ScriptedBackend(name="b"), stream=sink)
    assert not sink.started and len(a.calls) == 2 and result.answered_by == "a"


def test_retry_after_longer_than_backoff_max_moves_to_next_candidate():
    rate = UpstreamError("429", status=429, error_type="rate_limited", retryable=True)
    rate.retry_after = 30.0
    a, b = ScriptedBackend(name="a", script=[rate]), ScriptedBackend(name="b")
    started = time.monotonic()
    result = run(policy(), a, b)
    assert len(a.calls) == 1 and result.answered_by == "b" and time.monotonic() - started < 1


def test_backoff_never_sleeps_past_the_deadline():
    err = UpstreamError("503", status=503, error_type="server_error", retryable=True)
    pol = policy({"max_attempts": 5, "backoff_base_s": 5, "backoff_max_s": 5, "retry_on": [503], "deadline_s": 0.5})
    a = ScriptedBackend(name="a", script=[err])
    started = time.monotonic()
    run(pol, a, ScriptedBackend(name="b"))
    assert time.monotonic() - started < 0.5 + 0.2


@pytest.mark.parametrize("crash,error_type", [
    (ValueError("Requested tokens (612) exceed context window of 256"), "context_overflow"),
    (ValueError("from_string: error parsing grammar file: parsed_grammar.rules is empty"), "structured_output_setup"),
    (RuntimeError("llama_decode returned -1"), "decode_failed"),
    (KeyError("x"), "backend_error"),
])
def test_backend_crashes_get_specific_error_types(crash, error_type):
    result = run(policy(), ScriptedBackend(name="a", script=[crash]), ScriptedBackend(name="b"))
    assert result.attempts[0].error_type == error_type and result.answered_by == "b"


def test_failures_of_a_candidate_feed_its_breaker():
    pol = policy(circuit_breaker={"open_after_consecutive_failures": 2, "open_s": 60})
    breakers = Breakers()
    a = ScriptedBackend(name="a", script=[RuntimeError("llama_decode returned -1")])
    for _ in range(3):
        result = run(pol, a, ScriptedBackend(name="b"), breakers=breakers)
    assert len(a.calls) == 2 and result.attempts[0].outcome == "circuit_open"
    assert breakers.states() == {"a": "open", "b": "closed"}


def test_service_records_a_stream_interrupted_by_a_failing_model(make_service, monkeypatch):
    failing = StreamingBackend("local", "local-gguf", [RuntimeError("llama_decode returned -1")])
    real = service_module.make_backend
    monkeypatch.setattr(service_module, "make_backend",
                        lambda spec, settings: failing if spec.backend == "local" else real(spec, settings))
    service = make_service(public=("local-gguf", "deterministic"), retries=FAST)
    chunks: list[str] = []
    with bind_request(RequestContext(request_id="stream-1", stream=StreamSink(chunks.append))):
        answer = service.explain(body())
    assert chunks == ["Approves "] and len(failing.calls) == 1  # no retry after the streamed text
    record = stored(service, answer["receipt"]["seq"])
    assert record["stream_interrupted"] is True and record["request_id"] == "stream-1"
    assert [a["model"] for a in record["attempts"]] == ["local-gguf", "deterministic"]


@pytest.mark.parametrize("header,seconds", [
    ("2", 2.0), ("0.5", 0.5), ("-3", 0.0),
    ("Sun, 29 Nov 2026 12:00:30 GMT", 30.0),   # RFC 9110 HTTP-date, 30 s after "now"
    ("Sun, 29 Nov 2026 11:59:00 GMT", 0.0),    # in the past: retry now
    ("soon", None), (None, None),
])
def test_retry_after_header_forms(header, seconds):
    response = httpx.Response(429, headers={"retry-after": header} if header is not None else {})
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
    assert _retry_after(response, now) == seconds


def test_answer_refused_by_the_guards_still_records_its_tokens_and_cost():
    calm = {"summary": "Approves 0xdeadbeefdeadbeef to spend.", "key_points": [], "risk_notes": []}
    a = ScriptedBackend(name="a", script=[calm], tokens=(1000, 500), response_model="m-1")
    result = run(policy(), a, ScriptedBackend(name="b"))
    first = result.attempts[0]
    assert first.error_type == "unsupported_claim" and (first.tokens_in, first.tokens_out) == (1000, 500)
    assert Decimal(first.cost_usd) == (1000 * 2 + 500 * 4) / Decimal(10**6) and first.response_model == "m-1"


def test_deterministic_template_is_not_judged_by_the_model_guards(det_service):
    """A call whose signature holds brackets (``aggregate3((address,bool,bytes)[])``) is answered by
    the deterministic candidate in one attempt: the model-output guards (which refuse brackets in a
    model's summary) do not reject the rules' own template."""
    sample = json.loads((ROOT / "abi_samples" / "transactions" / "multicall3_aggregate3_hidden_approve.json").read_text())
    body = {k: sample[k] for k in ("chain_id", "from", "to", "value", "data")}
    answer = det_service.risk(body)
    assert "[]" in answer["decoded"]["signature"]
    assert [(a["backend"], a["outcome"]) for a in answer["attempts"]] == [("deterministic", "success")]
