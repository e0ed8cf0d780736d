"""Transparency-log endpoints: every proof is checked as an auditor would — the signed note opened
with :func:`open_checkpoint` and the verifier key from ``/v1/pubkey``, the leaf hashed from the
record's ``body_b64``, and the RFC 9162 verifiers of :mod:`auditinf.ledger.merkle`."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app, ledger_routes
from auditinf.ledger import Ledger, merkle, parse_verifier_key
from auditinf.ledger.note import NoteVerifier, open_checkpoint
from auditinf.service import Service


@pytest.fixture
def client(det_service) -> TestClient:
    return TestClient(create_app(det_service.settings, det_service))


def auditor_open(client: TestClient, note: str):
    verifier = parse_verifier_key(client.get("/v1/pubkey").json()["verifier_key"])
    checkpoint, _ = open_checkpoint(note.encode(), verifier.name, [NoteVerifier.from_log_key(verifier)])
    return checkpoint


def leaf_of(client: TestClient, seq: int) -> bytes:
    body = base64.b64decode(client.get(f"/v1/records/{seq}").json()["body_b64"])
    return hashlib.sha256(b"\x00" + body).digest()


def fill(ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append({"kind": "test", "i": i})


def test_inclusion_proof_of_every_record_verifies_against_the_signed_checkpoint(client, det_service: Service):
    fill(det_service.ledger, 13)
    for seq in range(13):
        answer = client.get(f"/v1/records/{seq}/proof").json()
        checkpoint = auditor_open(client, answer["checkpoint"]["note"])
        assert checkpoint.size == answer["tree_size"] == 13 and checkpoint.root.hex() == answer["checkpoint"]["root_hash"]
        assert answer["leaf_hash"] == leaf_of(client, seq).hex()
        merkle.verify_inclusion(seq, checkpoint.size, leaf_of(client, seq),
                                [bytes.fromhex(p) for p in answer["proof"]], checkpoint.root)
    assert [c.size for c in det_service.ledger.checkpoints()] == [13]  # signed once, on the first request


def test_proof_against_an_older_checkpoint_and_consistency_to_the_latest(client, det_service: Service):
    ledger = det_service.ledger
    fill(ledger, 6)
    ledger.checkpoint_now()
    fill(ledger, 9)
    ledger.checkpoint_now()
    old = client.get("/v1/checkpoints/6").json()
    latest = client.get("/v1/checkpoints/latest").json()
    assert latest["size"] == 15 and latest["origin"] == "test.auditinf/ledger"
    answer = client.get("/v1/records/4/proof", params={"tree_size": 6}).json()
    merkle.verify_inclusion(4, 6, leaf_of(client, 4), [bytes.fromhex(p) for p in answer["proof"]],
                            auditor_open(client, old["note"]).root)
    for frm in (1, 5, 6, 15):
        proof = client.get("/v1/consistency", params={"from": frm, "to": 15}).json()
        assert proof["from"] == frm and proof["to"] == 15
        first_root = merkle.root([leaf_of(client, s) for s in range(frm)])
        merkle.verify_consistency(frm, 15, first_root, auditor_open(client, proof["checkpoint"]["note"]).root,
                                  [bytes.fromhex(p) for p in proof["proof"]])
        assert (proof["from_checkpoint"] is not None) == (frm in (6, 15))
    default = client.get("/v1/consistency", params={"from": 6}).json()
    merkle.verify_consistency(6, 15, auditor_open(client, old["note"]).root,
                              auditor_open(client, default["checkpoint"]["note"]).root,
                              [bytes.fromhex(p) for p in default["proof"]])


@pytest.mark.parametrize("path, params, status, code", [
    ("/v1/checkpoints/7", None, 404, "checkpoint_not_found"),
    ("/v1/records/3/proof", {"tree_size": 7}, 404, "checkpoint_not_found"),
    ("/v1/records/5/proof", {"tree_size": 5}, 422, "seq_not_in_tree"),
    ("/v1/records/99/proof", None, 404, "not_found"),
    ("/v1/records/-1/proof", None, 422, "invalid_request"),
    ("/v1/records/1/proof", {"tree_size": "x"}, 422, "invalid_request"),
    ("/v1/consistency", {"from": 4, "to": 3}, 422, "invalid_range"),  # attack report 15: reversed range
    ("/v1/consistency", {"from": 5, "to": 3}, 422, "invalid_range"),
    ("/v1/consistency", {"from": 2, "to": 4}, 404, "checkpoint_not_found"),
    ("/v1/consistency", {"from": 6, "to": 5}, 422, "invalid_range"),
    ("/v1/consistency", {"from": 0, "to": 5}, 422, "invalid_range"),
    ("/v1/consistency", {"to": 5}, 422, "invalid_request"),
    ("/v1/checkpoints/99999999999999999999", None, 422, "invalid_request"),
])
def test_bad_requests_are_typed(client, det_service: Service, path, params, status, code):
    fill(det_service.ledger, 5)
    det_service.ledger.checkpoint_now()
    response = client.get(path, params=params)
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text


def test_no_checkpoint_yet_is_404(client):
    response = client.get("/v1/checkpoints/latest")
    assert response.status_code == 404 and response.json()["error"]["code"] == "checkpoint_not_found"
    assert client.get("/v1/consistency", params={"from": 1}).status_code == 404
    # the range is checked before any checkpoint lookup (attack report 15)
    for params in ({"from": 0}, {"from": 5, "to": 3}):
        response = client.get("/v1/consistency", params=params)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_range", params


def covered(ledger: Ledger) -> int:
    latest = ledger.latest_checkpoint()
    return 0 if latest is None else latest.size


def test_idle_heartbeat_covers_every_record(det_service: Service, monkeypatch):
    ledger = det_service.ledger
    ledger.checkpoint_every_records, ledger.checkpoint_every_s = 10**6, 600  # appends alone never sign
    fill(ledger, 3)
    assert covered(ledger) == 0
    monkeypatch.setattr(ledger_routes, "HEARTBEAT_MAX_S", 0.05)
    with TestClient(create_app(det_service.settings, det_service)):
        deadline = time.monotonic() + 10
        while covered(ledger) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert covered(ledger) == 3  # signed by the idle heartbeat


def test_shutdown_signs_a_last_checkpoint(det_service: Service):
    ledger = det_service.ledger
    ledger.checkpoint_every_records, ledger.checkpoint_every_s = 10**6, 600
    with TestClient(create_app(det_service.settings, det_service)):
        fill(ledger, 2)
        assert covered(ledger) == 0
    assert covered(ledger) == 2


def test_inconsistent_store_answers_503(client, det_service: Service, tmp_path):
    ledger = det_service.ledger
    fill(ledger, 4)
    ledger.checkpoint_now()
    with sqlite3.connect(ledger.url.split("///", 1)[1]) as conn:
        conn.execute("DELETE FROM record WHERE seq = 3")
    response = client.post("/v1/explain", json={"chain_id": 1, "to": "0x" + "11" * 20, "data": "0x"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "ledger_inconsistent"
    assert client.get("/v1/checkpoints/4").status_code == 200  # reads keep working for the audit
