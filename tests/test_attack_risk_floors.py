"""Regression tests for the attack report against main (findings 2, 3 and 6): wrapping a call in
malformed or deep batches, or dirtying its words, must never lower the risk level of what runs.

Calldata is built here with eth-abi; expected severities come from the rule tables."""

from __future__ import annotations

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector as sel

from auditinf.errors import BadCalldata
from auditinf.evm import analyse_call, default_registry, parse_transaction
from auditinf.evm.nested import MAX_NESTING_DEPTH, parse_multisend, split_multisend
from auditinf.risk import RuleContext, evaluate, risk_level

REG = default_registry()
U = "0x" + "11" * 20
ATT = "0x" + "22" * 20
SAFE = "0x" + "55" * 20
USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
MULTISEND = "0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761"
UR = "0x66a9893cC07D91D95644AEDD05D03f95e1dBA8Af"
ZERO = "0x" + "00" * 20
SAFE_SIG = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
SAFE_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]


def call(signature: str, types: list[str], values: list) -> bytes:
    return sel(signature) + eth_abi.encode(types, values)


APPROVE = call("approve(address,uint256)", ["address", "uint256"], [ATT, 2**256 - 1])


def exec_tx(to: str, data: bytes, operation: int) -> bytes:
    return call(SAFE_SIG, SAFE_TYPES, [to, 0, data, operation, 0, 0, 0, ZERO, ZERO, b"\0" * 65])


def entry(to: str, data: bytes, operation: int = 0) -> bytes:
    return bytes([operation]) + bytes.fromhex(to[2:]) + (0).to_bytes(32, "big") + len(data).to_bytes(32, "big") + data


def multisend(packed: bytes) -> bytes:
    return call("multiSend(bytes)", ["bytes"], [packed])


def evaluated(to: str, data: bytes):
    tx = parse_transaction({"chain_id": 1, "from": U, "to": to, "data": "0x" + data.hex()})
    findings = evaluate(RuleContext(tx=tx, call=analyse_call(tx, REG), registry=REG))
    return {(f.code, f.path): str(f.severity) for f in findings}, risk_level(findings)


# -- finding 2: MultiSend trailing bytes ---------------------------------------------------------

def test_multisend_trailing_bytes_keep_entries_findings_and_report_the_tail():
    clean, clean_level = evaluated(SAFE, exec_tx(MULTISEND, multisend(entry(USDT, APPROVE)), 1))
    assert clean[("unlimited_approval", "0.0")] == "high" and clean_level == "high"
    for tail in (b"\0", b"\x01" * 32):
        found, level = evaluated(SAFE, exec_tx(MULTISEND, multisend(entry(USDT, APPROVE) + tail), 1))
        assert found[("unlimited_approval", "0.0")] == "high" and level == "high", tail
        assert found[("nested_call_not_decoded", "0")] == "high"  # the tail, reported on the multiSend call


def test_split_multisend_follows_the_library_loop():
    # MultiSend 1.3.0 runs entries while i < length with i counting the 32-byte length word:
    # a tail of 1-32 bytes is never executed; a longer broken tail is reported as malformed
    packed = entry(USDT, APPROVE)
    entries, tail = split_multisend(packed + b"\x07" * 32)
    assert entries == parse_multisend(packed) and tail is not None and "never executed" in tail
    entries, tail = split_multisend(packed + b"\x00" * 40)
    assert entries == parse_multisend(packed) and tail is not None and "shorter than the 85-byte header" in tail
    assert split_multisend(packed) == (parse_multisend(packed), None)


# -- finding 6: depth, truncation and undecoded commands are at least high -----------------------

def test_router_sub_plans_nested_past_the_limit_are_high():
    permit = eth_abi.encode(["((address,uint160,uint48,uint48),address,uint256)", "bytes"],
                            [((USDT, 2**160 - 1, 2**48 - 1, 0), ATT, 2**48), b"\0" * 65])
    plan = eth_abi.encode(["bytes", "bytes[]"], [b"\x0a", [permit]])
    for _ in range(7):
        plan = eth_abi.encode(["bytes", "bytes[]"], [b"\x21", [plan]])
    data = call("execute(bytes,bytes[],uint256)", ["bytes", "bytes[]", "uint256"], [b"\x21", [plan], 10**10])
    found, level = evaluated(UR, data)
    assert "high" in {s for (c, _), s in found.items() if c == "router_command_not_decoded"}
    assert level in ("high", "critical")


def test_many_router_commands_truncated_is_high():
    sweep = eth_abi.encode(["address", "address", "uint256"], [USDT, U, 0])
    permit = eth_abi.encode(["(address,uint160,uint48,uint48)", "address", "uint256", "bytes"],
                            [(USDT, 2**160 - 1, 2**48 - 1, 0), ATT, 2**48, b"\0" * 65])
    data = call("execute(bytes,bytes[],uint256)", ["bytes", "bytes[]", "uint256"],
                [b"\x04" * 600 + b"\x0a", [sweep] * 600 + [permit], 10**10])
    found, level = evaluated(UR, data)
    assert found[("nested_calls_truncated", None)] == "high" and level == "high"


def test_multicall_nested_past_the_depth_limit_is_high():
    def nest(levels: int) -> bytes:
        data = APPROVE
        for _ in range(levels):
            data = call("multicall(bytes[])", ["bytes[]"], [[data]])
        return data
    shallow, shallow_level = evaluated(USDT, nest(4))
    deep, deep_level = evaluated(USDT, nest(MAX_NESTING_DEPTH + 2))
    assert shallow_level == "high"
    assert deep_level == "high" and "high" in {s for (c, _), s in deep.items() if c == "nested_call_not_decoded"}


def test_unknown_router_command_is_high_known_undecoded_layout_stays_low():
    data = call("execute(bytes,bytes[],uint256)", ["bytes", "bytes[]", "uint256"], [b"\x3f", [b"\x12"], 10**10])
    assert evaluated(UR, data)[0][("router_command_not_decoded", "0")] == "high"
    data = call("execute(bytes,bytes[],uint256)", ["bytes", "bytes[]", "uint256"], [b"\x14", [b"\x12\x34"], 10**10])
    assert evaluated(UR, data)[0][("router_command_not_decoded", "0")] == "low"


# -- finding 3: dirty words that ABI coder v1 contracts accept -------------------------------------

def dirty(data: bytes, byte_index: int, value: int = 0xFF) -> bytes:
    out = bytearray(data)
    out[byte_index] = value
    return bytes(out)


def test_dirty_address_approve_is_decoded_as_old_tokens_read_it():
    bad = dirty(APPROVE, 4)  # the first byte of the spender word
    clean, clean_level = evaluated(USDT, APPROVE)
    found, level = evaluated(USDT, bad)
    assert found[("unlimited_approval", None)] == clean[("unlimited_approval", None)] == "high"
    assert found[("noncanonical_calldata", None)] == "high" and level == clean_level == "high"
    tx = parse_transaction({"chain_id": 1, "from": U, "to": USDT, "data": "0x" + bad.hex()})
    decoded = analyse_call(tx, REG)
    assert decoded.decoded.values[0].lower() == ATT  # masked to the low 160 bits
    assert decoded.to_dict()["noncanonical"]


def test_dirty_approvals_inside_batches_keep_their_findings():
    bad = dirty(APPROVE, 4)
    found, level = evaluated(SAFE, exec_tx(USDT, bad, 0))
    assert found[("unlimited_approval", "0")] == "high" and found[("noncanonical_calldata", "0")] == "high"
    found, level = evaluated(SAFE, exec_tx(MULTISEND, multisend(entry(USDT, bad)), 1))
    assert found[("unlimited_approval", "0.0")] == "high" and level == "high"


def test_bool_two_is_an_approval_for_all():
    nft = "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D"
    data = call("setApprovalForAll(address,bool)", ["address", "uint256"], [ATT, 2])  # bool word = 2
    found, level = evaluated(nft, data)
    assert found[("approval_for_all", None)] == "high" and found[("noncanonical_calldata", None)] == "high"
    assert level == "high"


def test_dirty_calls_outside_the_approval_family_still_fail_strictly():
    transfer = call("transfer(address,uint256)", ["address", "uint256"], [ATT, 5])
    tx = parse_transaction({"chain_id": 1, "from": U, "to": USDT, "data": "0x" + dirty(transfer, 4).hex()})
    with pytest.raises(BadCalldata):
        analyse_call(tx, REG)


def test_dirty_approve_sent_straight_to_the_token_gets_a_verdict(make_service):
    answer = make_service().risk({"chain_id": 1, "from": U, "to": USDT, "data": "0x" + dirty(APPROVE, 4).hex()})
    codes = {f["code"]: f["severity"] for f in answer["findings"]}
    assert answer["risk_level"] == "high" and codes["unlimited_approval"] == "high"
    assert codes["noncanonical_calldata"] == "high" and answer["decoded"]["noncanonical"]
