"""Regression tests for faults found by attacking a fresh install (each named after the fault)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.hdaccount.mnemonic import Language, Mnemonic
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from auditinf.api import create_app
from auditinf.cli import app as cli_app
from auditinf.ledger import verify_rows

from .fakes.fault_server import FaultServer

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
APPROVE = "0x095ea7b3" + ("22" * 20).rjust(64, "0") + "f" * 64
KEY = Account.create().key.hex().removeprefix("0x")
PHRASE = Mnemonic(Language.ENGLISH).generate(12)


@pytest.fixture
def client(det_service) -> TestClient:
    return TestClient(create_app(det_service.settings, det_service))


def tx(**over) -> dict:
    return {"chain_id": 1, "to": USDC, "value": "0", "data": APPROVE, **over}


def assert_refused(client, service, response, code: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert service.ledger.size() == 0


def test_deeply_nested_json_is_refused_not_a_crash(client, det_service):
    for raw in ("[" * 100_000, json.dumps({**tx(), "x": json.loads("[" * 500 + "]" * 500)})):
        response = client.post("/v1/risk", content=raw, headers={"content-type": "application/json"})
        assert_refused(client, det_service, response, "invalid_json")


def test_deep_abi_tuple_refused_before_any_record(client, det_service):
    component = {"name": "x", "type": "uint256"}
    for _ in range(13):
        component = {"name": "t", "type": "tuple", "components": [component]}
    abi = [{"type": "function", "name": "f", "inputs": [component], "outputs": []}]
    assert_refused(client, det_service, client.post("/v1/methods", json={"abi": abi}), "invalid_abi")


def test_nested_abi_within_limits_records_and_verifies(client, det_service):
    component = {"name": "x", "type": "uint256[]"}
    for _ in range(8):
        component = {"name": "t", "type": "tuple", "components": [component]}
    abi = [{"type": "function", "name": "f", "inputs": [component], "outputs": []}]
    assert client.post("/v1/methods", json={"abi": abi}).status_code == 200
    ledger = det_service.ledger
    assert verify_rows(ledger.rows(), {ledger.signer.kid: ledger.signer.verifier}) == 1


def test_lone_surrogate_refused(client, det_service):
    raw = json.dumps(tx(note="\ud800"))  # json.dumps escapes it as \ud800
    response = client.post("/v1/risk", content=raw, headers={"content-type": "application/json"})
    assert_refused(client, det_service, response, "invalid_json")


@pytest.mark.parametrize("chain_id,code", [(2**53, "invalid_chain_id"), (2**64 - 1, "invalid_chain_id"),
                                           ("-1", "invalid_chain_id"), ("0x", "invalid_chain_id")])
def test_chain_id_limits(client, det_service, chain_id, code):
    assert_refused(client, det_service, client.post("/v1/risk", json=tx(chain_id=chain_id)), code)


def test_huge_integer_literal_refused(client, det_service):
    raw = '{"chain_id": ' + "9" * 5000 + ', "to": "' + USDC + '"}'
    response = client.post("/v1/risk", content=raw, headers={"content-type": "application/json"})
    assert_refused(client, det_service, response, "invalid_json")


@pytest.mark.parametrize("components", ["ab", {"x": 1}, ["x"]])
def test_components_on_non_tuple_refused(client, det_service, components):
    abi = [{"type": "function", "name": "f", "outputs": [],
            "inputs": [{"name": "a", "type": "uint256", "components": components}]}]
    assert_refused(client, det_service, client.post("/v1/methods", json={"abi": abi}), "invalid_abi")


@pytest.mark.parametrize("override", [{"data": []}, {"data": {}}, {"data": 0}, {"data": "0x", "abi": ""},
                                      {"data": "0x", "abi": {}}, {"data": "0x", "abi": 0}])
def test_wrong_types_are_not_taken_as_empty(client, det_service, override):
    response = client.post("/v1/risk", json=tx(**override))
    assert response.status_code == 422 and det_service.ledger.size() == 0


def test_bytecode_with_data_refused(client, det_service):
    response = client.post("/v1/methods", json={"bytecode": "0x6000", "data": "0xzz"})
    assert_refused(client, det_service, response, "invalid_hex")
    response = client.post("/v1/methods", json={"bytecode": "0x6000", "data": "0x12345678"})
    assert_refused(client, det_service, response, "invalid_request")


@pytest.mark.parametrize("override", [{"data": []}, {"data": 0}, {"to": ""}, {"to": 0}, {"chain_id": "x"}])
def test_methods_side_fields_validated(client, det_service, override):
    abi = [{"type": "function", "name": "f", "inputs": [], "outputs": []}]
    assert client.post("/v1/methods", json={"abi": abi, **override}).status_code == 422
    assert det_service.ledger.size() == 0


def test_http_errors_use_the_error_shape(client):
    response = client.get("/v1/records/99999999999999999999")
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    response = client.delete("/v1/risk")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/nope").json()["error"]["code"] == "not_found"


def test_decode_error_does_not_echo_input_bytes(client):
    # transfer(address,uint256) with a dirty address word (approval-family calls are read leniently
    # as ABI coder v1 contracts read them, attack report 3; transfer is decoded strictly)
    dirty = "0xa9059cbb" + "ff" * 32 + "00" * 31 + "01"
    error = client.post("/v1/risk", json=tx(to="0xdAC17F958D2ee523a2206206994597C13D831ec7", data=dirty)).json()
    assert error["error"]["code"] == "abi_decode_error" and "\\xff" not in error["error"]["message"]


def abi_named(name: str) -> list[dict]:
    return [{"type": "function", "name": "approve", "outputs": [],
             "inputs": [{"name": name, "type": "address"}, {"name": "v", "type": "uint256"}]}]


@pytest.mark.parametrize("where", [
    {"note": f"my key is 0x{KEY}, keep it"},
    {"words": PHRASE.split()},
    {"privateKeyHex": "x"},
    {"mnemonicPhrase": "x"},
    {"value": "0x" + KEY},
    {"abi": abi_named("k" + KEY)},
    {"abi": [{"type": "function", "name": "_".join(PHRASE.split()), "inputs": [], "outputs": []}]},
])
def test_secrets_in_more_places_refused(client, det_service, where):
    response = client.post("/v1/risk", json=tx(**where))
    assert response.status_code == 422 and response.json()["error"]["code"] == "secret_in_request"
    stored = det_service.ledger.get(0).body.decode()
    assert KEY not in stored and PHRASE.split()[3] not in stored.split('"refusal"')[1]


def test_secret_in_client_id_header_refused_and_redacted(client, det_service):
    response = client.post("/v1/risk", json=tx(), headers={"X-Client-Id": KEY})
    assert response.status_code == 422 and response.json()["error"]["code"] == "secret_in_request"
    record = json.loads(det_service.ledger.get(0).body)
    assert record["client_id"] == "[redacted]" and KEY not in json.dumps(record)


def test_invented_address_in_model_text_is_rejected(make_service):
    invented = {"summary": "Lets 0xA2B3E6F8D4795CBAABBB spend your tokens.", "key_points": [], "risk_notes": []}
    with FaultServer([{"answer": invented}]) as upstream:
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=upstream.base_url)
        answer = service.risk(tx())
    assert answer["attempts"][0]["error_type"] == "unsupported_claim" and answer["degraded"] is True


def test_cli_input_errors_are_json_exit_2(tmp_path: Path, det_service):
    runner = CliRunner()
    env = {"AUDITINF_KEY_FILE": str(det_service.settings.key_file), "AUDITINF_LEDGER_URL": det_service.ledger.url}
    result = runner.invoke(cli_app, ["methods", "--bytecode", f"@{tmp_path / 'missing.hex'}"], env=env)
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["code"] == "invalid_request"
    binary = tmp_path / "key.pub"
    binary.write_bytes(b"\xff\xfe\x00binary")
    result = runner.invoke(cli_app, ["verify", "--pubkey", str(binary)], env=env)
    assert result.exit_code == 2 and "error" in json.loads(result.stdout)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    result = runner.invoke(cli_app, ["risk", str(deep)], env=env)
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["code"] == "invalid_json"


def test_utf16_body_cannot_bypass_the_depth_limit(client, det_service):
    raw = ('{"x":"\u2200","chain_id":1,"to":"' + USDC + '","y":' + "[" * 3000 + "]" * 3000 + "}").encode("utf-16-le")
    response = client.post("/v1/risk", content=raw, headers={"content-type": "application/json"})
    assert_refused(client, det_service, response, "invalid_json")


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}'])
def test_non_json_numbers_refused(client, det_service, raw):
    response = client.post("/v1/risk", content=raw, headers={"content-type": "application/json"})
    assert_refused(client, det_service, response, "invalid_json")


def test_big_numbers_inside_a_client_abi_do_not_break_the_record(client, det_service):
    abi = abi_named("spender")
    abi[0]["gas"] = 2**64
    response = client.post("/v1/risk", json=tx(abi=abi))
    assert response.status_code == 200 and det_service.ledger.size() == 1


def test_duplicate_parameter_names_refused(client, det_service):
    abi = [{"type": "function", "name": "transfer", "outputs": [],
            "inputs": [{"name": "to", "type": "address"}, {"name": "to", "type": "uint256"}]}]
    assert_refused(client, det_service, client.post("/v1/risk", json=tx(abi=abi)), "invalid_abi")


def test_unnamed_argument_cannot_shadow_a_named_one():
    from auditinf.evm import analyse_call, default_registry, parse_abi, parse_transaction

    abi = [{"type": "function", "name": "transfer", "outputs": [],
            "inputs": [{"name": "arg1", "type": "address"}, {"name": "", "type": "uint256"}]}]
    call = analyse_call(parse_transaction(tx(data="0xa9059cbb" + "00" * 12 + "22" * 20 + "00" * 31 + "05")),
                        default_registry(), parse_abi(abi))
    assert call.decoded.args == {"arg1": "0x" + "22" * 20, "_arg1": "5"}


@pytest.mark.parametrize("where", [
    {"data": "0X" + KEY},
    {"abi": [{"type": "function", "name": "".join(w.capitalize() for w in PHRASE.split()), "inputs": [],
              "outputs": []}]},
    {"abi": [{"type": "function", "name": "f", "outputs": [],
              "inputs": [{"name": w, "type": "uint256"} for w in PHRASE.split()]}]},
    {"value": str(int(KEY, 16))},
])
def test_more_secret_routes_closed(client, det_service, where):
    response = client.post("/v1/risk", json=tx(**where))
    assert response.status_code == 422
    assert response.json()["error"]["code"] in ("secret_in_request", "invalid_value")
    assert all(KEY not in row.body.decode() for row in det_service.ledger.rows())


def test_secret_inside_a_field_name_is_not_echoed(client, det_service):
    response = client.post("/v1/risk", json=tx(**{f"privateKey=0x{KEY}": True}))
    assert response.json()["error"]["code"] == "secret_in_request" and KEY not in response.text
    assert KEY not in det_service.ledger.get(0).body.decode()


def test_eth_with_a_nonpayable_call(client):
    transfer = "0xa9059cbb" + ("22" * 20).rjust(64, "0") + "00" * 31 + "05"
    abi = [{"type": "function", "name": "transfer", "stateMutability": "nonpayable", "outputs": [],
            "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}]}]
    answer = client.post("/v1/risk", json=tx(data=transfer, value="1000", abi=abi)).json()
    assert "native_value_to_nonpayable" in {f["code"] for f in answer["findings"]}


@pytest.mark.parametrize("mutation", [
    {"content": json.dumps({"summary": "Approves \ud800 spender", "key_points": [], "risk_notes": []},
                           ensure_ascii=True)},
    {"usage_tokens": 2**60},
])
def test_misbehaving_hosted_model_still_answered_and_recorded(make_service, mutation):
    script = [{"content": mutation["content"]}] if "content" in mutation else [{}]
    with FaultServer(script) as upstream:
        if "usage_tokens" in mutation:
            original = upstream._completion

            def huge_usage(content, finish):
                body = original(content, finish)
                body["usage"] = {"prompt_tokens": mutation["usage_tokens"], "completion_tokens": 1}
                return body
            upstream._completion = huge_usage
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=upstream.base_url)
        answer = service.risk(tx())
    assert answer["receipt"]["seq"] == 0
    ledger = service.ledger
    assert verify_rows(ledger.rows(), {ledger.signer.kid: ledger.signer.verifier}) == 1


def test_crafted_dispatcher_refused_quickly(client):
    entry = lambda i: bytes([0x80, 0x63]) + i.to_bytes(4, "big") + bytes([0x14, 0x61, 0x00, 0x05, 0x57])  # noqa: E731
    code = bytes.fromhex("60003560e01c") + b"".join(entry(i) for i in range(5000)) + b"\x00"
    response = client.post("/v1/methods", json={"bytecode": "0x" + code.hex()})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_bytecode"


def test_content_length_over_limit_refused_before_reading(client):
    response = client.post("/v1/risk", content=b"{}", headers={"content-type": "application/json",
                                                                "content-length": str(10**9)})
    assert response.status_code == 413
