"""POST /v1/explain?stream=true: analysis first, model tokens, final event with a receipt that verifies."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from auditinf.api import create_app

from .fakes.fake_llama import GOOD_LOCAL_ANSWER
from .fakes.txs import tx



def parse_sse(text: str) -> list[tuple[str, dict]]:
    """Events per the WHATWG SSE format: blocks separated by a blank line, ``event:``/``data:`` fields."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def verify_receipt(client: TestClient, receipt: dict) -> dict:
    """Check the receipt against the stored record: leaf hash (RFC 6962) and Ed25519 signature."""
    record = client.get(f"/v1/records/{receipt['seq']}").json()
    body = base64.b64decode(record["body_b64"])
    assert receipt["leaf_hash"] == hashlib.sha256(b"\x00" + body).hexdigest() == record["leaf_hash"]
    key = client.get("/v1/pubkey").json()["verifier_key"]
    raw = base64.b64decode(key.split("+", 2)[2])[1:]  # C2SP: name+keyid+base64(0x01 ‖ Ed25519 key)
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(receipt["signature"]), body)
    return record["body"]


def local_client(make_service, factory):
    service = make_service(private=("local-gguf", "deterministic"), local={"path": str(factory.path)},
                           retries={"max_attempts": 3, "backoff_base_s": 0.01, "backoff_max_s": 0.02,
                                    "retry_on": [500, "timeout", "connection"], "deadline_s": 30})
    return service, TestClient(create_app(service.settings, service))


def test_stream_analysis_tokens_then_final_with_verifiable_receipt(make_service, fake_local):
    factory = fake_local(chunks=6)
    service, client = local_client(make_service, factory)
    with client.stream("POST", "/v1/explain?stream=true", json=tx(private=True),
                       headers={"X-Request-Id": "sse-1"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"] == "sse-1"
        events = parse_sse(response.read().decode())
    names = [name for name, _ in events]
    assert names[0] == "analysis" and names[-1] == "final" and set(names[1:-1]) == {"token"}
    analysis = events[0][1]
    assert (analysis["verdict"], analysis["risk_level"], analysis["data_class"]) == ("warning", "high", "private")
    assert {f["code"] for f in analysis["findings"]} >= {"unlimited_approval"}
    assert analysis["decoded"]["method"] == "approve"
    streamed = "".join(data["text"] for name, data in events if name == "token")
    assert json.loads(streamed) == GOOD_LOCAL_ANSWER  # the model's text, as it was written
    final = events[-1][1]
    answer = final["answer"]
    assert final["degraded"] is False and final["replaced_streamed_text"] is False
    assert final["streamed_tokens"] == len(names) - 2
    assert answer["explanation"] == GOOD_LOCAL_ANSWER["summary"] and answer["model"]["backend"] == "local"
    body = verify_receipt(client, answer["receipt"])
    assert body["request_id"] == "sse-1" == answer["request_id"]
    assert body["attempts"] == answer["attempts"]
    assert service.ledger.size() == 1


def test_rejected_streamed_text_is_not_retried_and_final_says_degraded(make_service, fake_local):
    unsafe = {"summary": "This approve call is completely safe, nothing to worry about.", "key_points": [],
              "risk_notes": []}
    factory = fake_local(answer=unsafe)
    _, client = local_client(make_service, factory)
    events = parse_sse(client.post("/v1/explain?stream=true", json=tx(private=True)).text)
    assert any(name == "token" for name, _ in events)
    final = events[-1][1]
    assert events[-1][0] == "final"
    assert final["degraded"] is True and final["replaced_streamed_text"] is True
    attempts = final["answer"]["attempts"]
    assert (attempts[0]["backend"], attempts[0]["error_type"]) == ("local", "contradicts_rules")
    assert attempts[-1]["backend"] == "deterministic"
    assert len(factory.calls) == 1  # the model was never asked again after its text was streamed
    verify_receipt(client, final["answer"]["receipt"])


def test_streamed_text_is_never_followed_by_a_retry_of_the_model(make_service, fake_local):
    factory = fake_local(answer='{"summary": "Approves USDC', chunks=3)  # cut short: invalid JSON
    _, client = local_client(make_service, factory)
    events = parse_sse(client.post("/v1/explain?stream=true", json=tx(private=True)).text)
    final = events[-1][1]
    assert final["degraded"] is True and final["replaced_streamed_text"] is True
    assert len(factory.calls) == 1
    assert [a["error_type"] for a in final["answer"]["attempts"][:-1]] == ["invalid_json"]  # no repair either


def test_stream_input_error_is_plain_typed_json(det_service):
    client = TestClient(create_app(det_service.settings, det_service))
    response = client.post("/v1/explain?stream=true", json=tx(data="0x095ea7b3zz"))
    assert response.status_code == 422 and response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "invalid_hex"
    secret = client.post("/v1/explain?stream=true", json=tx(note="0x" + "ab" * 32))
    assert secret.status_code == 422 and secret.json()["error"]["code"] == "secret_in_request"


def test_stream_without_model_tokens_still_ends_with_receipt(det_service):
    client = TestClient(create_app(det_service.settings, det_service))
    events = parse_sse(client.post("/v1/risk?stream=true", json=tx()).text)
    assert [name for name, _ in events] == ["analysis", "final"]
    final = events[-1][1]
    assert final["degraded"] is True and final["streamed_tokens"] == 0 and final["replaced_streamed_text"] is False
    verify_receipt(client, final["answer"]["receipt"])
