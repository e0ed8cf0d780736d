"""The incremental Merkle tree and the two-step record body agree with their naive definitions.

:mod:`auditinf.ledger.merkle` recomputes RFC 6962 roots and proofs from the full leaf list; the
stored-subtree tree must give byte-identical answers for every size, index and truncation.
"""

from __future__ import annotations

import enum
import hashlib
import uuid

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from auditinf.errors import LedgerError
from auditinf.ledger import merkle
from auditinf.ledger.body import prepare, stamp
from auditinf.ledger.canonical import canonical_bytes, canonical_members
from auditinf.ledger.tree import MerkleTree


class Colour(enum.Enum):  # orjson writes enums and UUIDs; RFC 8785 refuses them
    RED = "red"


class Shade(enum.IntEnum):
    DARK = 2


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + i.to_bytes(4, "big")).digest() for i in range(n)]


LEAVES = leaves(70)


def test_every_root_and_proof_up_to_70_leaves_matches_the_naive_tree():
    tree = MerkleTree()
    for n in range(0, 71):
        assert tree.root(n) == merkle.root(LEAVES[:n])
        for i in range(n):
            assert tree.inclusion_proof(i, n) == merkle.inclusion_proof(i, LEAVES[:n])
        for m in range(1, n):
            assert tree.consistency_proof(m, n) == merkle.consistency_proof(m, LEAVES[:n])
        if n < 70:
            tree.append(LEAVES[n])


def test_rfc6962_empty_root():
    assert MerkleTree().root() == hashlib.sha256(b"").digest()


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_proofs_verify_and_survive_truncation(data):
    n = data.draw(st.integers(1, 300))
    cut = data.draw(st.integers(0, n))
    pool = leaves(n)
    tree = MerkleTree(pool)
    tree.truncate(cut)
    tree.extend(pool[cut:])  # rebuilt after a rolled-back batch: same tree
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    root = tree.root(size)
    assert root == merkle.root(pool[:size])
    merkle.verify_inclusion(index, size, pool[index], tree.inclusion_proof(index, size), root)
    if size < n:
        merkle.verify_consistency(size, n, root, tree.root(n), tree.consistency_proof(size, n))


def test_out_of_range_requests_raise():
    tree = MerkleTree(LEAVES[:5])
    for call in (lambda: tree.root(6), lambda: tree.inclusion_proof(5, 5), lambda: tree.consistency_proof(0, 5),
                 lambda: tree.consistency_proof(5, 5), lambda: tree.truncate(6), lambda: tree.append(b"short")):
        with pytest.raises(ValueError):
            call()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text()
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text().filter(lambda k: k not in ("v", "seq", "prev", "kid", "ts")), JSON, max_size=8),
       st.integers(0, 2**53 - 1))
def test_stamped_body_is_rfc8785_of_the_whole_record(content, seq):
    stamps = {"v": 1, "seq": seq, "prev": "ab" * 32, "kid": "0a1b2c3d", "ts": "2026-01-01T00:00:00.000000+00:00"}
    body = stamp(prepare(content), seq=seq, prev=stamps["prev"], kid=stamps["kid"], ts=stamps["ts"])
    assert body == rfc8785.dumps({**content, **stamps})


def test_utf16_member_order_differs_from_code_point_order():
    # U+FF61 sorts after U+1F600 by code point but before it by UTF-16 code unit (0xD83D < 0xFF61)
    content = {"\uff61": 1, "\U0001f600": 2}
    body = stamp(prepare(content), seq=0, prev="00" * 32, kid="00000000", ts="t")
    assert body.index("\U0001f600".encode()) < body.index("\uff61".encode())
    assert body == rfc8785.dumps({**content, "v": 1, "seq": 0, "prev": "00" * 32, "kid": "00000000", "ts": "t"})


@pytest.mark.parametrize("content", [{"seq": 1}, {"x": 2**60}, {"x": float("nan")}, {1: "a"}, ["list"], {"x": {1, 2}}])
def test_content_json_cannot_carry_is_refused_alone(content):
    with pytest.raises(LedgerError) as err:
        prepare(content)
    assert err.value.code == "invalid_record"


WILD = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.sampled_from(["\ud800", "\U0001f600", "\uff61", "a:1.5", "x,1234567890123456", "\u2028\x7f\x00\"\\",
                       '\\":1.5,"', '\\\\"', "1e5", uuid.UUID(int=7), Colour.RED, Shade.DARK]),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text() | st.integers() | st.sampled_from(["\U0001f600", "\uff61"]), inner, max_size=4),
    max_leaves=12)


def outcome(fn, value):
    try:
        return fn(value)
    except Exception:  # noqa: BLE001 - any refusal counts as "refused"
        return "refused"


@settings(max_examples=600, deadline=None)
@given(WILD)
def test_fast_canonical_path_equals_rfc8785_or_both_refuse(value):
    assert outcome(canonical_bytes, value) == outcome(rfc8785.dumps, value)
    if isinstance(value, dict):  # one check for the whole object, then each member written alone
        members = canonical_members(value)
        reference = outcome(lambda v: {k: rfc8785.dumps(k) + b":" + rfc8785.dumps(x) for k, x in v.items()}, value)
        assert members is None or members == reference


@pytest.mark.parametrize("value", [{2: "a", 10: "b"}, {"k": {1: 2}}, [1.0], {"x": 2**53 + 1}, "\U0001f600",
                                   {"a": 'x\\":1.5,"'}, {"a": 1e-05}, 12.0, {"a": [1e16]}, uuid.UUID(int=1),
                                   Colour.RED, Shade.DARK, float("nan"), 2**53 - 1, -(2**53 - 1),
                                   {"\uff61": 1, "\U0001f600": 2}, -(10**15), [True, None, 0]])
def test_fast_canonical_path_edge_cases(value):
    assert outcome(canonical_bytes, value) == outcome(rfc8785.dumps, value)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 600))
def test_level_by_level_root_is_the_rfc6962_root(n):
    from auditinf.ledger.tree import root_of

    assert root_of(leaves(n)) == merkle.root(leaves(n))
