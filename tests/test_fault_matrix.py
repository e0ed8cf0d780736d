"""The fault matrix: every fault our fake hosted server can inject, against the real service.

For each fault: the request is answered (fallback or degraded answer), hosted attempts are
bounded by the policy (max_attempts, plus one repair for bad output), every wire request is an
attempt in the record, and the circuit breaker opens, skips and closes as configured. Privacy
canary: for private requests no byte of the request reaches the hosted server under any fault,
even when a forged policy puts the hosted model on the private route.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from .fakes.fault_server import GOOD_ANSWER, FaultServer
from .test_inference import SPENDER_CANARY, body, stored

RETRIES = {"max_attempts": 2, "backoff_base_s": 0.01, "backoff_max_s": 1.5,
           "retry_on": [429, 500, 503, "timeout", "connection"], "deadline_s": 20}
BREAKER = {"open_after_consecutive_failures": 3, "open_s": 0.4, "half_open_probes": 1}

# fault → (server script, expected hosted error types for one request)
FAULTS = {
    "429_retry_after": ([{"status": 429, "retry_after": 1}], ["rate_limited"] * 2),
    "500": ([{"status": 500}], ["server_error"] * 2),
    "503": ([{"status": 503}], ["server_error"] * 2),
    "connection_reset": ([{"reset": True}], ["connection"] * 2),
    "hang_past_timeout": ([{"hang": 30}], ["timeout"] * 2),
    "slow_stream": ([{"slow": 4.0}], ["timeout"] * 2),
    "malformed_json_body": ([{"raw": '{"id": "x", "choices": [{"message": '}], ["malformed_response"]),
    "malformed_json_content": ([{"content": "Sure! {summary: approves"}], ["invalid_json"] * 2),
    "truncated_json_length": ([{"content": '{"summary": "Approves a spe', "finish_reason": "length"}],
                              ["truncated"] * 2),
}


def service_for(make_service, upstream, hosted=None):
    return make_service(public=("hosted-a", "deterministic"), private=("deterministic",), hosted_url=upstream.base_url,
                        hosted={"timeout_s": 0.6, **(hosted or {})}, retries=RETRIES,
                        extra={"circuit_breaker": BREAKER})


def hosted(answer: dict) -> list[dict]:
    return [a for a in answer["attempts"] if a["backend"] == "hosted"]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_answered_bounded_recorded_and_trips_the_breaker(fault, make_service):
    script, error_types = FAULTS[fault]
    with FaultServer(script) as upstream:
        service = service_for(make_service, upstream)
        started = time.monotonic()
        first = service.risk(body())
        elapsed = time.monotonic() - started
        # answered: the degraded answer still carries the rules' verdict and findings
        assert first["degraded"] is True and first["model"]["backend"] == "deterministic"
        assert first["risk_level"] == "high" and "unlimited_approval" in {f["code"] for f in first["findings"]}
        # bounded: max_attempts (2) transport retries, or one repair for bad output
        attempts = hosted(first)
        assert 1 <= len(attempts) <= 2 and len(attempts) == len(upstream.requests)
        assert all(a["outcome"] == "error" for a in attempts)
        assert [a["error_type"] for a in attempts] == error_types
        assert elapsed < 2 * 0.6 + 1.5 + 1.0
        # recorded: the stored record lists exactly the attempts the client was told about
        assert stored(service, first["receipt"]["seq"])["attempts"] == first["attempts"]
        # the breaker opens after 3 consecutive failures and then skips the backend
        while service.breakers.states().get("hosted-a") != "open":
            service.risk(body())
        sent = len(upstream.requests)
        skipped = service.risk(body())
        assert len(upstream.requests) == sent and skipped["attempts"][0]["outcome"] == "circuit_open"
        assert stored(service, skipped["receipt"]["seq"])["attempts"][0]["outcome"] == "circuit_open"
        # half-open after the cool-down: one probe; success closes the breaker
        upstream.script = [{"answer": GOOD_ANSWER}]
        time.sleep(BREAKER["open_s"] + 0.05)
        healed = service.risk(body())
    assert healed["model"]["backend"] == "hosted" and service.breakers.states() == {"hosted-a": "closed"}


def test_failed_half_open_probe_reopens(make_service):
    with FaultServer([{"status": 503}]) as upstream:
        service = service_for(make_service, upstream)
        while service.breakers.states().get("hosted-a") != "open":
            service.risk(body())
        time.sleep(BREAKER["open_s"] + 0.05)
        sent = len(upstream.requests)
        probe = service.risk(body())
        assert len(upstream.requests) == sent + 1  # exactly one probe, then open again
        assert [a["outcome"] for a in hosted(probe)] == ["error", "circuit_open"]
        assert service.breakers.states() == {"hosted-a": "open"}


def test_wrong_model_name_is_answered_with_a_recorded_warning(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}], model="gpt-test-2099-01-01") as upstream:
        service = service_for(make_service, upstream, hosted={"pinned_version": "gpt-test-2026-01-01"})
        answer = service.risk(body())
    assert answer["model"]["backend"] == "hosted" and len(upstream.requests) == 1
    assert answer["attempts"][0]["warning"] == "version_mismatch"
    assert stored(service, answer["receipt"]["seq"])["warnings"][0]["served"] == "gpt-test-2099-01-01"


@pytest.mark.parametrize("fault", sorted(FAULTS) + ["healthy"])
def test_private_request_never_reaches_hosted_under_any_fault(fault, make_service):
    script = FAULTS[fault][0] if fault != "healthy" else [{"answer": GOOD_ANSWER}]
    with FaultServer(script) as upstream:
        service = service_for(make_service, upstream)
        answer = service.risk(body(private=True))
        # defence in depth: a forged policy (the loader would refuse it) that routes private data
        # to the hosted model first is still refused by the router and by the backend
        forged = {k: {"public": v["public"], "private": ("hosted-a", "deterministic")}
                  for k, v in service.policy.routes.items()}
        service.policy = dataclasses.replace(service.policy, routes=forged)
        forged_answer = service.risk(body(private=True))
        assert upstream.requests == [] and SPENDER_CANARY[2:].encode() not in upstream.all_bytes()
    assert answer["data_class"] == forged_answer["data_class"] == "private"
    assert forged_answer["attempts"][0]["outcome"] == "refused"
    assert forged_answer["attempts"][0]["error_type"] == "privacy_violation"
