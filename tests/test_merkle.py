"""RFC 6962 / RFC 9162 Merkle tree: published vectors, shared cases, and properties against a
naive recomputation."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditinf.errors import VerificationError
from auditinf.ledger import leaf_hash
from auditinf.ledger.merkle import (EMPTY_ROOT, consistency_proof, inclusion_proof, node_hash, root,
                                    verify_consistency, verify_inclusion)

from .conftest import load_cases

CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [  # MTH of the first k leaves, k = 1..8 (RFC 6962 reference tests)
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
LEAVES = [bytes.fromhex(leaf_hash(bytes.fromhex(d))) for d in CT_LEAVES]
CASES = load_cases()


def h(x: str) -> bytes:
    return bytes.fromhex(x)


def naive_root(leaves: list[bytes]) -> bytes:
    """Bottom-up recomputation, independent of the recursive split (RFC 6962 §2.1 definition)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])  # an odd node is promoted unchanged
        level = nxt
    return level[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_ct_roots(size):
    assert root(LEAVES[:size]).hex() == CT_ROOTS[size - 1]


def test_empty_root():
    assert root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_ledger_01_inclusion_index_beyond_size():
    case = CASES["ledger-01-inclusion-index-beyond-size"]
    real = {8: 0, 13: 5}
    for variant in case["input"]["variants"]:
        path = [h(p) for p in variant["inclusion_path_hex"]]
        with pytest.raises(VerificationError):
            verify_inclusion(variant["leaf_index"], variant["tree_size"], h(variant["leaf_hash_hex"]), path,
                             h(case["input"]["root_hash_hex"]))
        verify_inclusion(real[variant["leaf_index"]], 8, h(variant["leaf_hash_hex"]), path,
                         h(case["input"]["root_hash_hex"]))  # control


def test_ledger_03_inclusion_extra_or_short_path():
    inp = CASES["ledger-03-inclusion-extra-or-short-path"]["input"]
    args = (inp["leaf_index"], inp["tree_size"], h(inp["leaf_hash_hex"]))
    verify_inclusion(*args, [h(p) for p in inp["valid_path_hex"]], h(inp["root_hash_hex"]))  # control
    for variant in inp["variants"]:
        path = variant.get("inclusion_path_hex")
        if path is None:  # variant D: a huge list
            path = inp["valid_path_hex"] * 3334
        with pytest.raises(VerificationError):
            verify_inclusion(*args, [h(p) for p in path], h(inp["root_hash_hex"]))


def test_ledger_06_consistency_from_empty_tree():
    inp = CASES["ledger-06-consistency-from-empty-tree"]["input"]
    for variant in inp["variants"]:
        with pytest.raises(VerificationError):
            verify_consistency(variant["first_size"], inp["second_size"], h(variant["first_root_hex"]),
                               h(inp["second_root_hex"]), [h(p) for p in variant["consistency_path_hex"]])


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 70), data=st.data())
def test_inclusion_proofs_against_naive_root(n, data):
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]
    expected = naive_root(leaves)
    assert root(leaves) == expected
    index = data.draw(st.integers(0, n - 1))
    path = inclusion_proof(index, leaves)
    verify_inclusion(index, n, leaves[index], path, expected)
    # (a path can also fit another tree size: the size is bound by the signed checkpoint, not the path)
    if path:  # any changed element or a wrong index fails
        bad = list(path)
        bad[data.draw(st.integers(0, len(bad) - 1))] = bytes(32)
        with pytest.raises(VerificationError):
            verify_inclusion(index, n, leaves[index], bad, expected)
    with pytest.raises(VerificationError):
        verify_inclusion((index + 1) % n if n > 1 else n, n, leaves[index], path, expected)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 70), data=st.data())
def test_consistency_proofs_against_naive_roots(n, data):
    leaves = [hashlib.sha256(b"c" + i.to_bytes(4, "big")).digest() for i in range(n)]
    m = data.draw(st.integers(1, n - 1))
    proof = consistency_proof(m, leaves)
    first, second = naive_root(leaves[:m]), naive_root(leaves)
    verify_consistency(m, n, first, second, proof)
    with pytest.raises(VerificationError):  # a forked history: one old leaf changed
        forked = list(leaves)
        forked[data.draw(st.integers(0, m - 1))] = bytes(32)
        verify_consistency(m, n, naive_root(forked[:m]), second, proof)
    with pytest.raises(VerificationError):
        verify_consistency(m, n, first, second, proof + [bytes(32)])


def test_equal_sizes():
    verify_consistency(8, 8, LEAVES[0], LEAVES[0], [])
    with pytest.raises(VerificationError):
        verify_consistency(8, 8, LEAVES[0], LEAVES[1], [])


def test_ledger_19_two_consecutive_records_deleted_worked_example():
    example = CASES["ledger-19-two-consecutive-records-deleted"]["input"]["worked_example"]
    leaves = [bytes.fromhex(leaf_hash(b.encode())) for b in example["bodies_utf8"]]
    assert [x.hex() for x in leaves] == example["leaf_hashes_hex"]
    assert root(leaves).hex() == example["honest_root_hex"]
    remaining = [leaves[i] for i in example["remaining_seqs"]]
    assert root(remaining).hex() == example["root_over_remaining_6_leaves_hex"] != example["honest_root_hex"]
    # record 5's prev names the deleted record 4, not record 2: the chain breaks at the gap's start
    assert '"prev":"' + example["leaf_hashes_hex"][4] in example["bodies_utf8"][5]
