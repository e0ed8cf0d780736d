"""The local model's bounded queue (503 queue_full before any work) and async jobs."""

from __future__ import annotations

import base64
import hashlib
import threading
import time

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.ledger import verify_rows
from .fakes.txs import tx



def local_service(make_service, factory, **settings):
    return make_service(public=("local-gguf", "deterministic"), private=("local-gguf", "deterministic"),
                        local={"path": str(factory.path), "timeout_s": 30}, settings=settings)


def wait_until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_full_queue_is_refused_with_503_and_retry_after_before_any_work(make_service, fake_local):
    factory = fake_local(hold_generation=True)
    service = local_service(make_service, factory, local_queue_size=1)
    client = TestClient(create_app(service.settings, service))
    worker = service.backend("local-gguf").worker
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(client.post("/v1/explain", json=tx(private=True))))
               for _ in range(2)]
    threads[0].start()
    assert factory.generation_started.wait(10)  # one running…
    threads[1].start()
    wait_until(lambda: worker.full())           # …and one waiting: the queue (size 1) is full
    before = service.ledger.size()
    refused = client.post("/v1/explain", json=tx(private=True))
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "queue_full"
    assert int(refused.headers["retry-after"]) >= 1
    assert service.ledger.size() == before  # refused before any work: no record
    metrics = client.get("/metrics").text
    assert "auditinf_local_queue_rejections_total 1.0" in metrics
    assert 'auditinf_local_queue_depth{model="local-gguf"} 2.0' in metrics
    factory.release_generation()
    for t in threads:
        t.join(20)
    assert [r.status_code for r in results] == [200, 200]
    assert all(r.json()["model"]["backend"] == "local" for r in results)
    assert len(factory.calls) == 2  # one generation at a time, none lost


def test_local_attempt_times_out_in_the_queue_and_falls_back(make_service, fake_local):
    factory = fake_local(hold_generation=True)
    service = make_service(private=("local-gguf", "deterministic"),
                           local={"path": str(factory.path), "timeout_s": 0.3})
    blocker = threading.Thread(target=lambda: service.explain(tx(private=True)))
    blocker.start()
    assert factory.generation_started.wait(10)
    answer = service.explain(tx(private=True))  # waits behind the running one past its deadline
    assert answer["degraded"] is True
    assert [(a["backend"], a["error_type"]) for a in answer["attempts"][:1]] == [("local", "timeout")]
    factory.release_generation()
    blocker.join(20)


def test_job_runs_in_background_and_returns_answer_with_verifiable_receipt(make_service, fake_local):
    factory = fake_local(hold_generation=True)
    service = local_service(make_service, factory)
    client = TestClient(create_app(service.settings, service))
    response = client.post("/v1/jobs", json={"kind": "risk", "request": tx(private=True)},
                           headers={"X-Request-Id": "job-req-1", "X-Client-Id": "agent-7"})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["kind"] == "risk" and job["request_id"] == "job-req-1"
    assert factory.generation_started.wait(10)
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "running"
    factory.release_generation()
    wait_until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "done")
    done = client.get(f"/v1/jobs/{job['id']}").json()
    answer = done["result"]
    assert answer["verdict"] == "warning" and answer["model"]["backend"] == "local"
    record = client.get(f"/v1/records/{answer['receipt']['seq']}").json()
    raw = base64.b64decode(record["body_b64"])
    assert answer["receipt"]["leaf_hash"] == hashlib.sha256(b"\x00" + raw).hexdigest()
    assert record["body"]["request_id"] == "job-req-1" and record["body"]["client_id"] == "agent-7"
    signer = service.ledger.signer
    assert verify_rows(list(service.ledger.rows()), {signer.kid: signer.verifier}) == 1
    m = client.get("/metrics").text
    assert 'auditinf_jobs{status="done"} 1.0' in m
    assert 'auditinf_requests_total{data_class="private",kind="risk",status="200"} 1.0' in m


def test_job_with_bad_input_fails_with_the_typed_error(det_service):
    client = TestClient(create_app(det_service.settings, det_service))
    job = client.post("/v1/jobs", json={"kind": "explain", "request": tx(data="0x095ea7b3zz")}).json()
    wait_until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["status"] == "failed")
    failed = client.get(f"/v1/jobs/{job['id']}").json()
    assert failed["error"]["code"] == "invalid_hex" and "result" not in failed
    assert det_service.ledger.size() == 0


@pytest.mark.parametrize("envelope", [{"kind": "gossip", "request": {}}, {"request": {}}, {"kind": "risk"},
                                      [1], {"kind": "risk", "request": {}, "extra": 1}])
def test_bad_job_envelope_is_422(det_service, envelope):
    client = TestClient(create_app(det_service.settings, det_service))
    response = client.post("/v1/jobs", json=envelope)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_unknown_job_is_typed_404(det_service):
    client = TestClient(create_app(det_service.settings, det_service))
    for job_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = client.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        assert job_id not in response.text


def test_job_table_is_bounded_and_finished_jobs_expire(make_service):
    service = make_service(settings={"jobs_max": 2, "job_ttl_s": 0.5})
    client = TestClient(create_app(service.settings, service))
    ids = [client.post("/v1/jobs", json={"kind": "risk", "request": tx()}).json()["id"] for _ in range(2)]
    wait_until(lambda: all(client.get(f"/v1/jobs/{i}").json()["status"] == "done" for i in ids))
    full = client.post("/v1/jobs", json={"kind": "risk", "request": tx()})
    assert full.status_code == 503 and full.json()["error"]["code"] == "job_table_full"
    assert int(full.headers["retry-after"]) >= 1
    time.sleep(0.6)
    assert client.get(f"/v1/jobs/{ids[0]}").status_code == 404  # expired
    assert client.post("/v1/jobs", json={"kind": "risk", "request": tx()}).status_code == 202
