"""Regression tests for the attack report against main, finding 5: values an audit record cannot
carry (integers beyond 2^53 in RFC 8785) are made decimal strings, and anything left that cannot be
canonicalised is refused (422) before any model is asked — no hosted request, no lost record."""

from __future__ import annotations

import pytest

from auditinf.errors import InputError
from auditinf.ledger import canonical_bytes

from .fakes.fault_server import GOOD_ANSWER, FaultServer

U = "0x" + "11" * 20


def hosted_service(make_service, upstream):
    return make_service(public=("hosted-a", "deterministic"), private=("deterministic",), hosted_url=upstream.base_url)


def typed(chain_id) -> dict:
    return {"types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"}], "M": [{"name": "x", "type": "string"}]},
            "primaryType": "M", "domain": {"chainId": chain_id}, "message": {"x": "hi"}}


def _chain_id(value) -> int:
    return int(value, 0) if isinstance(value, str) else value


@pytest.mark.parametrize("body", [
    {"chain_id": 1, "from": U, "to": U, "data": "0x", "authorizationList": [{"chainId": 2**60, "address": U, "nonce": 0}]},
    {"chain_id": 1, "from": U, "to": U, "data": "0x",
     "authorizationList": [{"chainId": 2**256 - 1, "address": U, "nonce": 0}]},
    {"method": "eth_signTypedData_v4", "params": [U, typed(str(2**53))], "chain_id": 1},
    {"method": "eth_signTypedData_v4", "params": [U, typed(2**256 - 1)], "chain_id": 1},
])
def test_uint256_chain_ids_are_recorded_as_decimal_strings(make_service, body):
    with FaultServer([{"answer": GOOD_ANSWER}]) as upstream:
        service = hosted_service(make_service, upstream)
        answer = service.risk(body)
        assert len(upstream.requests) == 1  # answered through the hosted model, once
    found = {f["code"]: f["evidence"] for f in answer["findings"]}
    if "authorizationList" in body:
        expected = str(_chain_id(body["authorizationList"][0]["chainId"]))
        assert found["eip7702_authorization"]["chain_id"] == expected
        assert answer["decoded"] is not None
    else:
        expected = str(_chain_id(body["params"][1]["domain"]["chainId"]))
        assert found["chain_id_mismatch"] == {"request_chain_id": "1", "domain_chain_id": expected}
    record = service.ledger.get(answer["receipt"]["seq"])
    assert f'"{expected}"'.encode() in record.body  # stored, as a decimal string


def test_unrecordable_content_is_refused_before_any_model_call(make_service, monkeypatch):
    # a rule that leaks a raw big integer into its evidence: the request is refused with a 4xx
    # before routing, so no hosted request is made and nothing is charged or half-recorded
    from auditinf.risk import batch_rules
    from auditinf.risk.findings import Finding, Severity

    monkeypatch.setattr(batch_rules, "deny_list_findings",
                        lambda ctx, addresses: [Finding("x", Severity.LOW, "x", {"big": 2**60})])
    from auditinf.risk import rules
    monkeypatch.setattr(rules, "deny_list_findings", batch_rules.deny_list_findings)
    with FaultServer([{"answer": GOOD_ANSWER}]) as upstream:
        service = hosted_service(make_service, upstream)
        before = service.ledger.size()
        with pytest.raises(InputError) as error:
            service.risk({"chain_id": 1, "from": U, "to": U, "data": "0x"})
        assert error.value.code == "unrecordable_value" and error.value.http_status == 422
        assert upstream.requests == []
        assert service.ledger.size() == before
    with pytest.raises(Exception):
        canonical_bytes({"big": 2**60})  # the premise: RFC 8785 refuses it
