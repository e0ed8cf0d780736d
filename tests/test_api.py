"""HTTP API: answers with receipts, every error code as a typed 4xx, secrets refused and never stored."""

from __future__ import annotations

import base64
import hashlib
import json

import eth_abi
import pytest
from eth_account import Account
from eth_account.hdaccount.mnemonic import Language, Mnemonic
from eth_utils import function_signature_to_4byte_selector
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.ledger import verify_rows

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
SPENDER = "0x2222222222222222222222222222222222222222"
APPROVE = "0x" + (function_signature_to_4byte_selector("approve(address,uint256)")
                  + eth_abi.encode(["address", "uint256"], [SPENDER, 2**256 - 1])).hex()


@pytest.fixture
def service(det_service):
    return det_service


@pytest.fixture
def client(service) -> TestClient:
    return TestClient(create_app(service.settings, service))


def tx(**over) -> dict:
    return {"chain_id": 1, "from": "0x1111111111111111111111111111111111111111", "to": USDC, "value": "0",
            "data": APPROVE, **over}


def test_risk_answer_shape_and_receipt(client, service):
    response = client.post("/v1/risk", json=tx(), headers={"X-Client-Id": "wallet-1"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["verdict"] == "warning" and answer["risk_level"] == "high"
    assert answer["decoded"]["args"] == {"spender": SPENDER, "value": str(2**256 - 1)}
    assert {f["code"] for f in answer["findings"]} == {"unlimited_approval", "token_approval", "spender_unknown"}
    receipt = answer["receipt"]
    record = client.get(f"/v1/records/{receipt['seq']}").json()
    raw = base64.b64decode(record["body_b64"])
    assert receipt["leaf_hash"] == hashlib.sha256(b"\x00" + raw).hexdigest() == record["leaf_hash"]
    assert record["body"]["client_id"] == "wallet-1" and record["body"]["kind"] == "risk"
    pub = client.get("/v1/pubkey").json()
    assert pub["kid"] == receipt["kid"]
    # the commitment opens with the returned salt
    salt = bytes.fromhex(answer["input_commitment"]["salt"])
    from auditinf.ledger import canonical_bytes
    content = canonical_bytes(record["body"]["input"]["clear"])
    assert answer["input_commitment"]["commitment"] == "sha256:" + hashlib.sha256(
        b"auditinf/input/v1\x00" + salt + content).hexdigest()


def test_explain_native_transfer(client):
    answer = client.post("/v1/explain", json=tx(data="0x", value="500000000000000000", to=SPENDER)).json()
    assert answer["decoded"]["kind"] == "native_transfer" and answer["verdict"] == "benign"
    assert "0.5 ETH" in answer["explanation"]


@pytest.mark.parametrize("override,code,status", [
    ({"data": "0x095ea7b3zz"}, "invalid_hex", 422),
    ({"data": "0x095ea7b"}, "odd_length_hex", 422),
    ({"data": "0x095ea7"}, "calldata_too_short", 422),
    ({"data": APPROVE[:-2]}, "abi_decode_error", 422),
    ({"to": "0x1234"}, "invalid_address", 422),
    ({"value": "-5"}, "invalid_value", 422),
    ({"chain_id": 0}, "invalid_chain_id", 422),
    ({"private": "yes"}, "invalid_request", 422),
    ({"abi": [{"type": "function", "name": "f", "inputs": [{"type": "uint7"}]}]}, "invalid_abi", 422),
    ({"data": "0x" + "00" * (200 * 1024)}, "request_too_large", 413),
])
def test_bad_input_is_typed_and_leaves_no_record(client, service, override, code, status):
    before = service.ledger.size()
    response = client.post("/v1/risk", json=tx(**override))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert service.ledger.size() == before


def test_invalid_json_and_oversize_body(client, service):
    response = client.post("/v1/risk", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_json"
    response = client.post("/v1/risk", content=b"[" + b"1," * 600_000 + b"1]")
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    response = client.post("/v1/risk", json=[1, 2])
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    response = client.post("/v1/risk", json=tx(), headers={"X-Client-Id": "bad id with spaces"})
    assert response.status_code == 422
    assert service.ledger.size() == 0


def _secrets() -> list[tuple[dict, str]]:
    key = "0x" + Account.create().key.hex().removeprefix("0x")
    phrase = Mnemonic(Language.ENGLISH).generate(12)
    keystore = Account.encrypt(Account.create().key, "pw", kdf="pbkdf2", iterations=2)
    return [({"note": key}, "private_key_hex"), ({"memo": f"my words: {phrase}"}, "bip39_mnemonic"),
            ({"wallet": keystore}, "keystore_json"), ({"privateKey": "anything"}, "secret_field_name"),
            ({"data": key}, "private_key_hex")]


@pytest.mark.parametrize("extra,detector", _secrets(), ids=lambda v: v if isinstance(v, str) else "")
def test_secret_refused_recorded_without_secret(client, service, extra, detector):
    response = client.post("/v1/explain", json=tx(**extra))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "secret_in_request" and detector in error["message"]
    secret_text = json.dumps(extra)
    assert all(part not in response.text for part in _leaf_strings(extra))
    record = service.ledger.get(service.ledger.size() - 1)
    body = json.loads(record.body)
    assert body["kind"] == "refusal" and body["data_class"] == "secret"
    assert body["refusal"]["code"] == "secret_in_request"
    assert all(part not in record.body.decode() for part in _leaf_strings(extra)), secret_text


def _leaf_strings(obj) -> list[str]:
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _leaf_strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _leaf_strings(v)]
    return [obj] if isinstance(obj, str) and len(obj) >= 8 else []


def test_calldata_words_are_not_mistaken_for_keys(client):
    assert client.post("/v1/risk", json=tx()).status_code == 200  # 32-byte words inside data are fine


def test_methods_from_abi_and_errors(client):
    abi = [{"type": "function", "name": "transfer", "stateMutability": "nonpayable", "outputs": [],
            "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}]}]
    answer = client.post("/v1/methods", json={"abi": abi}).json()
    assert answer["methods"][0]["selector"] == "0xa9059cbb" and answer["source"] == "abi"
    assert client.post("/v1/methods", json={}).json()["error"]["code"] == "invalid_request"
    assert client.post("/v1/methods", json={"bytecode": "0x"}).json()["error"]["code"] == "invalid_bytecode"
    assert client.post("/v1/methods", json={"abi": "nope"}).json()["error"]["code"] == "invalid_abi"


def test_records_not_found_and_openapi(client):
    response = client.get("/v1/records/999")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    spec = client.get("/openapi.json").json()
    assert {"/v1/explain", "/v1/risk", "/v1/methods", "/v1/records/{seq}", "/v1/pubkey", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/v1/risk"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "data" in body["anyOf"][0]["properties"]  # a transaction, or a signing request (anyOf[1])


def test_ledger_after_api_traffic_verifies(client, service):
    for i in range(5):
        client.post("/v1/risk", json=tx())
        client.post("/v1/risk", json=tx(data="0x0"))  # refused, not recorded
    rows = list(service.ledger.rows())
    assert verify_rows(rows, {service.ledger.signer.kid: service.ledger.signer.verifier}) == 5
