"""Calldata decoding: values computed independently with eth-abi, typed errors, bounded work."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import eth_abi
import pytest
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from auditinf.errors import BadCalldata, BadHex, InputError
from auditinf.evm import analyse_call, default_registry, parse_abi, parse_hex, parse_transaction
from auditinf.evm.decode import decode_with

ROOT = Path(__file__).resolve().parent.parent
REG = default_registry()
SPENDER = "0x2222222222222222222222222222222222222222"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def calldata(signature: str, types: list[str], values: list) -> str:
    return "0x" + (function_signature_to_4byte_selector(signature) + eth_abi.encode(types, values)).hex()


def tx(data: str, to: str = USDC, value: str = "0") -> dict:
    return {"chain_id": 1, "from": "0x1111111111111111111111111111111111111111", "to": to, "value": value,
            "data": data}


def decode(body: dict, abi=None):
    return analyse_call(parse_transaction(body), REG, parse_abi(abi) if abi is not None else None)


def test_invalid_hex_names_position():
    with pytest.raises(BadHex) as err:
        parse_hex("0x0a0bzz", field="data")
    assert err.value.code == "invalid_hex" and "position 4" in err.value.message and "byte offset 2" in err.value.message


def test_odd_length_hex():
    with pytest.raises(BadHex) as err:
        parse_hex("0xabc", field="data")
    assert err.value.code == "odd_length_hex"


@pytest.mark.parametrize("value,wei", [("0", 0), ("1250000000000000000", 1250000000000000000),
                                       ("0x1158e460913d0000", 1250000000000000000), (7, 7)])
def test_value_forms(value, wei):
    assert parse_transaction(tx("0x", value=value)).value == wei


@pytest.mark.parametrize("value", ["-1", "1.5", "0x", True, "1e18", str(2**256)])
def test_bad_values_are_typed(value):
    with pytest.raises(InputError) as err:
        parse_transaction(tx("0x", value=value))
    assert err.value.code == "invalid_value"


def test_bad_checksum_refused():
    bad = "0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48"  # one letter's case flipped
    with pytest.raises(InputError) as err:
        parse_transaction(tx("0x", to=bad))
    assert err.value.code == "invalid_address"


def test_unlimited_approve_decodes_exactly():
    data = calldata("approve(address,uint256)", ["address", "uint256"], [SPENDER, 2**256 - 1])
    call = decode(tx(data))
    assert call.decoded.method == "approve"
    assert call.decoded.signature == "approve(address,uint256)"
    assert call.decoded.selector == "0x095ea7b3"
    assert call.decoded.args == {"spender": SPENDER, "value": str(2**256 - 1)}
    assert call.decoded.display == {"value": "unlimited (2^256-1)"}
    assert call.source.file == "abi_samples/abis/erc20.json" and len(call.source.sha256) == 64


def test_native_transfer_and_unknown_selector():
    assert decode(tx("0x", value="5")).kind == "native_transfer"
    unknown = decode(tx("0x5fba79f5"))
    assert unknown.kind == "unknown_selector" and unknown.selector == "0x5fba79f5" and unknown.decoded is None


@pytest.mark.parametrize("data", ["0x09", "0x095e", "0x095ea7"])
def test_calldata_shorter_than_selector(data):
    with pytest.raises(BadCalldata) as err:
        decode(tx(data))
    assert err.value.code == "calldata_too_short"


def test_tuple_array_and_nested_names():
    abi = json.loads((ROOT / "abi_samples/abis/multicall3.json").read_text())["abi"]
    calls = [(USDC, False, b"\x70\xa0\x82\x31" + b"\x00" * 32), (SPENDER, True, b"")]
    data = calldata("aggregate3((address,bool,bytes)[])", ["(address,bool,bytes)[]"], [calls])
    call = decode(tx(data, to="0xcA11bde05977b3631167028862bE2a173976CA11"), abi)
    assert call.decoded.args["calls"] == [
        {"target": USDC, "allowFailure": False, "callData": "0x70a08231" + "00" * 32},
        {"target": SPENDER, "allowFailure": True, "callData": "0x"},
    ]


def test_trailing_bytes_reported():
    data = calldata("transfer(address,uint256)", ["address", "uint256"], [SPENDER, 5]) + "cafe"
    call = decode(tx(data))
    assert call.decoded.args == {"to": SPENDER, "value": "5"} and call.decoded.trailing_bytes == "0xcafe"


def test_out_of_range_offset_is_typed():
    abi = [{"type": "function", "name": "post", "inputs": [{"name": "s", "type": "string"}], "outputs": []}]
    bad = "0x" + (function_signature_to_4byte_selector("post(string)") + (2**40).to_bytes(32, "big")).hex()
    with pytest.raises(BadCalldata) as err:
        decode(tx(bad, to=SPENDER), abi)
    assert err.value.code == "abi_decode_error"


def test_invalid_utf8_string_is_typed():
    abi = [{"type": "function", "name": "post", "inputs": [{"name": "s", "type": "string"}], "outputs": []}]
    body = (32).to_bytes(32, "big") + (2).to_bytes(32, "big") + b"\xff\xfe" + b"\x00" * 30
    data = "0x" + (function_signature_to_4byte_selector("post(string)") + body).hex()
    with pytest.raises(BadCalldata) as err:
        decode(tx(data, to=SPENDER), abi)
    assert err.value.code == "abi_decode_error" and "UTF-8" in err.value.message


def test_dirty_bool_rejected_strictly_but_read_as_abi_coder_v1_does():
    data = calldata("setApprovalForAll(address,bool)", ["address", "uint256"], [SPENDER, 2])
    fn = next(f for _, f in REG.functions_with_selector(data[:10]) if f.signature == "setApprovalForAll(address,bool)")
    with pytest.raises(BadCalldata):
        decode_with(fn, bytes.fromhex(data[2:]))
    call = decode(tx(data))  # approval family: an old contract would run it (attack report 3)
    assert call.decoded.values[1] is True and call.noncanonical


@pytest.mark.parametrize("claimed", [2**64, 2**255, 10**9])
def test_length_bomb_bounded(claimed):
    """A dynamic array claiming a huge length is refused before decoding: < 50 MB, < 1 s."""
    abi = [{"type": "function", "name": "f", "inputs": [{"name": "xs", "type": "uint256[][]"}], "outputs": []}]
    head = (32).to_bytes(32, "big") + claimed.to_bytes(32, "big")
    data = "0x" + (function_signature_to_4byte_selector("f(uint256[][])") + head + b"\x00" * 64).hex()
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(BadCalldata):
        decode(tx(data, to=SPENDER), abi)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 50 * 2**20


def test_aliased_offsets_bounded():
    """Many array elements pointing at one large inner array: refused by the element budget."""
    abi = [{"type": "function", "name": "f", "inputs": [{"name": "xs", "type": "uint256[][]"}], "outputs": []}]
    outer_len = 2000
    inner_len = 2000
    words = [32, outer_len] + [32 * outer_len] * outer_len + [inner_len] + [0] * inner_len
    data = function_signature_to_4byte_selector("f(uint256[][])") + b"".join(w.to_bytes(32, "big") for w in words)
    started = time.perf_counter()
    with pytest.raises(BadCalldata):
        decode(tx("0x" + data.hex(), to=SPENDER), abi)
    assert time.perf_counter() - started < 1.0


def test_every_sample_transaction_decodes():
    files = sorted((ROOT / "abi_samples/transactions").glob("*.json"))
    assert len(files) >= 10
    for path in files:
        sample = json.loads(path.read_text())
        call = decode(sample)
        method = call.decoded.method if call.decoded else None
        assert method == sample["expect"]["method"], path.name
        if sample["expect"]["selector"]:
            assert call.selector == sample["expect"]["selector"], path.name


@settings(max_examples=60, deadline=None)
@given(to=st.binary(min_size=20, max_size=20), amount=st.integers(0, 2**256 - 1),
       label=st.text(max_size=40), payload=st.binary(max_size=70), ids=st.lists(st.integers(0, 2**64 - 1), max_size=5))
def test_roundtrip_against_eth_abi(to, amount, label, payload, ids):
    abi = [{"type": "function", "name": "g", "outputs": [], "inputs": [
        {"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}, {"name": "label", "type": "string"},
        {"name": "payload", "type": "bytes"}, {"name": "ids", "type": "uint64[]"}]}]
    (fn,) = parse_abi(abi)
    data = "0x" + (bytes.fromhex(fn.selector[2:]) + eth_abi.encode(
        ["address", "uint256", "string", "bytes", "uint64[]"], [to, amount, label, payload, ids])).hex()
    call = decode(tx(data, to=SPENDER), abi)
    assert call.decoded.args == {"to": to_checksum_address(to), "amount": str(amount), "label": label,
                                 "payload": "0x" + payload.hex(), "ids": [str(i) for i in ids]}
    assert call.decoded.trailing_bytes is None
