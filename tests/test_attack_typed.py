"""Regression tests for the attack report against main, typed-data findings: 14 (unused types are
ignored the way wallets ignore them, and reported), 7 (hashing work is bounded before any hashing)
and 1 (a SafeTx has the findings of the execTransaction it authorises). Digests are computed
independently with eth-account's public signing API."""

from __future__ import annotations

import copy
import time

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector as sel
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.errors import BadTypedData
from auditinf.evm.typed import hash_typed_data, parse_typed_data
from auditinf.evm.typed.schema import MAX_HASH_WORK

from .typed_builders import SIGNER, eth_account_digest, permit2_batch, permit2_single, request, seaport_order


@pytest.fixture
def client(make_service):
    service = make_service()
    return TestClient(create_app(service.settings, service), raise_server_exceptions=False)


# -- finding 14: unused types --------------------------------------------------------------------

def with_unused(typed: dict) -> dict:
    out = copy.deepcopy(typed)
    out["types"]["Unused"] = [{"name": "x", "type": "uint256"}]
    out["types"]["AlsoUnused"] = [{"name": "u", "type": "Unused"}]
    return out


def test_unused_types_are_not_hashed_and_reported(client):
    plain = permit2_single()
    typed = parse_typed_data(with_unused(plain))
    assert list(typed.unused_types) == ["Unused", "AlsoUnused"] and "Unused" not in typed.types
    # what the wallet signs: the EIP-712 encodeType of the primary type's closure only
    assert hash_typed_data(typed).digest == eth_account_digest(plain)
    answer = client.post("/v1/risk", json=request(with_unused(plain))).json()
    plain_answer = client.post("/v1/risk", json=request(plain)).json()
    codes = {f["code"]: f["severity"] for f in answer["findings"]}
    assert codes["unlimited_approval"] == "high" and codes["typed_data_unused_types"] == "low"
    assert answer["risk_level"] == plain_answer["risk_level"] == "high"
    assert answer["decoded"]["digest"] == plain_answer["decoded"]["digest"] == eth_account_digest(plain)
    assert answer["decoded"]["unused_types"] == ["Unused", "AlsoUnused"]


# -- finding 7: hashing work budget --------------------------------------------------------------

def hashing_bomb() -> dict:
    types = {"EIP712Domain": [{"name": "name", "type": "string"}]}
    for i in range(60):
        types[f"T{i}"] = [{"name": f"f{j}", "type": f"T{(i + j + 1) % 60}[]"} for j in range(64)]
    types["X"] = [{"name": "a", "type": "T0[]"}]
    types["P"] = [{"name": "xs", "type": "X[]"}]
    return {"types": types, "primaryType": "P", "domain": {"name": "x"}, "message": {"xs": [{"a": []}] * 2040}}


def test_hashing_bomb_is_refused_before_hashing(client, monkeypatch):
    from auditinf.evm.typed import hashing

    def never(*args, **kwargs):
        raise AssertionError("typed data over the work budget reached eth-account's hashing")

    monkeypatch.setattr(hashing, "encode_typed_data", never)
    with pytest.raises(BadTypedData) as error:
        parse_typed_data(hashing_bomb())
    assert error.value.code == "typed_data_too_complex"
    started = time.perf_counter()
    response = client.post("/v1/risk", json={"method": "eth_signTypedData_v4", "params": [SIGNER, hashing_bomb()]})
    assert response.status_code == 422 and response.json()["error"]["code"] == "typed_data_too_complex"
    assert time.perf_counter() - started < 5.0  # a loose bound (hashing it took 30 s), not a speed measurement


def test_large_real_payloads_stay_within_the_budget():
    batch = permit2_batch([f"0x{i:040x}" for i in range(1, 201)])
    assert hash_typed_data(parse_typed_data(batch)).digest == eth_account_digest(batch)
    order = seaport_order(0)
    item = order["message"]["consideration"][1]
    order["message"]["consideration"] += [dict(item) for _ in range(300)]
    assert hash_typed_data(parse_typed_data(order)).digest == eth_account_digest(order)


def test_budget_counts_struct_values_times_their_closure():
    # S names 30 struct types of 64 fields (left empty): each S value costs its closure, 30 + 30·64
    # = 1950 field encodings, while adding only 31 values; M (1 field) costs 1 + 1950.
    types = {"EIP712Domain": [], "M": [{"name": "s", "type": "S[]"}],
             "S": [{"name": f"d{i}", "type": f"D{i}[]"} for i in range(30)],
             **{f"D{i}": [{"name": f"f{j}", "type": "uint8"} for j in range(64)] for i in range(30)}}
    per_s, base = 30 + 30 * 64, 1 + 30 + 30 * 64
    fits = (MAX_HASH_WORK - base) // per_s

    def typed(count: int) -> dict:
        return {"types": types, "primaryType": "M", "domain": {},
                "message": {"s": [{f"d{i}": [] for i in range(30)}] * count}}
    assert hash_typed_data(parse_typed_data(typed(fits))).digest == eth_account_digest(typed(fits))
    with pytest.raises(BadTypedData) as error:
        parse_typed_data(typed(fits + 1))
    assert error.value.code == "typed_data_too_complex"


# -- finding 1: a SafeTx is analysed as the execTransaction it authorises ------------------------

SAFE_ADDR = "0x" + "55" * 20
ATT = "0x" + "22" * 20
MULTISEND_LIB = "0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761"
USDT_TOKEN = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
ZERO = "0x" + "00" * 20
_SAFE_FIELDS = ("address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
                "uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce")
_EXEC = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
_EXEC_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]


def _call(signature: str, types: list[str], values: list) -> bytes:
    return sel(signature) + eth_abi.encode(types, values)


def _safetx(to: str, data: bytes, operation: int) -> dict:
    return {"types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}],
                      "SafeTx": [{"name": f.split()[1], "type": f.split()[0]} for f in _SAFE_FIELDS.split(",")]},
            "primaryType": "SafeTx", "domain": {"chainId": 1, "verifyingContract": SAFE_ADDR},
            "message": {"to": to, "value": 0, "data": "0x" + data.hex(), "operation": operation, "safeTxGas": 0,
                        "baseGas": 0, "gasPrice": 0, "gasToken": ZERO, "refundReceiver": ZERO, "nonce": 0}}


def _on_chain(to: str, data: bytes, operation: int) -> dict:
    exec_data = _call(_EXEC, _EXEC_TYPES, [to, 0, data, operation, 0, 0, 0, ZERO, ZERO, b"\0" * 65])
    return {"chain_id": 1, "from": SIGNER, "to": SAFE_ADDR, "data": "0x" + exec_data.hex()}


def _shape(answer: dict) -> list[tuple]:
    return sorted((f["code"], f["severity"], f.get("path")) for f in answer["findings"])


_APPROVE = _call("approve(address,uint256)", ["address", "uint256"], [ATT, 2**256 - 1])
_ENTRY = b"\0" + bytes.fromhex(USDT_TOKEN[2:]) + (0).to_bytes(32, "big") + len(_APPROVE).to_bytes(32, "big") + _APPROVE


@pytest.mark.parametrize("to, data, operation, expected", [
    (USDT_TOKEN, _APPROVE, 0, ("unlimited_approval", "high", "0")),
    (SAFE_ADDR, _call("enableModule(address)", ["address"], [ATT]), 0, ("safe_module_enabled", "high", "0")),
    (MULTISEND_LIB, _call("multiSend(bytes)", ["bytes"], [_ENTRY]), 1, ("unlimited_approval", "high", "0.0")),
    (ATT, b"", 1, ("safe_delegatecall", "critical", None)),
])
def test_safetx_has_the_findings_of_its_exec_transaction(client, to, data, operation, expected):
    signed = client.post("/v1/risk", json={"method": "eth_signTypedData_v4", "params": [SIGNER, _safetx(to, data, operation)],
                                           "chain_id": 1}).json()
    on_chain = client.post("/v1/risk", json=_on_chain(to, data, operation)).json()
    assert expected in _shape(signed)
    assert _shape(signed) == _shape(on_chain)
    assert signed["risk_level"] == on_chain["risk_level"]
