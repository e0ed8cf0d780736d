"""ABI method extraction: from ABI JSON (overloads, legacy fields) and from solc runtime bytecode.

Bytecode fixtures are real solc output shipped with web3.py's own test contracts; the expected
selectors are computed from their ABIs with keccak-256, independently of evmole.
"""

from __future__ import annotations

import re

import pytest
from eth_utils import function_abi_to_4byte_selector
from web3._utils.contract_sources.contract_data import math_contract, payable_tester, string_contract

from auditinf.errors import BadAbi
from auditinf.evm import default_registry, methods_from_bytecode, parse_abi

REG = default_registry()


def _unsigned(types: str) -> str:
    return re.sub(r"(?<![a-z])int", "uint", types)


def _abi_functions(abi):
    return {"0x" + function_abi_to_4byte_selector(e).hex(): e for e in abi if e["type"] == "function"}


@pytest.mark.parametrize("module,prefix", [(math_contract, "MATH_CONTRACT"), (payable_tester, "PAYABLE_TESTER_CONTRACT"),
                                           (string_contract, "STRING_CONTRACT")])
def test_bytecode_selectors_and_mutability_match_abi(module, prefix):
    abi = getattr(module, f"{prefix}_ABI")
    runtime = getattr(module, f"{prefix}_RUNTIME")
    expected = _abi_functions(abi)
    methods = methods_from_bytecode(runtime, REG)
    assert {m["selector"] for m in methods} == set(expected)
    for m in methods:
        entry = expected[m["selector"]]
        # evmole reports what the code does: a function declared nonpayable that never writes
        # storage comes back as view. Whether it accepts ETH must match exactly.
        assert (m["state_mutability"] == "payable") == (entry["stateMutability"] == "payable"), entry["name"]
        if entry["stateMutability"] in ("view", "pure"):
            assert m["state_mutability"] in ("view", "pure"), entry["name"]
        # int256 and uint256 look alike in bytecode that does no signed arithmetic on them
        declared = ",".join(i["type"] for i in entry["inputs"])
        assert _unsigned(m["arguments"]) == _unsigned(declared), entry["name"]


def test_bytecode_names_resolved_from_bundled_abis():
    # a minimal dispatcher: PUSH0-free solc-style compare of 0x095ea7b3 (approve) → STOP
    code = "0x60003560e01c8063095ea7b314601757600080fd5b00"
    methods = methods_from_bytecode(code, REG)
    assert [m["selector"] for m in methods] == ["0x095ea7b3"]
    assert "approve(address,uint256)" in methods[0]["candidates"]


def test_overloads_and_legacy_fields():
    abi = [
        {"constant": False, "payable": False, "type": "function", "name": "f", "outputs": [],
         "inputs": [{"name": "a", "type": "uint256"}]},
        {"constant": True, "type": "function", "name": "f", "outputs": [{"name": "", "type": "bool"}],
         "inputs": [{"name": "a", "type": "uint256"}, {"name": "b", "type": "bytes32"}]},
        {"payable": True, "type": "function", "name": "g", "inputs": [], "outputs": []},
        {"type": "event", "name": "E", "inputs": []},
    ]
    fns = parse_abi(abi)
    assert [(f.signature, f.state_mutability) for f in fns] == [
        ("f(uint256)", "nonpayable"), ("f(uint256,bytes32)", "view"), ("g()", "payable")]
    assert fns[0].selector != fns[1].selector


@pytest.mark.parametrize("abi", [{"not": "a list"}, [1], [{"type": "function", "inputs": []}],
                                 [{"type": "function", "name": "f", "inputs": [{"type": "tuple"}]}],
                                 [{"type": "function", "name": "f", "inputs": [{"type": "uint257"}]}]])
def test_bad_abi_is_typed(abi):
    with pytest.raises(BadAbi):
        parse_abi(abi)
