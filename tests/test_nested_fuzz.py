"""Crafted batches never crash the decoder: any calldata under a batching selector decodes, or is
refused with ``BadCalldata``; through the service it is an answer or a 4xx, never a 500."""

from __future__ import annotations

import eth_abi
from eth_utils import function_signature_to_4byte_selector as sel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditinf.errors import BadCalldata
from auditinf.evm import analyse_call, default_registry, parse_transaction
from auditinf.risk import RuleContext, evaluate

REG = default_registry()
ME = "0x1111111111111111111111111111111111111111"
TARGETS = ["0xcA11bde05977b3631167028862bE2a173976CA11", "0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af",
           "0x5555555555555555555555555555555555555555", "0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761"]
SELECTORS = [sel(s) for s in ("multicall(bytes[])", "aggregate3((address,bool,bytes)[])",
                              "aggregate3Value((address,bool,uint256,bytes)[])", "execute(bytes,bytes[],uint256)",
                              "execute(bytes,bytes[])", "multiSend(bytes)",
                              "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)")]


def run(to: str, data: bytes) -> None:
    tx = parse_transaction({"chain_id": 1, "from": ME, "to": to, "data": "0x" + data.hex()})
    try:
        call = analyse_call(tx, REG)
    except BadCalldata:
        return
    evaluate(RuleContext(tx=tx, call=call, registry=REG))
    call.to_dict()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(to=st.sampled_from(TARGETS), selector=st.sampled_from(SELECTORS), body=st.binary(max_size=600))
def test_random_bytes_under_batch_selectors(to, selector, body):
    run(to, selector + body)


# structurally valid outer encodings whose inner payloads are random
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(commands=st.binary(max_size=8), inputs=st.lists(st.binary(max_size=200), max_size=8),
       packed=st.binary(max_size=400), calls=st.lists(st.binary(max_size=120), max_size=6))
def test_random_payloads_in_valid_batches(commands, inputs, packed, calls):
    run(TARGETS[1], sel("execute(bytes,bytes[],uint256)") + eth_abi.encode(["bytes", "bytes[]", "uint256"],
                                                                             [commands, inputs, 1]))
    run(TARGETS[3], sel("multiSend(bytes)") + eth_abi.encode(["bytes"], [packed]))
    run(TARGETS[0], sel("aggregate3((address,bool,bytes)[])") + eth_abi.encode(
        ["(address,bool,bytes)[]"], [[(TARGETS[2], True, c) for c in calls]]))
    run(TARGETS[2], sel("multicall(bytes[])") + eth_abi.encode(["bytes[]"], [calls]))


def test_largest_batch_through_the_service_is_answered(det_service):
    data = sel("multicall(bytes[])") + eth_abi.encode(["bytes[]"], [[sel("deposit()")] * 1300])
    answer = det_service.risk({"chain_id": 1, "from": ME, "to": "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
                               "data": "0x" + data.hex()})
    assert answer["decoded"]["nested_truncated"] is True
    assert "nested_calls_truncated" in {f["code"] for f in answer["findings"]}
