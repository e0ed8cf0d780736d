"""Nested decoding: Multicall, Multicall3, Safe execTransaction / multiSend, Universal Router plans.

All calldata is encoded here with eth-abi (and the packed MultiSend / V3 path layouts by hand,
per their sources); expected values are the ones encoded.
"""

from __future__ import annotations

import time
import tracemalloc

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector as sel

from auditinf.evm import analyse_call, default_registry, parse_transaction
from auditinf.evm.chain import StaticChainFacts
from auditinf.evm.nested import MAX_INNER_CALLS, MAX_NESTING_DEPTH, decode_v3_path, parse_multisend
from auditinf.errors import BadCalldata
from auditinf.risk import RuleContext, evaluate
from auditinf.risk.findings import findings_by_path

REG = default_registry()
ME = "0x1111111111111111111111111111111111111111"
EOA = "0x2222222222222222222222222222222222222222"
OTHER = "0x3333333333333333333333333333333333333333"
SAFE = "0x5555555555555555555555555555555555555555"
EVIL = "0x6666666666666666666666666666666666666666"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
MULTISEND = "0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761"
ROUTER_V2 = "0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af"
V3_POOL_ROUTER = "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45"  # SwapRouter02: multicall(uint256,bytes[])
MAX = 2**256 - 1
SAFE_SIG = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
SAFE_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]


def call(signature: str, types: list[str], values: list) -> bytes:
    return sel(signature) + eth_abi.encode(types, values)


def approve(spender: str, amount: int) -> bytes:
    return call("approve(address,uint256)", ["address", "uint256"], [spender, amount])


def analyse(to: str, data: bytes, value: int = 0):
    tx = parse_transaction({"chain_id": 1, "from": ME, "to": to, "value": str(value), "data": "0x" + data.hex()})
    return tx, analyse_call(tx, REG)


def findings(to: str, data: bytes, value: int = 0, chain=None, **ctx):
    tx, analysis = analyse(to, data, value)
    kwargs = {"chain": chain} if chain else {}
    return analysis, evaluate(RuleContext(tx=tx, call=analysis, registry=REG, **kwargs, **ctx))


def safe_exec(to: str, data: bytes, operation: int, value: int = 0) -> bytes:
    return call(SAFE_SIG, SAFE_TYPES, [to, value, data, operation, 0, 0, 0, "0x" + "00" * 20, "0x" + "00" * 20,
                                       b"\x00" * 65])


def packed(operation: int, to: str, value: int, data: bytes) -> bytes:
    """One MultiSend entry: operation (1) ‖ to (20) ‖ value (32) ‖ dataLength (32) ‖ data."""
    return bytes([operation]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + len(data).to_bytes(32, "big") + data


def test_multicall_self_delegatecalls_keep_sender_and_paths():
    inner = [approve(EOA, MAX), call("transfer(address,uint256)", ["address", "uint256"], [OTHER, 5])]
    data = call("multicall(uint256,bytes[])", ["uint256", "bytes[]"], [1_900_000_000, inner])
    analysis, found = findings(USDC, data)
    nested = analysis.to_dict()["nested_calls"]
    assert [c["path"] for c in nested] == ["0", "1"]
    assert [c["method"] for c in nested] == ["approve", "transfer"]
    assert all(c["from"] == ME and c["to"] == USDC and c["operation"] == "delegatecall" for c in nested)
    assert nested[0]["args"] == {"spender": EOA, "value": str(MAX)}
    unlimited = [f for f in found if f.code == "unlimited_approval"]
    assert len(unlimited) == 1 and unlimited[0].path == "0" and unlimited[0].message.startswith("[call 0]")


def test_aggregate3_value_carries_each_value_and_allow_failure():
    calls = [(WETH, True, 10**18, call("deposit()", [], [])), (USDC, False, 0, approve(EOA, 7))]
    data = call("aggregate3Value((address,bool,uint256,bytes)[])", ["(address,bool,uint256,bytes)[]"], [calls])
    _, analysis = analyse(MULTICALL3, data, value=10**18)
    nested = analysis.to_dict()["nested_calls"]
    assert [(c["to"], c["value"], c["allow_failure"], c["method"]) for c in nested] == [
        (WETH, str(10**18), True, "deposit"), (USDC, "0", False, "approve")]
    assert all(c["from"] == MULTICALL3 for c in nested)  # Multicall3 CALLs: msg.sender is Multicall3


def test_safe_delegatecall_to_multisend_decodes_entries_in_the_safe_context():
    entries = packed(0, SAFE, 0, call("enableModule(address)", ["address"], [EVIL])) \
        + packed(0, USDC, 0, approve(EOA, MAX)) + packed(1, EVIL, 0, b"")
    data = safe_exec(MULTISEND, call("multiSend(bytes)", ["bytes"], [entries]), operation=1)
    analysis, found = findings(SAFE, data)
    (outer,) = analysis.to_dict(findings_by_path([f.to_dict() for f in found]))["nested_calls"]
    assert outer["via"] == "execTransaction" and outer["operation"] == "delegatecall" and outer["method"] == "multiSend"
    inner = outer["nested_calls"]
    assert [c["path"] for c in inner] == ["0.0", "0.1", "0.2"]
    assert [c["from"] for c in inner[:2]] == [SAFE, SAFE]  # entries run as the Safe
    assert inner[2]["operation"] == "delegatecall"
    by_code = {(f.code, f.path): str(f.severity) for f in found}
    assert by_code[("safe_delegatecall", None)] == "medium"  # the known MultiSend library
    assert by_code[("safe_module_enabled", "0.0")] == "high"
    assert by_code[("unlimited_approval", "0.1")] == "high"
    assert by_code[("safe_delegatecall", "0.2")] == "critical"  # unknown delegatecall target inside the batch
    assert [f["code"] for f in inner[0]["findings"]] == ["safe_module_enabled"]


@pytest.mark.parametrize("entries, message", [
    (packed(0, USDC, 0, b"")[:-10], "shorter than the 85-byte header"),
    (bytes([2]) + packed(0, USDC, 0, b"")[1:], "operation 2"),
    (packed(0, USDC, 0, b"\x01\x02")[:-1], "declares 2 data bytes"),
])
def test_multisend_packing_errors_are_named(entries, message):
    with pytest.raises(BadCalldata, match=message):
        parse_multisend(entries)
    analysis, found = findings(MULTISEND, call("multiSend(bytes)", ["bytes"], [entries]))
    assert message in analysis.to_dict()["nested_error"]
    assert "nested_call_not_decoded" in {f.code for f in found}


def test_multisend_roundtrip():
    blob = packed(0, USDC, 3, b"\xaa" * 7) + packed(1, EVIL, 0, b"")
    assert parse_multisend(blob) == [(0, USDC, 3, b"\xaa" * 7), (1, EVIL, 0, b"")]


def v3_path(*hops) -> bytes:
    out = bytes.fromhex(hops[0][2:])
    for fee, token in zip(hops[1::2], hops[2::2]):
        out += fee.to_bytes(3, "big") + bytes.fromhex(token[2:])
    return out


def router(commands: bytes, inputs: list[bytes], deadline: int | None = 1_800_000_000) -> bytes:
    if deadline is None:
        return call("execute(bytes,bytes[])", ["bytes", "bytes[]"], [commands, inputs])
    return call("execute(bytes,bytes[],uint256)", ["bytes", "bytes[]", "uint256"], [commands, inputs, deadline])


PERMIT = eth_abi.encode(["(address,uint160,uint48,uint48)", "address", "uint256", "bytes"],
                        [(USDC, 2**160 - 1, 2**48 - 1, 0), ROUTER_V2, 1_800_000_000, b"\x11" * 65])


def test_universal_router_plan_with_sub_plan_and_allow_revert():
    swap_v3 = eth_abi.encode(["address", "uint256", "uint256", "bytes", "bool"],
                             ["0x0000000000000000000000000000000000000002", 10**9, 3 * 10**17,
                              v3_path(USDC, 500, WETH), True])
    unwrap = eth_abi.encode(["address", "uint256"], [OTHER, 3 * 10**17])
    wrap = eth_abi.encode(["address", "uint256"], ["0x0000000000000000000000000000000000000002", 10**16])
    swap_v2 = eth_abi.encode(["address", "uint256", "uint256", "address[]", "bool"],
                             ["0x0000000000000000000000000000000000000001", 10**16, 1, [WETH, USDC], False])
    sub = eth_abi.encode(["bytes", "bytes[]"], [bytes([0x08]), [swap_v2]])
    sweep = eth_abi.encode(["address", "address", "uint256"], [USDC, ME, 0])
    data = router(bytes([0x0A, 0x00, 0x0C, 0x0B, 0x80 | 0x21, 0x04]), [PERMIT, swap_v3, unwrap, wrap, sub, sweep])
    analysis, found = findings(ROUTER_V2, data)
    decoded = analysis.to_dict()
    assert decoded["deadline"] == "1800000000" and decoded["command_table"] == "v2.0"
    names = [(c["path"], c["name"], c["allow_revert"]) for c in decoded["commands"]]
    assert names == [("0", "PERMIT2_PERMIT", False), ("1", "V3_SWAP_EXACT_IN", False), ("2", "UNWRAP_WETH", False),
                     ("3", "WRAP_ETH", False), ("4", "EXECUTE_SUB_PLAN", True), ("5", "SWEEP", False)]
    assert decoded["commands"][1]["decoded"]["path"] == [USDC, 500, WETH]
    assert decoded["commands"][0]["decoded"]["details"]["amount"] == str(2**160 - 1)
    (inner,) = decoded["commands"][4]["sub_plan"]
    assert inner["path"] == "4.0" and inner["name"] == "V2_SWAP_EXACT_IN" and inner["decoded"]["path"] == [WETH, USDC]
    by = {(f.code, f.path) for f in found}
    assert ("swap_recipient_not_sender", "2") in by  # UNWRAP_WETH to a third party
    assert not {p for c, p in by if c == "swap_recipient_not_sender"} - {"2"}  # router/msg.sender constants are fine
    assert ("unlimited_approval", "0") in by and ("far_expiration", "0") in by


def test_universal_router_length_mismatch_and_unknown_router_table():
    analysis, found = findings(OTHER, router(bytes([0x0B, 0x0C]), [eth_abi.encode(["address", "uint256"], [ME, 1])],
                                             deadline=None))
    assert "LengthMismatch" in analysis.nested_error
    _, analysis = analyse(OTHER, router(bytes([0x10]), [eth_abi.encode(["bytes", "bytes[]"], [b"\x06", [b"\x00"]])]))
    assert analysis.command_table == "v2.0 (assumed: router address not known)"
    assert analysis.commands[0].name == "V4_SWAP" and analysis.commands[0].actions[0]["name"] == "SWAP_EXACT_IN_SINGLE"


def test_v3_path_lengths():
    assert decode_v3_path(v3_path(USDC, 3000, WETH, 500, USDC)) == [USDC, 3000, WETH, 500, USDC]
    with pytest.raises(BadCalldata):
        decode_v3_path(v3_path(USDC, 500, WETH)[:-1])


def test_inner_call_that_does_not_decode_is_kept_with_its_error():
    bad = sel("approve(address,uint256)") + b"\x00" * 40  # 40 bytes: short of two words
    data = call("aggregate3((address,bool,bytes)[])", ["(address,bool,bytes)[]"], [[(USDC, False, bad)]])
    analysis, found = findings(MULTICALL3, data)
    (inner,) = analysis.to_dict()["nested_calls"]
    assert inner["kind"] == "undecodable" and inner["error"]["code"] == "abi_decode_error"
    assert inner["data"] == "0x" + bad.hex()
    assert [(f.code, f.path) for f in found] == [("nested_call_not_decoded", "0")]


def nest(levels: int) -> bytes:
    data = approve(EOA, 1)
    for _ in range(levels):
        data = call("multicall(bytes[])", ["bytes[]"], [[data]])
    return data


def test_depth_limit_stops_decoding_and_says_so():
    _, analysis = analyse(USDC, nest(MAX_NESTING_DEPTH + 3))
    node, depth = analysis, 0
    while node.inner:
        (child,) = node.inner
        node, depth = child.call, depth + 1
    assert depth == MAX_NESTING_DEPTH and "deeper than" in node.nested_error
    _, ok = analyse(USDC, nest(MAX_NESTING_DEPTH))
    assert [c.path for c in ok.walk_inner()][-1] == ".".join(["0"] * MAX_NESTING_DEPTH)


def bounded(fn) -> tuple[float, int]:
    """CPU time of one run (without tracing, which slows Python several-fold; CPU rather than wall
    time, so other processes on a loaded machine cannot fail the bound) and peak traced memory of
    a second run."""
    started = time.process_time()
    fn()
    elapsed = time.process_time() - started
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return elapsed, peak


def test_huge_count_bomb_is_truncated_within_bounds():
    tiny = sel("deposit()")
    data = call("multicall(bytes[])", ["bytes[]"], [[tiny] * 1300])  # ~122 KiB: just under the calldata cap
    result = {}
    elapsed, peak = bounded(lambda: result.update(found=findings(WETH, data)))
    analysis, found = result["found"]
    assert len(analysis.inner) == MAX_INNER_CALLS and analysis.truncated
    assert "nested_calls_truncated" in {f.code for f in found}
    assert peak < 50 * 2**20 and elapsed < 1.0  # a bound (50 MB, 1 s), not a speed measurement


def test_aliased_offsets_bomb_is_refused_before_allocating():
    # bytes[] of 1000 heads all pointing at one 64 KiB element: eth-abi alone would build 64 MB
    count, blob = 1000, 64 * 1024
    heads = b"".join((32 * count).to_bytes(32, "big") for _ in range(count))
    args = (32).to_bytes(32, "big") + count.to_bytes(32, "big") + heads + blob.to_bytes(32, "big") + b"\x01" * blob
    data = sel("multicall(bytes[])") + args
    elapsed, peak = bounded(lambda: pytest.raises(BadCalldata, analyse, USDC, data))
    assert peak < 50 * 2**20 and elapsed < 1.0


def test_sub_plan_bomb_is_depth_limited():
    plan = (bytes([0x0B]), [eth_abi.encode(["address", "uint256"], [ME, 1])])
    for _ in range(MAX_NESTING_DEPTH + 4):
        plan = (bytes([0x21]), [eth_abi.encode(["bytes", "bytes[]"], list(plan))])
    _, analysis = analyse(ROUTER_V2, router(*plan))
    cmd, depth = analysis.commands[0], 0
    while cmd.sub_plan:
        cmd, depth = cmd.sub_plan[0], depth + 1
    assert depth == MAX_NESTING_DEPTH and "deeper than" in cmd.error


def test_inner_findings_surface_in_the_answer_with_paths(det_service):
    inner = [approve(EOA, MAX)]
    data = call("aggregate3((address,bool,bytes)[])", ["(address,bool,bytes)[]"], [[(USDC, False, inner[0])]])
    service = det_service
    service.chain = StaticChainFacts(1, {EOA: "0x"})
    answer = service.risk({"chain_id": 1, "from": ME, "to": MULTICALL3, "data": "0x" + data.hex()})
    codes = {(f["code"], f.get("path")) for f in answer["findings"]}
    assert {("unlimited_approval", "0"), ("spender_is_eoa", "0")} <= codes
    (nested,) = answer["decoded"]["nested_calls"]
    assert {f["code"] for f in nested["findings"]} >= {"unlimited_approval", "spender_is_eoa"}
    assert answer["risk_level"] == "high"


def test_fact_sheet_lists_inner_calls_and_commands_with_paths():
    from auditinf.inference.prompt import build_prompt

    entries = packed(0, USDC, 0, approve(EOA, MAX))
    _, analysis = analyse(SAFE, safe_exec(MULTISEND, call("multiSend(bytes)", ["bytes"], [entries]), operation=1))
    text = build_prompt("risk", {"call": analysis.to_dict(), "to": SAFE, "findings": []}).user
    short_usdc = USDC[:6] + "…" + USDC[-4:]  # the fact sheet writes addresses shortened
    assert "Inner call 0.0 (multiSend, call to " + short_usdc in text and "unlimited (2^256-1)" in text
    wrap = eth_abi.encode(["address", "uint256"], [ME, 1])
    _, plan = analyse(ROUTER_V2, router(bytes([0x21]), [eth_abi.encode(["bytes", "bytes[]"], [b"\x0b", [wrap]])]))
    text = build_prompt("risk", {"call": plan.to_dict(), "to": ROUTER_V2, "findings": []}).user
    assert "Router command 0 EXECUTE_SUB_PLAN: its sub-plan follows" in text and "Router command 0.0 WRAP_ETH" in text


def test_aggregate3_return_data_decoded_per_inner_call():
    from auditinf.evm.returns import return_values

    balance = call("balanceOf(address)", ["address"], [ME])
    data = call("aggregate3((address,bool,bytes)[])", ["(address,bool,bytes)[]"],
                [[(USDC, False, balance), (WETH, True, balance)]])
    _, analysis = analyse(MULTICALL3, data)
    returned = eth_abi.encode(["(bool,bytes)[]"], [[(True, eth_abi.encode(["uint256"], [250 * 10**6])), (False, b"")]])
    out = return_values(analysis, returned)
    assert out["results"] == [
        {"index": 0, "success": True, "return_data": "0x" + eth_abi.encode(["uint256"], [250 * 10**6]).hex(),
         "values": [str(250 * 10**6)]},
        {"index": 1, "success": False, "return_data": "0x"}]
    assert out["values"][0][0]["success"] is True
