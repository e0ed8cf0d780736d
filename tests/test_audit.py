"""The auditor's tools end to end: export → verify a bundle, verify --checkpoint, prove → verify-proof,
exit codes 0/1/2, and the fast RFC 8785 check against the reference implementation."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from auditinf.errors import VerificationError
from auditinf.ledger import Ledger, generate_key
from auditinf.ledger.audit import audit
from auditinf.ledger.bundle import BundleSource, DbSource, export_bundle
from auditinf.ledger.merkle import node_hash
from auditinf.ledger.proofs import build_proof, verify_proof
from auditinf.ledger.verify import is_canonical

from .test_cli import run

NAME = "auditinf.local/ledger"  # the CLI's default origin


@pytest.fixture
def cli_ledger(tmp_path: Path) -> Path:
    """The files the CLI of :func:`run` uses (key ``k/s.key``, ledger ``l.db``), holding 5 records
    written in-process (the CLI's own writing is tested in test_cli.py; this keeps subprocesses few)."""
    signer = generate_key(tmp_path / "k" / "s.key", NAME)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", signer)
    for i in range(5):
        ledger.append({"kind": "risk", "client_id": "cli", "i": i, "note": "approve ✓ unlimited"})
    ledger.close()
    return tmp_path


def jrun(tmp_path: Path, *args: str) -> tuple[int, dict]:
    done = run(tmp_path, *args)
    return done.returncode, json.loads(done.stdout)


def test_export_then_verify_bundle(cli_ledger: Path):
    code, exported = jrun(cli_ledger, "export", "--out", str(cli_ledger / "bundle"))
    assert code == 0 and exported["records"] == 5
    bundle = cli_ledger / "bundle"
    lines = (bundle / "records.jsonl").read_text().splitlines()
    with sqlite3.connect(cli_ledger / "l.db") as conn:
        stored = conn.execute("SELECT body, signature FROM record ORDER BY seq").fetchall()
    assert [json.loads(line)["body"].encode() for line in lines] == [bytes(b) for b, _ in stored]  # byte for byte
    assert [json.loads(line)["signature"] for line in lines] == [s for _, s in stored]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["files"]["records.jsonl"] == hashlib.sha256((bundle / "records.jsonl").read_bytes()).hexdigest()
    code, report = jrun(cli_ledger, "verify", str(bundle), "--pubkey", str(cli_ledger / "k" / "s.pub"), "--json")
    assert code == 0 and report["ok"] and report["records"] == 5
    assert report["checkpoints"] >= 1 and report["latest_checkpoint"]["size"] == 5


def test_tampered_bundle_names_the_first_bad_seq(cli_ledger: Path):
    bundle = cli_ledger / "bundle"
    assert run(cli_ledger, "export", "--out", str(bundle)).returncode == 0
    lines = (bundle / "records.jsonl").read_text().splitlines()
    record = json.loads(lines[3])
    record["body"] = record["body"].replace('"risk"', '"rusk"', 1)
    lines[3] = json.dumps(record, ensure_ascii=False)
    (bundle / "records.jsonl").write_text("\n".join(lines) + "\n")
    code, report = jrun(cli_ledger, "verify", str(bundle), "--pubkey", str(cli_ledger / "k" / "s.pub"), "--json")
    assert code == 1 and report["first_bad_seq"] == 3 and report["step"] == "leaf_hash"
    record["leaf_hash"] = hashlib.sha256(b"\x00" + record["body"].encode()).hexdigest()  # a careful forger
    lines[3] = json.dumps(record, ensure_ascii=False)
    (bundle / "records.jsonl").write_text("\n".join(lines) + "\n")
    code, report = jrun(cli_ledger, "verify", str(bundle), "--pubkey", str(cli_ledger / "k" / "s.pub"), "--json")
    assert code == 1 and report["first_bad_seq"] == 3 and report["step"] == "signature"


def test_unusable_input_exits_2(cli_ledger: Path):
    not_bundle = cli_ledger / "empty"
    not_bundle.mkdir()
    code, out = jrun(cli_ledger, "verify", str(not_bundle), "--json")
    assert code == 2 and out["error"]["code"] == "invalid_bundle"
    (cli_ledger / "bad.pub").write_text("nonsense\n")
    code, out = jrun(cli_ledger, "verify", "--pubkey", str(cli_ledger / "bad.pub"), "--json")
    assert code == 2 and out["error"]["code"] == "key_file_error"


def test_verify_against_a_held_checkpoint_catches_truncation(cli_ledger: Path):
    assert run(cli_ledger, "export", "--out", str(cli_ledger / "bundle")).returncode == 0  # signs a checkpoint
    with sqlite3.connect(cli_ledger / "l.db") as conn:
        size, note = conn.execute("SELECT size, note FROM checkpoint ORDER BY size DESC LIMIT 1").fetchone()
    held = cli_ledger / "held.note"
    held.write_text(note)
    code, report = jrun(cli_ledger, "verify", "--checkpoint", str(held), "--json")
    assert code == 0 and report["held_checkpoint"]["size"] == size
    with sqlite3.connect(cli_ledger / "l.db") as conn:  # drop the tail and the checkpoints that covered it
        conn.execute("DELETE FROM record WHERE seq >= ?", (size - 2,))
        conn.execute("DELETE FROM checkpoint WHERE size > ?", (size - 2,))
    code, report = jrun(cli_ledger, "verify", "--json")
    assert code == 0  # without the held checkpoint a clean cut is invisible
    code, report = jrun(cli_ledger, "verify", "--checkpoint", str(held), "--json")
    assert code == 1 and report["step"] == "truncated" and report["first_bad_seq"] == size - 2


def test_human_summary_names_the_failure(cli_ledger: Path):
    with sqlite3.connect(cli_ledger / "l.db") as conn:
        conn.execute("UPDATE record SET signature = (SELECT signature FROM record WHERE seq = 0) WHERE seq = 2")
    done = run(cli_ledger, "verify")
    assert done.returncode == 1
    assert "TAMPERED" in done.stdout and "first bad seq" in done.stdout and "│ 2 " in done.stdout.replace("  ", " ")
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


def inclusion_root(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 6962 §2.1.1 audit path folded by hand (independent of the verifier under test)."""
    def fold(lo: int, hi: int, i: int, p: list[bytes]) -> bytes:
        if hi - lo == 1:
            return leaf
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if i - lo < k:
            return node_hash(fold(lo, lo + k, i, p[:-1]), p[-1])
        return node_hash(p[-1], fold(lo + k, hi, i, p[:-1]))
    return fold(0, size, index, path)


def test_prove_and_verify_proof(cli_ledger: Path):
    proof_file = cli_ledger / "proof.json"
    code, out = jrun(cli_ledger, "prove", "--seq", "2", "--out", str(proof_file))
    assert code == 0 and out["tree_size"] >= 3
    doc = json.loads(proof_file.read_text())
    leaf = hashlib.sha256(b"\x00" + doc["record"]["body"].encode()).digest()
    root_line = doc["checkpoint"].split("\n")[2]
    assert inclusion_root(2, doc["inclusion"]["tree_size"], leaf,
                          [bytes.fromhex(p) for p in doc["inclusion"]["path"]]) == base64.b64decode(root_line)
    pub = str(cli_ledger / "k" / "s.pub")
    code, result = jrun(cli_ledger, "verify-proof", str(proof_file), "--pubkey", pub)
    assert code == 0 and result == {"ok": True, "seq": 2, "tree_size": doc["inclusion"]["tree_size"],
                                    "root_hash": base64.b64decode(root_line).hex(), "record_signature": "verified"}
    # any edit of the record, the path or the checkpoint fails
    for edit in ("body", "path", "checkpoint"):
        bad = json.loads(proof_file.read_text())
        if edit == "body":
            bad["record"]["body"] = bad["record"]["body"].replace('"risk"', '"rusk"', 1)
        elif edit == "path":
            bad["inclusion"]["path"][0] = "00" * 32
        else:
            bad["checkpoint"] = bad["checkpoint"].replace(root_line, base64.b64encode(b"\x01" * 32).decode())
        (cli_ledger / "bad.json").write_text(json.dumps(bad))
        code, result = jrun(cli_ledger, "verify-proof", str(cli_ledger / "bad.json"), "--pubkey", pub)
        assert code == 1 and not result["ok"], edit
    (cli_ledger / "bad.json").write_text("{}")
    code, result = jrun(cli_ledger, "verify-proof", str(cli_ledger / "bad.json"), "--pubkey", pub)
    assert code == 2 and result["error"]["code"] == "invalid_proof"


def test_proof_and_bundle_in_process(tmp_path: Path, signer):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}", signer, checkpoint_every_records=4)
    for i in range(11):
        ledger.append({"kind": "t", "i": i})
    doc = build_proof(ledger, 9)
    assert verify_proof(doc, [signer.verifier])["tree_size"] >= 10
    with pytest.raises(VerificationError):
        verify_proof({**doc, "inclusion": {**doc["inclusion"], "leaf_index": 8}}, [signer.verifier])
    manifest = export_bundle(ledger, tmp_path / "b", {signer.kid: signer.verifier}, signer.verifier.name)
    report = audit(BundleSource(tmp_path / "b"), {signer.kid: signer.verifier}, signer.verifier.name)
    assert report.ok and report.records == 11 == manifest["records"]
    assert report.checkpoints == manifest["checkpoints"] >= 2
    db = audit(DbSource(ledger), {signer.kid: signer.verifier}, signer.verifier.name)
    assert db.to_dict() | {"source": ""} == report.to_dict() | {"source": ""}
    ledger.close()


# -- RFC 8785: the fast canonical check agrees with the reference library ------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12)


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def reference(body: bytes) -> bool:
    try:
        return rfc8785.dumps(json.loads(body)) == body
    except Exception:
        return False


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_fast_jcs_check_agrees_with_rfc8785(value):
    try:
        canonical = rfc8785.dumps(value)
    except Exception:
        return
    # equal to re-canonicalising the parsed text (a float ≥ 2^53 prints as an integer JCS refuses to read back)
    assert is_canonical(canonical) == reference(canonical)
    if not any(isinstance(v, float) for v in _leaves(value)):
        assert is_canonical(canonical)
    for variant in (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
                    json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(),
                    json.dumps(value, sort_keys=True, separators=(",", ":")).encode(),
                    json.dumps(value, sort_keys=True).encode()):
        assert is_canonical(variant) == reference(variant), variant


@pytest.mark.parametrize("body", [
    b'{"a":1e+16}', b'{"a":10000000000000000}', b'{"a":1.0}', b'{"a":-0}', b'{"a":NaN}',
    '{"\U0001f600":1,"\ufb01":2}'.encode(), '{"\ufb01":2,"\U0001f600":1}'.encode(), b'{"a":"\\u00e9"}',
    b'{"a":"\\u001f"}', b'{"a":"\\u001F"}', b'{"a":1,"a":1}', b'{"b":1, "a":2}', b'{"a":9007199254740991}',
    b'{"a":9007199254740992}', b'{"a":18446744073709551616}', b'{"a":1.5}', b'{"a":"\\":1.0,"}',
    b'{"a":"\\\\","b":1.0}', b'{"a":"x","b":[1e1]}', b'1.0', b'1', b'{"a":-0.0}', b'{"a":"\\ud800"}',
])
def test_fast_jcs_check_edge_cases(body):
    assert is_canonical(body) == reference(body)
