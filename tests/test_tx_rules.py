"""Transaction-side rules: a positive and a negative case each, calldata encoded here with eth-abi."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector as sel

from auditinf.evm import analyse_call, default_registry, parse_transaction
from auditinf.evm.chain import StaticChainFacts
from auditinf.risk import RuleContext, evaluate
from auditinf.risk.context import PolicyLists

REG = default_registry()
ME = "0x1111111111111111111111111111111111111111"
EOA = "0x2222222222222222222222222222222222222222"
OTHER = "0x3333333333333333333333333333333333333333"
CONTRACT = "0x4444444444444444444444444444444444444444"
SAFE = "0x5555555555555555555555555555555555555555"
DRAINER = "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
V2_ROUTER = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"
UR = "0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af"
CHAIN = StaticChainFacts(1, {EOA: "0x", CONTRACT: "0x6080", OTHER: "0x6080"}, source="test")


def enc(signature: str, *values) -> str:
    types = signature[signature.index("(") + 1 : -1]
    types = eth_abi.grammar.parse(f"({types})").components if types else ()
    return "0x" + (sel(signature) + eth_abi.encode([t.to_type_str() for t in types], list(values))).hex()


def found(to: str, data: str, value: int = 0, *, sender: str = ME, lists=PolicyLists(), counterparties=(),
          extra: dict | None = None) -> dict[str, str]:
    tx = parse_transaction({"chain_id": 1, "from": sender, "to": to, "value": str(value), "data": data,
                            **(extra or {})})
    ctx = RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG, chain=CHAIN, lists=lists,
                      counterparties=tuple(counterparties))
    return {f.code: str(f.severity) for f in evaluate(ctx)}


def test_large_approval():
    assert found(USDC, enc("approve(address,uint256)", CONTRACT, 2**100))["large_approval"] == "high"
    assert "large_approval" not in found(USDC, enc("approve(address,uint256)", CONTRACT, 10**12))


def test_spender_unknown_vs_trusted_router():
    assert found(USDC, enc("approve(address,uint256)", CONTRACT, 5))["spender_unknown"] == "medium"
    assert "spender_unknown" not in found(USDC, enc("approve(address,uint256)", V2_ROUTER, 5))


def test_policy_trusted_list_rates_a_spender_like_a_router():
    lists = PolicyLists(trusted=frozenset({CONTRACT.lower()}))
    got = found(USDC, enc("approve(address,uint256)", CONTRACT, 2**256 - 1), lists=lists)
    assert got == {"unlimited_approval": "medium", "token_approval": "low"}


def test_permit2_approve_to_eoa_unlimited_forever():
    got = found(PERMIT2, enc("approve(address,address,uint160,uint48)", USDC, EOA, 2**160 - 1, 2**48 - 1))
    assert got["unlimited_approval"] == "high" and got["spender_is_eoa"] == "high"
    assert got["far_expiration"] == "medium"
    limited = found(PERMIT2, enc("approve(address,address,uint160,uint48)", USDC, UR, 10**6, 1_800_000_000))
    assert limited == {"token_approval": "low"}


def test_permit2_permit_submitted_on_chain():
    single = enc("permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)",
                 ME, ((USDC, 2**160 - 1, 1_800_000_000, 0), EOA, 1_800_000_000), b"\x01" * 65)
    assert found(PERMIT2, single)["unlimited_approval"] == "high"
    batch = enc("permit(address,((address,uint160,uint48,uint48)[],address,uint256),bytes)",
                ME, ([(USDC, 5, 1_800_000_000, 0), (USDT, 7, 1_800_000_000, 0)], UR, 1_800_000_000), b"\x01" * 65)
    assert found(PERMIT2, batch) == {"token_approval": "low"}


def test_zero_value_transfer_from():
    poison = enc("transferFrom(address,address,uint256)", ME, OTHER, 0)
    assert found(USDT, poison, sender=EOA)["zero_value_transfer"] == "high"
    assert "zero_value_transfer" not in found(USDT, enc("transferFrom(address,address,uint256)", ME, OTHER, 1),
                                              sender=EOA)


def test_address_poisoning_lookalike():
    known = "0x7a25000000000000000000000000000000004D3f"
    fake = "0x7a25ffffffffffffffffffffffffffffffff4d3f"
    assert found(USDC, enc("transfer(address,uint256)", fake, 5), counterparties=[known])[
        "address_poisoning_lookalike"] == "high"
    assert "address_poisoning_lookalike" not in found(USDC, enc("transfer(address,uint256)", known, 5),
                                                      counterparties=[known])


def test_transfer_from_to_the_token_itself():
    assert "transfer_to_token_contract" in found(USDC, enc("transferFrom(address,address,uint256)", ME, USDC, 5))
    assert "transfer_to_token_contract" not in found(USDC, enc("transferFrom(address,address,uint256)", ME, OTHER, 5))


def test_v2_swap_recipient_not_sender():
    swap = "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"
    assert found(V2_ROUTER, enc(swap, 10**6, 1, [USDC, WETH], OTHER, 1_800_000_000))[
        "swap_recipient_not_sender"] == "medium"
    assert "swap_recipient_not_sender" not in found(V2_ROUTER, enc(swap, 10**6, 1, [USDC, WETH], ME, 1_800_000_000))


def test_router_v3_swap_recipient():
    def plan(recipient):
        swap = eth_abi.encode(["address", "uint256", "uint256", "bytes", "bool"], [
            recipient, 10**6, 1, bytes.fromhex(USDC[2:]) + (500).to_bytes(3, "big") + bytes.fromhex(WETH[2:]), True])
        return enc("execute(bytes,bytes[],uint256)", b"\x00", [swap], 1_800_000_000)
    assert found(UR, plan(OTHER))["swap_recipient_not_sender"] == "medium"
    assert "swap_recipient_not_sender" not in found(UR, plan("0x0000000000000000000000000000000000000001"))


def test_router_command_not_decoded():
    data = enc("execute(bytes,bytes[],uint256)", b"\x14", [b"\x12\x34"], 1_800_000_000)  # V4_POSITION_MANAGER_CALL
    assert found(UR, data)["router_command_not_decoded"] == "low"
    wrap = eth_abi.encode(["address", "uint256"], ["0x0000000000000000000000000000000000000002", 1])
    assert "router_command_not_decoded" not in found(UR, enc("execute(bytes,bytes[],uint256)", b"\x0b", [wrap], 1))


@pytest.mark.parametrize("signature, args, code, severity", [
    ("upgrade(address,address)", (CONTRACT, OTHER), "proxy_upgrade", "high"),
    ("changeAdmin(address)", (OTHER,), "proxy_admin_change", "high"),
    ("enableModule(address)", (OTHER,), "safe_module_enabled", "high"),
    ("setGuard(address)", (OTHER,), "safe_guard_changed", "high"),
    ("setFallbackHandler(address)", (OTHER,), "safe_fallback_handler_changed", "high"),
    ("addOwnerWithThreshold(address,uint256)", (OTHER, 2), "safe_owner_change", "high"),
    ("swapOwner(address,address,address)", ("0x" + "00" * 19 + "01", ME, OTHER), "safe_owner_change", "high"),
    ("changeThreshold(uint256)", (1,), "safe_threshold_change", "high"),
    ("changeThreshold(uint256)", (3,), "safe_threshold_change", "medium"),
])
def test_admin_rules(signature, args, code, severity):
    assert found(SAFE, enc(signature, *args))[code] == severity


def test_admin_rules_negative():
    # reads of the same contracts raise nothing
    assert found(SAFE, enc("getThreshold()")) == {}
    assert found(SAFE, enc("isModuleEnabled(address)", OTHER)) == {}


def test_misleading_function_name_needs_an_unverified_target():
    assert found(CONTRACT, enc("claim()"), value=10**17)["misleading_function_name"] == "high"
    # the same name on a contract whose ABI is known (WETH is bundled for its address) is not flagged
    assert "misleading_function_name" not in found(WETH, enc("deposit()"), value=10**17)
    assert "misleading_function_name" not in found(CONTRACT, enc("transfer(address,uint256)", OTHER, 1))


def test_eip7702_authorization():
    auth = {"authorizationList": [{"chainId": "0x0", "address": DRAINER, "nonce": "0x0", "yParity": "0x1",
                                   "r": "0x" + "ab" * 32, "s": "0x" + "cd" * 32}]}
    got = found(ME, "0x", extra=auth)
    assert got["eip7702_authorization"] == "critical"
    trusted = PolicyLists(trusted=frozenset({DRAINER.lower()}))
    assert found(ME, "0x", extra=auth, lists=trusted)["eip7702_authorization"] == "high"
    assert "eip7702_authorization" not in found(ME, "0x")


def test_deny_list_reaches_inner_calls():
    lists = PolicyLists(deny=frozenset({DRAINER.lower()}))
    inner = bytes.fromhex(enc("approve(address,uint256)", DRAINER, 5)[2:])
    batch = enc("aggregate3((address,bool,bytes)[])", [(USDC, False, inner)])
    assert found("0xcA11bde05977b3631167028862bE2a173976CA11", batch, lists=lists)["denylisted_address"] == "critical"
    assert "denylisted_address" not in found("0xcA11bde05977b3631167028862bE2a173976CA11", batch)


def test_safe_delegatecall_to_unknown_target_is_critical_and_call_is_not():
    sig = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
    zero = "0x" + "00" * 20
    assert found(SAFE, enc(sig, OTHER, 0, b"", 1, 0, 0, 0, zero, zero, b""))["safe_delegatecall"] == "critical"
    assert "safe_delegatecall" not in found(SAFE, enc(sig, OTHER, 0, b"", 0, 0, 0, 0, zero, zero, b""))


def test_every_sample_transaction_raises_its_expected_codes():
    import json
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "abi_samples/transactions").glob("*.json")):
        sample = json.loads(path.read_text())
        tx = parse_transaction(sample)
        codes = {f.code for f in evaluate(RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG))}
        assert set(sample["expect"]["risk_codes"]) <= codes, path.name


def test_native_value_to_nonpayable_from_deployed_code():
    # a dispatcher whose only function (approve) is non-payable: solc's CALLVALUE check
    # (CALLVALUE DUP1 ISZERO PUSH1 JUMPI PUSH1 0 DUP1 REVERT) follows its JUMPDEST
    code = ("0x60003560e01c8063095ea7b314601457600080fd5b34801560" "1e57600080fd5b00" "5b600080fd")
    target = "0x7777777777777777777777777777777777777777"
    chain = StaticChainFacts(1, {target: code})
    tx = parse_transaction({"chain_id": 1, "from": ME, "to": target, "value": "1000",
                            "data": enc("approve(address,uint256)", OTHER, 1)})
    ctx = RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG, chain=chain)
    codes = {f.code: f for f in evaluate(ctx)}
    from auditinf.evm.bytecode import selector_mutabilities
    mutability = selector_mutabilities(bytes.fromhex(code[2:]))["0x095ea7b3"]
    assert mutability in ("nonpayable", "view", "pure")  # the CALLVALUE guard makes it not payable
    assert codes["native_value_to_nonpayable"].evidence["source"] == "bytecode (evmole)"
    # without value, or without chain facts, nothing is claimed
    tx0 = parse_transaction({"chain_id": 1, "from": ME, "to": target, "data": enc("approve(address,uint256)", OTHER, 1)})
    assert "native_value_to_nonpayable" not in {f.code for f in evaluate(
        RuleContext(tx=tx0, call=analyse_call(tx0, REG), registry=REG, chain=chain))}
    assert "native_value_to_nonpayable" not in found(target, enc("approve(address,uint256)", OTHER, 1), value=1000)


def test_lookalike_of_the_signers_own_address():
    me_alike = "0x1111ffffffffffffffffffffffffffffffff1111"
    assert found(USDC, enc("transfer(address,uint256)", me_alike, 5))["address_poisoning_lookalike"] == "high"
    assert "address_poisoning_lookalike" not in found(USDC, enc("transfer(address,uint256)", ME, 5))


def test_router_recipient_not_judged_without_a_sender():
    swap = eth_abi.encode(["address", "uint256", "uint256", "bytes", "bool"], [
        OTHER, 10**6, 1, bytes.fromhex(USDC[2:]) + (500).to_bytes(3, "big") + bytes.fromhex(WETH[2:]), True])
    data = enc("execute(bytes,bytes[],uint256)", b"\x00", [swap], 1_800_000_000)
    tx = parse_transaction({"chain_id": 1, "to": UR, "data": data})
    codes = {f.code for f in evaluate(RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG))}
    assert "swap_recipient_not_sender" not in codes


def test_type4_request_through_the_service(det_service):
    """r/s of an EIP-7702 authorisation are public signature parts: the request is answered,
    not refused as carrying a key; a malformed list is a typed 4xx."""
    from auditinf.errors import InputError

    auth = [{"chainId": "0x1", "address": DRAINER, "nonce": "0x7", "yParity": "0x0",
             "r": "0x" + "ab" * 32, "s": "0x" + "cd" * 32}]
    answer = det_service.risk({"chain_id": 1, "from": ME, "to": ME, "data": "0x", "authorizationList": auth})
    (finding,) = [f for f in answer["findings"] if f["code"] == "eip7702_authorization"]
    assert finding["severity"] == "critical" and finding["evidence"]["delegate"] == DRAINER
    assert finding["evidence"]["nonce"] == "7"
    for bad, field in ([{"chainId": "0x1", "address": "0x12", "nonce": "0x0"}], "authorizationList[0].address"), \
                      ([{"chainId": -1, "address": DRAINER, "nonce": "0x0"}], "authorizationList[0].chainId"):
        with pytest.raises(InputError) as err:
            det_service.risk({"chain_id": 1, "from": ME, "to": ME, "authorizationList": bad})
        assert err.value.field == field and err.value.http_status < 500
    with pytest.raises(InputError) as err:
        det_service.risk({"chain_id": 1, "from": ME, "to": USDC, "known_counterparties": ["0x1234"]})
    assert err.value.code == "invalid_address"
