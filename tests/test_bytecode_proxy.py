"""Bytecode → methods: names from the bundled selector table (ranked candidates, no silent pick)
and proxy detection (EIP-1167 from the code, EIP-1967 with chain facts)."""

from __future__ import annotations

from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import keccak

from auditinf.evm import default_registry, methods_from_bytecode
from auditinf.evm.chain import StaticChainFacts
from auditinf.evm.proxy import EIP1967_BEACON_SLOT, EIP1967_IMPLEMENTATION_SLOT, detect_proxy, proxy_report
from auditinf.evm.selectors import selector_table

REG = default_registry()
IMPL = "0xBEbeBeBEbeBebeBeBEBEbebEBeBeBebeBeBebebe"
PROXY = "0x9999999999999999999999999999999999999999"


def dispatcher(*selectors: bytes) -> str:
    """solc-style dispatcher: selector = calldata[0:4] >> 224; each match jumps to a STOP."""
    code = bytes.fromhex("60003560e01c")
    jumps = []
    for s in selectors:
        code += b"\x80\x63" + s + b"\x14\x61\x00\x00\x57"  # DUP1 PUSH4 s EQ PUSH2 dest JUMPI
        jumps.append(len(code) - 3)
    code += bytes.fromhex("600080fd")  # revert
    out = bytearray(code)
    for at in jumps:
        out[at : at + 2] = len(out).to_bytes(2, "big")
        out += b"\x5b\x00"  # JUMPDEST STOP
    return "0x" + out.hex()


def minimal_proxy(target: str) -> bytes:
    """EIP-1167 runtime for ``target``."""
    return bytes.fromhex("363d3d373d3d3d363d73" + target[2:].lower() + "5af43d82803e903d91602b57fd5bf3")


def slot_proxy(slot: int) -> bytes:
    """A delegating proxy reading its target from ``slot`` (the EIP-1967 pattern: PUSH32 slot SLOAD)."""
    return bytes.fromhex("363d3d373d3d363d7f") + slot.to_bytes(32, "big") + bytes.fromhex(
        "545af43d82803e903d91603b57fd5bf3")


def test_eip1967_slots_are_the_standard_ones():
    assert EIP1967_IMPLEMENTATION_SLOT == int.from_bytes(keccak(text="eip1967.proxy.implementation"), "big") - 1
    assert hex(EIP1967_IMPLEMENTATION_SLOT) == "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
    assert hex(EIP1967_BEACON_SLOT) == "0xa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50"


def test_drainer_name_resolved_from_the_selector_table():
    (method,) = methods_from_bytecode(dispatcher(sel("SecurityUpdate()")), REG)
    assert method["selector"] == "0x5fba79f5"
    assert method["candidates"][0] == "SecurityUpdate()"


def test_colliding_selector_lists_every_candidate():
    table = selector_table(REG)
    sigs = [e.signature for e in table.lookup("0xa9059cbb")]
    assert {"transfer(address,uint256)", "many_msg_babbage(bytes1)"} <= set(sigs)
    (method,) = methods_from_bytecode(dispatcher(sel("transfer(address,uint256)")), REG)
    assert set(method["candidates"]) >= {"transfer(address,uint256)", "many_msg_babbage(bytes1)"}
    # a name only when exactly one candidate has evmole's argument types
    matching = [e.signature for e in table.lookup("0xa9059cbb") if ",".join(e.types) == method["arguments"]]
    assert (method["name"] is not None) == (len(matching) == 1)


def test_candidates_ranked_by_fit_to_calldata():
    table = selector_table(REG)
    import eth_abi
    data = sel("transfer(address,uint256)") + eth_abi.encode(["address", "uint256"], [IMPL, 5])
    ranked = [c["signature"] for c in table.candidates(data)]
    assert ranked[0] == "transfer(address,uint256)"
    # bytes1 decodes the first word only if its padding is clean: an address word is not
    assert "many_msg_babbage(bytes1)" not in ranked
    one_byte = sel("many_msg_babbage(bytes1)") + b"\x7f" + b"\x00" * 31
    assert [c["signature"] for c in table.candidates(one_byte)] == ["many_msg_babbage(bytes1)"]


def test_eip1167_minimal_proxy_gives_its_implementation_and_its_methods():
    code = minimal_proxy(IMPL)
    assert detect_proxy(code) == {"standard": "EIP-1167", "implementation": IMPL, "unknown": []}
    chain = StaticChainFacts(1, {IMPL: dispatcher(sel("claim()"))})
    report = proxy_report("0x" + code.hex(), REG, chain, 1, PROXY)
    assert [m["selector"] for m in report["implementation_methods"]] == ["0x" + sel("claim()").hex()]
    unknown = proxy_report("0x" + code.hex(), REG, None, 1, PROXY)
    assert "implementation_methods" not in unknown and IMPL in unknown["unknown"][0]


def test_eip1967_proxy_reads_the_slot_only_from_chain_facts():
    code = slot_proxy(EIP1967_IMPLEMENTATION_SLOT)
    chain = StaticChainFacts(1, {}, storage={(PROXY, EIP1967_IMPLEMENTATION_SLOT): "0x" + IMPL[2:]})
    assert detect_proxy(code, chain=chain, address=PROXY)["implementation"] == IMPL
    blind = detect_proxy(code, address=PROXY)
    assert blind["standard"] == "EIP-1967" and blind["implementation"] is None
    assert "eth_getStorageAt" in blind["unknown"][0]
    beacon = detect_proxy(slot_proxy(EIP1967_BEACON_SLOT), chain=StaticChainFacts(1, {}, storage={
        (PROXY, EIP1967_BEACON_SLOT): IMPL}), address=PROXY)
    assert beacon == {"standard": "EIP-1967 beacon", "beacon": IMPL, "unknown": []}


def test_ordinary_code_is_no_proxy():
    assert detect_proxy(bytes.fromhex(dispatcher(sel("claim()"))[2:])) is None
    assert detect_proxy(minimal_proxy(IMPL)[:-1]) is None


def test_methods_endpoint_reports_the_proxy(det_service):
    answer = det_service.methods({"bytecode": "0x" + minimal_proxy(IMPL).hex(), "to": PROXY})
    assert answer["proxy"]["standard"] == "EIP-1167" and answer["proxy"]["implementation"] == IMPL
