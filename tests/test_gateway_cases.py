"""Shared gateway cases owned by observability, by id: gw-08 (keys and client tokens never in logs,
records, metrics, responses or job results; a wrong client token is 401) and gw-14 (the local model still loading: /readyz 503, public traffic
served by hosted, private traffic waits for the local model, never hosted)."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.obs import configure_logging

from .conftest import load_cases, write_clients
from .fakes.fault_server import FaultServer

CASES = load_cases()
GW08 = CASES["gw-08-keys-never-in-logs-records-metrics"]
GW14 = CASES["gw-14-local-model-still-loading"]
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
TX = GW14["input"]["during_load_requests"]["public_explain"]["body"]
PRIVATE_TX = GW14["input"]["during_load_requests"]["private_explain"]["body"]
PRIVATE_CANARY = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"  # the private request's spender
ROUTES = {"public": ("hosted-a", "local-gguf", "deterministic"), "private": ("local-gguf", "deterministic")}
RETRIES = {"max_attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
           "retry_on": [408, 429, 500, 502, 503, 504, "connection", "timeout"], "deadline_s": 30}


def hosted_success_script(case: dict) -> list[dict]:
    body = case["input"]["fake_hosted"]["every_attempt"]["body"] if "fake_hosted" in case["input"] else \
        case["input"]["paths"][0]["fake_hosted"]["body"]
    return [{"content": body["choices"][0]["message"]["content"], "finish_reason": "stop"}]


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more: connection refused


@pytest.fixture
def captured_logs():
    """The service's JSON log at DEBUG (the case's setup), as text."""
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    yield stream
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "auditinf-json"]
    root.setLevel(logging.WARNING)


def test_gw_08_keys_never_in_logs_records_metrics(make_service, fake_local, captured_logs, capfd, tmp_path):
    canaries = GW08["input"]["canaries"]
    forbidden = GW08["expected"]["canary_forms_forbidden_everywhere"]
    hosted_key = canaries["hosted_provider_key"]
    factory = fake_local(chunk_delay_s=0.3 / 8)  # fake_local: a schema-valid answer after ~0.3 s
    budgets = {"budgets": {"default_daily_usd": "100", "clients": {"client-broke": "0"}}}
    clients_file = write_clients(tmp_path / "clients.json", {"client-a": canaries["client_token"],
                                                             "client-broke": canaries["broke_client_token"]})
    services = []

    def app_for(hosted_url: str) -> TestClient:
        service = make_service(public=ROUTES["public"], private=ROUTES["private"], hosted_url=hosted_url,
                               api_key=hosted_key, retries=RETRIES, extra=budgets,
                               local={"path": str(factory.path), "timeout_s": 30},
                               settings={"clients_file": clients_file})
        services.append(service)
        return TestClient(create_app(service.settings, service))

    def headers(token: str, client_id: str = "client-a") -> dict:
        return {"Authorization": f"Bearer {token}", "X-Client-Id": client_id}

    paths = {p["name"]: p for p in GW08["input"]["paths"]}
    responses: dict[str, list] = {}
    success = hosted_success_script(GW08)
    upstream_401 = [{"status": 401, "body": paths["upstream_401_echoing_full_key"]["fake_hosted"]["body"]}]
    upstream_500 = [{"status": 500, "body": paths["upstream_500_echoing_headers"]["fake_hosted"]["body"]}]
    ok_headers = headers(canaries["client_token"])
    for name, script in (("success", success), ("upstream_401_echoing_full_key", upstream_401),
                         ("upstream_500_echoing_headers", upstream_500)):
        with FaultServer(script) as upstream:
            client = app_for(upstream.base_url)
            responses[name] = [client.post("/v1/explain", json=TX, headers=ok_headers),
                               client.post("/v1/explain", json=PRIVATE_TX, headers=ok_headers)]
            assert PRIVATE_CANARY.encode() not in upstream.all_bytes().lower()
            if name == "success":
                sent = {k.lower(): v for k, v in upstream.requests[0]["headers"].items()}
                assert sent["authorization"] == f"Bearer {hosted_key}"  # the key was used
                stream = client.post("/v1/explain?stream=true", json=TX, headers=ok_headers)
                private_stream = client.post("/v1/explain?stream=true", json=PRIVATE_TX, headers=ok_headers)
                responses["streamed_success"] = [stream, private_stream]
                job = client.post("/v1/jobs", json={"kind": "risk", "request": TX}, headers=ok_headers).json()
                deadline = time.monotonic() + 30
                while client.get(f"/v1/jobs/{job['id']}", headers=ok_headers).json()["status"] not in ("done", "failed"):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                responses["job"] = [client.get(f"/v1/jobs/{job['id']}", headers=ok_headers)]
            metrics_text = client.get("/metrics").text
            assert metrics_text.count("auditinf_requests_total{") >= 1
            for form in forbidden:
                assert form not in metrics_text
    client = app_for(closed_port_url())
    responses["upstream_connection_refused"] = [client.post("/v1/explain", json=TX, headers=ok_headers)]
    responses["budget_exhausted"] = [client.post("/v1/explain", json=TX,
                                                 headers=headers(canaries["broke_client_token"], "client-broke"))]
    responses["wrong_client_token"] = [client.post("/v1/explain", json=TX,
                                                   headers=headers(canaries["wrong_client_token"]))]
    responses["malformed_body"] = [client.post("/v1/explain", content=b"{not json",
                                               headers={**ok_headers, "content-type": "application/json"})]
    responses["secret_in_request"] = [client.post("/v1/explain", json={**TX, "note": "0x" + "ab" * 32},
                                                  headers=ok_headers)]
    responses["metrics"] = [client.get("/metrics")]

    expected = GW08["expected"]["http_status_by_path"]
    for name in ("success", "upstream_401_echoing_full_key", "upstream_500_echoing_headers",
                 "upstream_connection_refused", "streamed_success"):
        assert [r.status_code for r in responses[name]] == [expected[name]] * len(responses[name]), name
    broke = responses["budget_exhausted"][0]
    assert broke.status_code == 402 and broke.json()["error"]["code"] == "budget_exhausted"
    assert "client-broke" in broke.json()["error"]["message"]
    assert responses["malformed_body"][0].status_code in (400, 422)
    assert responses["secret_in_request"][0].status_code == 422
    wrong = responses["wrong_client_token"][0]  # not echoed: checked with every other place below
    assert wrong.status_code == expected["wrong_client_token"] == 401
    assert wrong.json()["error"]["code"] == "invalid_token"
    assert wrong.headers["www-authenticate"] == 'Bearer realm="auditinf", error="invalid_token"'
    assert responses["job"][0].json()["status"] == "done"
    assert factory.calls, "the private requests reached the (fake) local model"

    # Everywhere the case lists: responses (bodies and headers), logs (ours and anything else
    # written to stdout/stderr), every file under the ledger directory, metrics, job results.
    captured = capfd.readouterr()
    places = {"logs": captured_logs.getvalue(), "stdout": captured.out, "stderr": captured.err}
    for name, rs in responses.items():
        places[f"response:{name}"] = "\n".join(r.text + "\n" + json.dumps(dict(r.headers)) for r in rs)
    for path in Path(tmp_path).rglob("*"):
        if path.is_file() and path.name != "signing.key":
            places[f"file:{path.name}"] = path.read_bytes().decode("latin-1")
    assert any(name.startswith("file:ledger.db") for name in places)
    for place, text in places.items():
        for form in forbidden:
            assert form not in text, f"{form!r} found in {place}"
    log_lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    assert sum(1 for line in log_lines if line["msg"] == "request") >= 12  # the run was logged, one object a line
    assert any(line.get("error_code") == "budget_exhausted" for line in log_lines)
    assert any(line.get("error_code") == "invalid_token" and line.get("status") == 401 for line in log_lines)
    # Records name clients by registry id, established by their token; the refusal names client-broke.
    ledger = services[-1].ledger  # every service of the run shares the test's ledger
    stored = [json.loads(ledger.get(seq).body) for seq in range(ledger.size())]
    assert {(r["client_id"], r["client_auth"]) for r in stored} == {("client-a", "token"), ("client-broke", "token")}
    assert [r["client_id"] for r in stored if r["kind"] == "refusal" and
            r["refusal"]["code"] == "budget_exhausted"] == ["client-broke"]


def gw14_service(make_service, factory, hosted_url):
    return make_service(public=ROUTES["public"], private=ROUTES["private"], hosted_url=hosted_url,
                        retries=RETRIES, local={"path": str(factory.path), "timeout_s": 30})


def local_state(client: TestClient) -> str:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('auditinf_local_model_state{model="local-gguf"') and line.endswith(" 1.0"):
            return line.split('state="')[1].split('"')[0]
    raise AssertionError("no local model state in /metrics")


def test_gw_14_local_model_still_loading(make_service, fake_local):
    exp = GW14["expected"]
    factory = fake_local(hold_load=True)  # the load takes as long as the test holds it
    with FaultServer(hosted_success_script(GW14)) as upstream:
        service = gw14_service(make_service, factory, upstream.base_url)
        with TestClient(create_app(service.settings, service)) as client:  # start-up begins the load
            assert client.get("/healthz").status_code == exp["status_during_load"]["healthz"]
            ready = client.get("/readyz")
            assert ready.status_code == exp["status_during_load"]["readyz"] == 503
            assert ready.json()["checks"]["local_models"] == {"local-gguf": "loading"}
            assert local_state(client) == "loading"
            started = time.monotonic()
            public = client.post("/v1/explain", json=TX)
            assert public.status_code == 200 and time.monotonic() - started < 2  # no wait for the load
            assert public.json()["model"]["backend"] == "hosted"
            private: list = []
            waiter = threading.Thread(target=lambda: private.append(client.post("/v1/explain", json=PRIVATE_TX)))
            waiter.start()
            time.sleep(0.5)
            assert not private  # waiting for the local model, not answered by anyone else
            factory.release_load()
            loaded = time.monotonic()
            waiter.join(30)
            assert private[0].status_code == exp["status_after_load"]["private_explain"]
            assert private[0].json()["model"]["backend"] == "local" and private[0].json()["degraded"] is False
            while client.get("/readyz").status_code != 200:
                assert time.monotonic() - loaded < 2
                time.sleep(0.05)
            assert local_state(client) == "ready"
            after = client.post("/v1/explain", json=PRIVATE_TX)
            assert after.status_code == 200 and after.json()["model"]["backend"] == "local"
        hosted_bodies = upstream.all_bytes().lower()
    assert len(upstream.requests) == 1  # the public request only
    assert PRIVATE_CANARY.encode() not in hosted_bodies  # exact_hosted_attempts_for_private_requests: 0


def test_gw_14_variant_load_fails(make_service, fake_local):
    factory = fake_local(fail_load=True)  # a truncated GGUF: the load fails for good
    with FaultServer(hosted_success_script(GW14)) as upstream:
        service = gw14_service(make_service, factory, upstream.base_url)
        with TestClient(create_app(service.settings, service)) as client:
            deadline = time.monotonic() + 10
            while local_state(client) == "loading":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["local_models"]["local-gguf"] == "failed: ValueError"
            assert local_state(client) == "failed"
            private = client.post("/v1/explain", json=PRIVATE_TX)
            assert private.status_code == 200 and private.json()["degraded"] is True
            assert private.json()["attempts"][0]["error_type"] == "load_failed"
            public = client.post("/v1/explain", json=TX)  # the process keeps serving public requests
            assert public.status_code == 200 and public.json()["model"]["backend"] == "hosted"
    assert len(upstream.requests) == 1 and PRIVATE_CANARY.encode() not in upstream.all_bytes().lower()
