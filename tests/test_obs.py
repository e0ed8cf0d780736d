"""Observability: /metrics (own registry), request ids in headers/logs/records, JSON logs, /readyz."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from auditinf.api import create_app
from auditinf.obs import configure_logging

from .fakes.fault_server import FaultServer
from .fakes.txs import tx



def samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as ``{(name, sorted label items): value}``."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def client(det_service) -> TestClient:
    return TestClient(create_app(det_service.settings, det_service))


def test_metrics_count_requests_by_kind_class_status_and_time_the_ledger(client, det_service):
    for _ in range(3):
        assert client.post("/v1/risk", json=tx()).status_code == 200
    assert client.post("/v1/explain", json=tx(private=True)).status_code == 200
    assert client.post("/v1/risk", json=tx(data="0x0")).status_code == 422
    m = samples(client)
    assert value(m, "auditinf_requests_total", kind="risk", data_class="public", status="200") == 3
    assert value(m, "auditinf_requests_total", kind="explain", data_class="private", status="200") == 1
    assert value(m, "auditinf_requests_total", kind="risk", data_class="unknown", status="422") == 1
    assert value(m, "auditinf_request_duration_seconds_count", kind="risk") == 4
    # every route here is the deterministic backend: 4 degraded answers, 4 successful attempts
    assert value(m, "auditinf_degraded_answers_total", kind="risk", data_class="public") == 3
    assert value(m, "auditinf_model_attempts_total", backend="deterministic", model="deterministic",
                 outcome="success", error_type="") == 4
    # one ledger append per answered request, each timed
    assert value(m, "auditinf_ledger_append_duration_seconds_count") == det_service.ledger.size() == 4


def test_metrics_registry_is_per_app(det_service):
    first = TestClient(create_app(det_service.settings, det_service))
    second = TestClient(create_app(det_service.settings, det_service))
    first.post("/v1/risk", json=tx())
    assert value(samples(first), "auditinf_requests_total", kind="risk", data_class="public", status="200") == 1
    assert value(samples(second), "auditinf_requests_total", kind="risk", data_class="public", status="200") == 0


def test_hosted_tokens_fallbacks_and_attempt_errors(make_service):
    with FaultServer([{"answer": {"summary": "Approves a spender to move USDC tokens.", "key_points": [],
                                  "risk_notes": []}}]) as ok:
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=ok.base_url)
        client = TestClient(create_app(service.settings, service))
        answer = client.post("/v1/risk", json=tx()).json()
        assert answer["model"]["backend"] == "hosted", answer["attempts"]
        m = samples(client)
    # the fault server reports usage 100 prompt / 20 completion tokens
    assert value(m, "auditinf_model_tokens_total", backend="hosted", model="hosted-a", direction="input") == 100
    assert value(m, "auditinf_model_tokens_total", backend="hosted", model="hosted-a", direction="output") == 20
    assert value(m, "auditinf_fallbacks_total", kind="risk") == 0
    with FaultServer([{"status": 500}]) as failing:
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=failing.base_url)
        client = TestClient(create_app(service.settings, service))
        assert client.post("/v1/risk", json=tx()).json()["degraded"] is True
        m = samples(client)
    assert value(m, "auditinf_model_attempts_total", backend="hosted", model="hosted-a", outcome="error",
                 error_type="server_error") == len(failing.requests) == 1
    assert value(m, "auditinf_model_attempt_duration_seconds_count", backend="hosted", model="hosted-a") == 1
    assert value(m, "auditinf_fallbacks_total", kind="risk") == 1


def test_request_id_is_returned_logged_and_recorded(client, det_service):
    response = client.post("/v1/risk", json=tx(), headers={"X-Request-Id": "wallet-req.42"})
    assert response.headers["x-request-id"] == "wallet-req.42"
    record = json.loads(det_service.ledger.get(response.json()["receipt"]["seq"]).body)
    assert record["request_id"] == response.json()["request_id"] == "wallet-req.42"
    generated = client.post("/v1/risk", json=tx())
    assert uuid.UUID(generated.headers["x-request-id"]).version == 4
    assert generated.json()["request_id"] == generated.headers["x-request-id"]
    # refused secret: the refusal record carries the request id too
    refused = client.post("/v1/risk", json=tx(note="0x" + "ab" * 32), headers={"X-Request-Id": "req-secret"})
    assert refused.status_code == 422 and refused.headers["x-request-id"] == "req-secret"
    assert json.loads(det_service.ledger.get(det_service.ledger.size() - 1).body)["request_id"] == "req-secret"


@pytest.mark.parametrize("bad", ["has spaces", "x" * 65, "ab" * 32, "0x" + "cd" * 31])
def test_malformed_or_key_like_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-Id": bad})
    assert response.headers["x-request-id"] != bad
    assert uuid.UUID(response.headers["x-request-id"]).version == 4


def test_json_logs_one_object_per_line_with_request_id(client):
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        client.post("/v1/risk", json=tx(), headers={"X-Request-Id": "log-test-1"})
        client.post("/v1/risk", content=b"{not json", headers={"X-Request-Id": "log-test-2"})
        logging.getLogger("httpx").debug("third-party debug line with Bearer sk-should-never-appear")
    finally:
        logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers if h.get_name() != "auditinf-json"]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    requests = {line["request_id"]: line for line in lines if line["msg"] == "request"}
    ok, bad = requests["log-test-1"], requests["log-test-2"]
    assert (ok["status"], ok["route"], ok["kind"], ok["data_class"], ok["degraded"]) == (
        200, "/v1/risk", "risk", "public", True)
    assert (bad["status"], bad["error_code"]) == (422, "invalid_json")
    assert "sk-should" not in stream.getvalue()  # other libraries' debug records are dropped


def test_log_scrubber_removes_registered_secrets_and_key_shapes():
    from auditinf.obs.logs import RedactingFilter

    redactor = RedactingFilter(["sk-canary-SECRET-12345678"])
    import base64
    encoded = base64.b64encode(b"sk-canary-SECRET-12345678").decode()
    text = (f"key sk-canary-SECRET-12345678 b64 {encoded} header Authorization: Bearer abc.def-123 "
            f"pk {'ab' * 32} client token ak-Zx9_Qw-7")
    scrubbed = redactor.scrub(text)
    assert "canary" not in scrubbed and encoded not in scrubbed and "abc.def" not in scrubbed
    assert "ab" * 32 not in scrubbed and "Zx9_Qw" not in scrubbed and scrubbed.count("[redacted]") == 5


def test_healthz_and_readyz_when_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"policy": "ok", "ledger": "ok", "local_models": {}},
                               "client_auth": "declared",  # no client registry: reported, not unready
                               "warnings": ["client authentication is off: no client registry "
                                            "(AUDITINF_CLIENTS_FILE), X-Client-Id is self-declared"]}


def test_readyz_503_when_ledger_not_writable(det_service, tmp_path):
    path = tmp_path / "ledger.db"  # the det_service ledger's file, opened read-only
    det_service.ledger.engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    response = TestClient(create_app(det_service.settings, det_service)).get("/readyz")
    assert response.status_code == 503
    assert re.match(r"not writable: \w+", response.json()["checks"]["ledger"])


def test_readyz_503_while_local_model_loads_then_200(make_service, fake_local):
    factory = fake_local(hold_load=True)
    service = make_service(public=("local-gguf", "deterministic"), local={"path": str(factory.path)})
    with TestClient(create_app(service.settings, service)) as client:  # lifespan starts the load
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["local_models"] == {"local-gguf": "loading"}
        assert value(samples(client), "auditinf_local_model_state", model="local-gguf", state="loading") == 1
        factory.release_load()
        service.backend("local-gguf").warm_up(timeout_s=10)
        assert client.get("/readyz").status_code == 200
        m = samples(client)
        assert value(m, "auditinf_local_model_state", model="local-gguf", state="ready") == 1
        assert value(m, "auditinf_local_queue_capacity", model="local-gguf") == 8


def test_circuit_state_and_cost_in_metrics(make_service):
    with FaultServer([{"status": 500}]) as failing:
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=failing.base_url,
                               extra={"circuit_breaker": {"open_after_consecutive_failures": 2, "open_s": 60}})
        client = TestClient(create_app(service.settings, service))
        for _ in range(3):
            assert client.post("/v1/risk", json=tx()).status_code == 200
        m = samples(client)
    assert len(failing.requests) == 2  # the third request found the circuit open
    assert value(m, "auditinf_circuit_state", backend="hosted-a", state="open") == 1
    assert value(m, "auditinf_circuit_state", backend="hosted-a", state="closed") == 0
    assert value(m, "auditinf_model_attempts_total", backend="hosted", model="hosted-a", outcome="circuit_open",
                 error_type="") == 1
    priced = {"hosted-a": {"backend": "hosted", "timeout_s": 2.0, "max_tokens": 128,
                           "price_usd_per_1m": {"input": "1.00", "output": "2.00"}}}
    with FaultServer() as ok:  # usage: 100 prompt + 20 completion tokens
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=ok.base_url,
                               extra={"models": priced})
        client = TestClient(create_app(service.settings, service))
        answer = client.post("/v1/risk", json=tx()).json()
        m = samples(client)
    cost = float(answer["attempts"][0]["cost_usd"])
    assert cost == pytest.approx((100 * 1.00 + 20 * 2.00) / 1e6)
    assert value(m, "auditinf_model_cost_usd_total", backend="hosted", model="hosted-a") == pytest.approx(cost)
