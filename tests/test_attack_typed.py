"""Regression tests for the attack report against main, typed-data findings: 14 (unused types are
ignored the way wallets ignore them, and reported). Digests are computed independently with eth-account's public signing API."""

from __future__ import annotations

import copy

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.evm.typed import hash_typed_data, parse_typed_data

from .typed_builders import SIGNER, eth_account_digest, permit2_single, request


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


