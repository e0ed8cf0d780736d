"""EIP-712 typed data and signing requests: strict validation, hashes, recognition, the API."""

from __future__ import annotations

import copy
import json

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.errors import BadTypedData, InputError
from auditinf.evm.signing import parse_signing_request, secret_scan_view
from auditinf.evm.typed import field_listing, hash_typed_data, parse_typed_data, read_typed_data
from auditinf.evm.typed.schema import MAX_DEPTH, MAX_VALUES
from auditinf.policy import find_secret

from .typed_builders import (DRAINER, SIGNER, U160, U256, USDC, USDT, dai_permit, eip2612, eth_account_digest,
                             mail, permit2_batch, permit2_single, permit2_transfer, request, safe_tx, seaport_order)

ALL = {"eip2612": eip2612(), "dai": dai_permit(), "permit2_single": permit2_single(),
       "permit2_batch": permit2_batch([USDC, USDT]), "permit2_transfer": permit2_transfer(),
       "permit2_witness": permit2_transfer(witness=True), "seaport": seaport_order(0), "safe": safe_tx(1),
       "mail": mail()}


@pytest.mark.parametrize("name", sorted(ALL))
def test_digest_matches_eth_account_signing(name):
    typed = parse_typed_data(ALL[name])
    assert hash_typed_data(typed).digest == eth_account_digest(ALL[name])


def test_eip712_specification_mail_vector():
    # EIP-712 "Example" (Mail from Cow to Bob): the values printed by the specification's example.js
    hashes = hash_typed_data(parse_typed_data(mail()))
    assert hashes.domain_separator == "0xf2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
    assert hashes.struct_hash == "0xc52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
    assert hashes.digest == "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"


@pytest.mark.parametrize("name,standard", [
    ("eip2612", "eip2612_permit"), ("dai", "dai_permit"), ("permit2_single", "permit2_single"),
    ("permit2_batch", "permit2_batch"), ("permit2_transfer", "permit2_transfer"),
    ("permit2_witness", "permit2_witness_transfer"), ("seaport", "seaport_order"), ("safe", "safe_tx"),
    ("mail", None)])
def test_recognised_standards(name, standard):
    assert read_typed_data(parse_typed_data(ALL[name])).standard == standard


def test_renamed_field_is_not_recognised():
    typed = eip2612()
    typed["types"]["Permit"][2]["name"] = "amount"
    typed["message"]["amount"] = typed["message"].pop("value")
    assert read_typed_data(parse_typed_data(typed)).standard is None


def test_permit_readings():
    dai = read_typed_data(parse_typed_data(dai_permit(allowed=True)))
    assert dai.grants[0].amount == U256 and dai.grants[0].unlimited
    assert read_typed_data(parse_typed_data(dai_permit(allowed=False))).grants == []
    single = read_typed_data(parse_typed_data(permit2_single(amount=U160)))
    assert single.grants[0].unlimited and single.grants[0].amount_bits == 160
    assert single.display["details.amount"] == "unlimited (2^160-1)"
    assert single.display["details.expiration"] == "never / 9999-12-31 or later (max uint48)"
    assert not read_typed_data(parse_typed_data(permit2_single(amount=10**6))).grants[0].unlimited
    batch = read_typed_data(parse_typed_data(permit2_batch([USDC, USDT])))
    assert [g.token for g in batch.grants] == [USDC, USDT]
    seaport = read_typed_data(parse_typed_data(seaport_order(5)))
    assert [c["recipient"] for c in seaport.summary["consideration_to_offerer"]] == [SIGNER]


def test_unknown_type_lists_every_field():
    listing = field_listing(parse_typed_data(mail()))
    assert [(f["path"], f["type"]) for f in listing] == [
        ("from.name", "string"), ("from.wallet", "address"), ("to.name", "string"), ("to.wallet", "address"),
        ("contents", "string")]


def _mutate(fn) -> dict:
    typed = copy.deepcopy(eip2612())
    fn(typed)
    return typed


@pytest.mark.parametrize("mutation,field", [
    (lambda t: t.pop("domain"), "domain"),
    (lambda t: t.update(extra=1), "extra"),
    (lambda t: t["types"].pop("EIP712Domain"), "types.EIP712Domain"),
    (lambda t: t.update(primaryType="Nope"), "primaryType"),
    (lambda t: t.update(primaryType="EIP712Domain"), "primaryType"),
    (lambda t: t["types"]["Permit"].append({"name": "x", "type": "Missing"}), "types.Permit[5].type"),
    (lambda t: t["types"]["Permit"].append({"name": "owner", "type": "uint8"}), "types.Permit[5].name"),
    (lambda t: t["types"]["Permit"][0].update(extra="y"), "types.Permit[0]"),
    (lambda t: t["types"]["EIP712Domain"].append({"name": "evil", "type": "string"}), "types.EIP712Domain[4]"),
    (lambda t: t["types"].update(uint256=[{"name": "a", "type": "bool"}]), "types.uint256"),
    (lambda t: t["message"].update(hidden="not signed"), "message.hidden"),
    (lambda t: t["message"].pop("nonce"), "message.nonce"),
    (lambda t: t["message"].update(value=str(2**256)), "message.value"),
    (lambda t: t["message"].update(value=-1), "message.value"),
    (lambda t: t["message"].update(value=1.5), "message.value"),
    (lambda t: t["message"].update(value=True), "message.value"),
    (lambda t: t["message"].update(spender="0x1234"), "message.spender"),
    (lambda t: t["message"].update(spender="0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB4B"), "message.spender"),
    (lambda t: t["domain"].update(chainId="one"), "domain.chainId"),
    (lambda t: t["domain"].update(name=7), "domain.name"),
])
def test_strict_validation(mutation, field):
    with pytest.raises(BadTypedData) as err:
        parse_typed_data(_mutate(mutation))
    assert err.value.code == "invalid_typed_data" and err.value.field == field
    assert "0x2222" not in err.value.message  # values are never echoed


def test_value_shapes():
    typed = {"types": {"EIP712Domain": [], "T": [
        {"name": "b", "type": "bytes2"}, {"name": "flag", "type": "bool"}, {"name": "xs", "type": "int8[2]"}]},
        "primaryType": "T", "domain": {}, "message": {"b": "0x0102", "flag": False, "xs": [-128, "127"]}}
    parsed = parse_typed_data(typed)
    assert parsed.message == {"b": "0x0102", "flag": False, "xs": ["-128", "127"]}
    for key, bad in (("b", "0x01"), ("b", "0102"), ("flag", 1), ("xs", [1]), ("xs", [1, 128])):
        with pytest.raises(BadTypedData):
            parse_typed_data({**typed, "message": {**typed["message"], key: bad}})


def test_bounds_recursive_type_and_value_count():
    node = {"name": "n", "type": "uint8"}
    deep: dict = {"n": 1, "next": []}
    cursor = deep
    for _ in range(MAX_DEPTH + 1):
        child = {"n": 1, "next": []}
        cursor["next"].append(child)
        cursor = child
    typed = {"types": {"EIP712Domain": [], "Node": [node, {"name": "next", "type": "Node[]"}]},
             "primaryType": "Node", "domain": {}, "message": deep}
    with pytest.raises(BadTypedData, match="deeper"):
        parse_typed_data(typed)
    wide = {"types": {"EIP712Domain": [], "W": [{"name": "xs", "type": "uint8[]"}]}, "primaryType": "W",
            "domain": {}, "message": {"xs": [1] * (MAX_VALUES + 1)}}
    with pytest.raises(BadTypedData, match="values"):
        parse_typed_data(wide)


def test_signing_request_shapes():
    as_string = parse_signing_request({"method": "eth_signTypedData_v4",
                                       "params": [SIGNER, json.dumps(eip2612())], "chain_id": "0x1"})
    assert as_string.chain_id == 1 and as_string.typed.primary_type == "Permit"
    text = parse_signing_request({"method": "personal_sign", "params": ["0x48656c6c6f", SIGNER]})
    assert text.message == b"Hello" and text.decoded()["text"] == "Hello"
    plain = parse_signing_request({"method": "personal_sign", "params": ["Sign in to example.org", SIGNER]})
    assert plain.message == b"Sign in to example.org"
    raw = parse_signing_request({"method": "eth_sign", "params": [SIGNER, "0x" + "ab" * 32]})
    assert raw.raw == b"\xab" * 32 and raw.decoded()["kind"] == "raw_hash"
    for body, code in [({"method": "eth_signTransaction", "params": []}, "unsupported_method"),
                       ({"method": "personal_sign", "params": ["0x00"]}, "invalid_request"),
                       ({"method": "eth_sign", "params": [SIGNER, "abc"]}, "invalid_hex"),
                       ({"method": "eth_sign", "params": ["0x12", "0x00"]}, "invalid_address"),
                       ({"method": "eth_sign", "params": [SIGNER, "0x00"], "surprise": 1}, "invalid_request"),
                       ({"method": "eth_signTypedData_v4", "params": [SIGNER, "{not json"]}, "invalid_json"),
                       ({"method": "eth_signTypedData_v4", "params": [SIGNER, "{}"]}, "invalid_typed_data")]:
        with pytest.raises(InputError) as err:
            parse_signing_request(body)
        assert err.value.code == code, body


def test_personal_sign_digest_is_eip191():
    from eth_account import Account
    from eth_account.messages import encode_defunct

    key = Account.from_key("0x" + "4c" * 32)
    signed = key.sign_message(encode_defunct(text="Hello"))
    request_ = parse_signing_request({"method": "personal_sign", "params": ["0x48656c6c6f", key.address]})
    assert request_.decoded()["digest"] == "0x" + bytes(signed.message_hash).hex()


def test_secret_scan_view_blanks_binary_by_type_only():
    order = request(seaport_order(0))  # zoneHash/conduitKey are bytes32: 64 hex digits like a key
    assert find_secret(order) is not None  # the naive scan would refuse a legitimate order
    assert find_secret(secret_scan_view(order)) is None
    key_in_text = request(mail())
    key_in_text["params"][1]["message"]["contents"] = "my key 0x" + "4c" * 32
    assert find_secret(secret_scan_view(key_in_text)) is not None
    assert find_secret(secret_scan_view({"method": "eth_sign", "params": [SIGNER, "0x" + "ab" * 32]})) is None
    phrase = ("abandon " * 11 + "about").encode().hex()
    assert find_secret(secret_scan_view({"method": "personal_sign", "params": ["0x" + phrase, SIGNER]}))


@pytest.fixture
def client(make_service):
    service = make_service()
    return TestClient(create_app(service.settings, service))


def test_api_typed_data_answer_and_record(client):
    typed = permit2_single()
    response = client.post("/v1/explain", json=request(typed))
    assert response.status_code == 200, response.text
    answer = response.json()
    decoded = answer["decoded"]
    assert decoded["digest"] == eth_account_digest(typed)
    assert decoded["recognised_as"] == "Permit2 PermitSingle (AllowanceTransfer.permit)"
    assert decoded["domain"]["name"] == "Permit2" and decoded["primary_type"] == "PermitSingle"
    assert decoded["message"]["spender"] == DRAINER
    assert "permit2_allowance" in {f["code"] for f in answer["findings"]}
    assert f"whether {DRAINER} is a contract (eth_getCode)" in answer["unknown_facts"]
    assert "PermitSingle" in answer["explanation"]
    body = client.get(f"/v1/records/{answer['receipt']['seq']}").json()["body"]
    assert body["analysis"]["decoded"]["domain_separator"] == decoded["domain_separator"]
    assert body["input"]["clear"]["signing_request"]["typed_data"]["message"]["details"]["amount"] == str(U160)


def test_api_typed_data_errors_are_typed_4xx(client):
    bad = request(eip2612())
    bad["params"][1]["message"]["hidden"] = "x"
    response = client.post("/v1/risk", json=bad)
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "invalid_typed_data", "field": "message.hidden",
                                        "message": "field not declared in Permit (it would be shown but not signed)"}
    assert client.post("/v1/risk", json={"method": "eth_sendTransaction", "params": []}).json()["error"]["code"] \
        == "unsupported_method"


def test_api_refuses_key_in_signing_request_and_records_refusal(client):
    body = {"method": "personal_sign", "params": ["my key is 0x" + "4c" * 32, SIGNER]}
    response = client.post("/v1/risk", json=body)
    assert response.status_code == 422 and response.json()["error"]["code"] == "secret_in_request"
    assert "4c4c" not in response.text
    assert client.get("/v1/records/0").json()["body"]["kind"] == "refusal"


def test_private_signing_request_keeps_commitments_only(client):
    body = dict(request(eip2612()), private=True)
    answer = client.post("/v1/risk", json=body).json()
    record = client.get(f"/v1/records/{answer['receipt']['seq']}").json()["body"]
    assert "clear" not in record["input"] and "commitment" in record["analysis"]["decoded"]
    assert DRAINER not in json.dumps(record)


def test_cli_risk_accepts_signing_request_file(tmp_path, make_service, monkeypatch):
    from typer.testing import CliRunner

    from auditinf.cli import app

    service = make_service()
    path = tmp_path / "sign.json"
    path.write_text(json.dumps(request(permit2_single())))
    result = CliRunner().invoke(app, ["risk", str(path), "--ledger-url", service.ledger.url,
                                      "--key-file", str(service.settings.key_file),
                                      "--policy", str(service.settings.policy)])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["decoded"]["kind"] == "typed_data" and answer["risk_level"] == "high"


def test_openapi_documents_both_request_shapes(client):
    schema = client.get("/openapi.json").json()["paths"]["/v1/risk"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    titles = {s["title"] for s in schema["anyOf"]}
    assert titles == {"TransactionRequest", "SigningRequestBody"}
