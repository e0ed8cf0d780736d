"""Each risk rule: a positive and a negative case, calldata encoded here with eth-abi."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector

from auditinf.evm import analyse_call, default_registry, parse_transaction
from auditinf.evm.chain import NoChainFacts, StaticChainFacts
from auditinf.risk import RuleContext, evaluate, risk_level, verdict

REG = default_registry()
ME = "0x1111111111111111111111111111111111111111"
EOA = "0x2222222222222222222222222222222222222222"
CONTRACT = "0x4444444444444444444444444444444444444444"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
BAYC = "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D"
V2_ROUTER = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"
OPENSEA_CONDUIT = "0x1E0049783F008A0085193E00003D00cd54003c71"
MULTISEND = "0x40A2aCCbd92BCA938b02010E17A5b8929b49130D"
SAFE = "0x5555555555555555555555555555555555555555"
MAX = 2**256 - 1
CHAIN = StaticChainFacts(1, {EOA: "0x", CONTRACT: "0x6080"}, source="test")

SAFE_SIG = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
SAFE_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]


def data(signature: str, types: list[str], values: list) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + eth_abi.encode(types, values)).hex()


def codes(to: str, calldata: str, value: int = 0, chain=CHAIN) -> dict[str, str]:
    tx = parse_transaction({"chain_id": 1, "from": ME, "to": to, "value": str(value), "data": calldata})
    findings = evaluate(RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG, chain=chain))
    return {f.code: str(f.severity) for f in findings}


def approve(spender, amount):
    return data("approve(address,uint256)", ["address", "uint256"], [spender, amount])


def test_unlimited_approval_to_eoa_is_high():
    found = codes(USDC, approve(EOA, MAX))
    assert found == {"unlimited_approval": "high", "token_approval": "medium", "spender_is_eoa": "high"}


def test_unlimited_approval_to_trusted_router_is_medium():
    assert codes(USDC, approve(V2_ROUTER, MAX)) == {"unlimited_approval": "medium", "token_approval": "low"}


def test_large_but_limited_approval_not_unlimited():
    found = codes(USDC, approve(CONTRACT, 10**6 * 250))
    assert "unlimited_approval" not in found and found["token_approval"] == "medium"


def test_approve_zero_is_a_revocation():
    assert codes(USDC, approve(EOA, 0)) == {}


def test_increase_allowance():
    found = codes(USDC, data("increaseAllowance(address,uint256)", ["address", "uint256"], [CONTRACT, 5]))
    assert found == {"token_approval": "medium", "spender_unknown": "medium"}
    assert "unlimited_approval" in codes(
        USDC, data("increaseAllowance(address,uint256)", ["address", "uint256"], [CONTRACT, MAX]))


def test_nft_approve_is_not_token_allowance():
    assert codes(BAYC, approve(EOA, 1234)) == {"nft_approval": "medium"}


def test_set_approval_for_all():
    sig, types = "setApprovalForAll(address,bool)", ["address", "bool"]
    assert codes(BAYC, data(sig, types, [EOA, True])) == {
        "approval_for_all": "high", "operator_unknown": "high", "spender_is_eoa": "high"}
    assert codes(BAYC, data(sig, types, [OPENSEA_CONDUIT, True]), chain=NoChainFacts()) == {"approval_for_all": "medium"}
    assert codes(BAYC, data(sig, types, [EOA, False])) == {}


def test_transfer_to_token_itself():
    sig, types = "transfer(address,uint256)", ["address", "uint256"]
    assert codes(USDC, data(sig, types, [USDC, 10])) == {"transfer_to_token_contract": "high"}
    assert codes(USDC, data(sig, types, [EOA, 10])) == {}


def test_ownership_and_upgrade():
    assert codes(CONTRACT, data("transferOwnership(address)", ["address"], [EOA])) == {"ownership_transfer": "high"}
    assert codes(CONTRACT, "0x715018a6") == {"ownership_renounce": "high"}
    assert codes(CONTRACT, data("upgradeTo(address)", ["address"], [EOA])) == {"proxy_upgrade": "high"}
    assert codes(CONTRACT, data("upgradeToAndCall(address,bytes)", ["address", "bytes"], [EOA, b"\x01"])) == {
        "proxy_upgrade": "high"}


@pytest.mark.parametrize("target,operation,expected", [
    (EOA, 1, {"safe_delegatecall": "critical"}),
    (MULTISEND, 1, {"safe_delegatecall": "medium"}),
    (EOA, 0, {}),
])
def test_safe_exec_transaction(target, operation, expected):
    calldata = data(SAFE_SIG, SAFE_TYPES, [target, 0, b"", operation, 0, 0, 0, "0x" + "00" * 20, "0x" + "00" * 20,
                                           b"\x01" * 65])
    assert codes(SAFE, calldata) == expected


def test_native_value_with_unknown_calldata():
    # 0x5fba79f5 is SecurityUpdate() in the selector table: a drainer name on an unverified contract
    assert codes(CONTRACT, "0x5fba79f5", value=125 * 10**16) == {"native_value_unknown_call": "high",
                                                                 "misleading_function_name": "high"}
    assert codes(CONTRACT, "0x5fba79f5") == {"unknown_selector": "medium", "misleading_function_name": "low"}
    assert codes(EOA, "0x", value=10**18) == {}


def test_native_value_to_token_contract():
    assert codes(USDC, "0x", value=10**18) == {"native_value_to_token": "high"}
    weth = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"  # WETH9's fallback deposits ETH
    assert codes(weth, "0x", value=10**18) == {}


def test_trailing_calldata_is_low():
    calldata = data("transfer(address,uint256)", ["address", "uint256"], [EOA, 1]) + "00ff"
    assert codes(USDC, calldata) == {"trailing_calldata": "low"}


def test_unknown_chain_facts_are_listed_not_guessed():
    tx = parse_transaction({"chain_id": 1, "to": USDC, "data": approve(EOA, MAX)})
    ctx = RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG)
    found = {f.code for f in evaluate(ctx)}
    assert "spender_is_eoa" not in found
    assert ctx.facts_unknown == [f"whether {EOA} is a contract (eth_getCode)"]


def test_verdict_and_level():
    tx = parse_transaction({"chain_id": 1, "to": SAFE, "data": data(SAFE_SIG, SAFE_TYPES, [
        EOA, 0, b"", 1, 0, 0, 0, "0x" + "00" * 20, "0x" + "00" * 20, b""])})
    findings = evaluate(RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG))
    assert (verdict(findings), risk_level(findings)) == ("malicious", "critical")
    assert (verdict([]), risk_level([])) == ("benign", "none")
