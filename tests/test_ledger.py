"""Ledger: hashes derived by hand, 100+ record chains, tampering found at the right seq, keys."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from auditinf.errors import KeyFileError, VerificationError
from auditinf.ledger import Ledger, generate_key, leaf_hash, load_signer, parse_verifier_key, verify_rows


def verify(ledger: Ledger, **kw) -> int:
    return verify_rows(ledger.rows(), {ledger.signer.kid: ledger.signer.verifier}, **kw)


def fill(ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append({"kind": "test", "i": i, "amount": str(2**256 - 1 - i), "note": f"record {i} ✓"})


def sql(ledger: Ledger, statement: str, *params) -> None:
    path = ledger.url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)


def test_first_record_hashes_by_hand(ledger: Ledger):
    receipt = ledger.append({"kind": "test"})
    row = ledger.get(0)
    body = json.loads(row.body)
    assert body["seq"] == 0 and body["prev"] == "00" * 32 and body["kid"] == ledger.signer.kid
    # RFC 8785: sorted keys, no whitespace
    assert row.body == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert receipt.leaf_hash == hashlib.sha256(b"\x00" + row.body).hexdigest()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(parse_verifier_key(
        ledger.signer.verifier.verifier_key).verifier_key.split("+", 2)[2])[1:])
    public.verify(base64.b64decode(receipt.signature), row.body)  # raises if wrong
    second = ledger.append({"kind": "test"})
    assert json.loads(ledger.get(1).body)["prev"] == receipt.leaf_hash and second.seq == 1


def test_c2sp_key_id_by_hand(signer):
    raw = base64.b64decode(signer.verifier.verifier_key.split("+", 2)[2])
    expected = hashlib.sha256(b"test.auditinf/ledger\n" + raw).digest()[:4].hex()
    assert raw[0] == 1 and signer.kid == expected


def test_verify_passes_on_150_records(ledger: Ledger):
    fill(ledger, 150)
    assert verify(ledger) == 150


@pytest.fixture
def chain(ledger: Ledger) -> Ledger:
    fill(ledger, 120)
    return ledger


def expect_failure(ledger: Ledger, seq: int, step: str | None = None) -> None:
    with pytest.raises(VerificationError) as err:
        verify(ledger)
    assert err.value.seq == seq, err.value.message
    if step:
        assert err.value.step == step


@pytest.mark.parametrize("seq", [0, 1, 57, 119])
def test_flipped_body_byte_detected(chain: Ledger, seq: int):
    body = bytearray(chain.get(seq).body)
    rng = random.Random(seq)
    for _ in range(5):
        pos = rng.randrange(len(body))
        tampered = bytearray(body)
        tampered[pos] ^= 0x01
        sql(chain, "UPDATE record SET body = ? WHERE seq = ?", bytes(tampered), seq)
        expect_failure(chain, seq)
    sql(chain, "UPDATE record SET body = ? WHERE seq = ?", bytes(body), seq)
    assert verify(chain) == 120


def test_edit_with_recomputed_leaf_hash_still_detected(chain: Ledger):
    row = chain.get(40)
    body = json.loads(row.body)
    body["i"] = 999
    new = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    sql(chain, "UPDATE record SET body = ?, leaf_hash = ? WHERE seq = 40", new, leaf_hash(new))
    expect_failure(chain, 40, "signature")


@pytest.mark.parametrize("deleted", [[0], [3, 4], [60], [119]])
def test_deleted_rows_detected(chain: Ledger, deleted: list[int]):
    for seq in deleted:
        sql(chain, "DELETE FROM record WHERE seq = ?", seq)
    if deleted == [119]:
        expect_failure_size = 120  # truncation of the newest record needs the size the auditor holds
        assert verify(chain) == 119
        with pytest.raises(VerificationError) as err:
            verify(chain, expected_size=expect_failure_size)
        assert err.value.seq == 119
        return
    expect_failure(chain, deleted[0], "contiguous_seq")


def test_swapped_rows_detected(chain: Ledger):
    a, b = chain.get(10), chain.get(20)
    for target, src in ((10, b), (20, a)):
        sql(chain, "UPDATE record SET body = ?, leaf_hash = ?, signature = ? WHERE seq = ?",
            src.body, src.leaf_hash, src.signature, target)
    expect_failure(chain, 10, "body_seq")


def test_replaced_signature_detected(chain: Ledger):
    other = chain.get(5).signature
    sql(chain, "UPDATE record SET signature = ? WHERE seq = 6", other)
    expect_failure(chain, 6, "signature")


def test_foreign_key_signature_detected(chain: Ledger, tmp_path: Path):
    rogue = generate_key(tmp_path / "rogue.key", "test.auditinf/ledger")
    row = chain.get(30)
    sql(chain, "UPDATE record SET signature = ? WHERE seq = 30", base64.b64encode(rogue.sign(row.body)).decode())
    expect_failure(chain, 30, "signature")


def test_non_canonical_body_detected(chain: Ledger):
    row = chain.get(12)
    pretty = json.dumps(json.loads(row.body), indent=1, sort_keys=True, ensure_ascii=False).encode()
    sql(chain, "UPDATE record SET body = ?, leaf_hash = ? WHERE seq = 12", pretty, leaf_hash(pretty))
    expect_failure(chain, 12, "canonical_json")


def test_concurrent_appends_make_one_chain(ledger: Ledger):
    with ThreadPoolExecutor(8) as pool:
        receipts = list(pool.map(lambda i: ledger.append({"kind": "test", "i": i}), range(200)))
    assert sorted(r.seq for r in receipts) == list(range(200))
    assert verify(ledger) == 200


def test_two_processes_share_one_chain(tmp_path: Path, ledger: Ledger):
    script = (
        "import sys; from pathlib import Path; from auditinf.ledger import Ledger, load_signer\n"
        "led = Ledger(sys.argv[1], load_signer(Path(sys.argv[2]), 'test.auditinf/ledger'))\n"
        "[led.append({'kind': 'test', 'p': sys.argv[3], 'i': i}) for i in range(100)]\n"
    )
    key = str(tmp_path / "keys" / "signing.key")
    procs = [subprocess.Popen([sys.executable, "-c", script, ledger.url, key, str(p)]) for p in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert verify(ledger) == 300


def test_key_file_mode_and_refusals(tmp_path: Path):
    path = tmp_path / "k" / "signing.key"
    signer = generate_key(path, "n")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert parse_verifier_key(path.with_suffix(".pub").read_text()).kid == signer.kid
    with pytest.raises(KeyFileError):
        generate_key(path, "n")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by other users"):
        load_signer(path, "n")
    with pytest.raises(KeyFileError, match="not found"):
        load_signer(tmp_path / "missing.key", "n")


def test_verifier_key_with_wrong_id_refused(signer):
    name, kid, b64 = signer.verifier.verifier_key.split("+", 2)
    with pytest.raises(KeyFileError):
        parse_verifier_key(f"{name}+{'0' * 8}+{b64}")


def test_postgres_writer_connection_dropped_by_the_server_is_replaced(signer, pg_url: str):
    """The writer keeps its connection between batches; when the server ends it (restart, idle
    timeout), the next append begins again on a new one: nothing lost, nothing doubled."""
    led = Ledger(pg_url, signer)
    led.append({"kind": "test", "i": 0})
    old_pid = led._writer_conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    led._writer_conn.commit()
    with led.read_engine.connect() as admin:
        assert admin.exec_driver_sql(f"SELECT pg_terminate_backend({old_pid})").scalar() is True
    receipt = led.append({"kind": "test", "i": 1})
    assert receipt.seq == 1
    assert led._writer_conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != old_pid
    led._writer_conn.commit()
    assert verify(led) == 2 == led.size()
    led.close()


def test_postgres_start_up_check_with_a_writer_committing_between_its_reads(signer, pg_url: str, monkeypatch):
    """A ledger opening while another process appends must not see a checkpoint newer than the
    records it read (READ COMMITTED: one snapshot per statement)."""
    import auditinf.ledger.store as store

    writer = Ledger(pg_url, signer, checkpoint_every_records=5)
    for i in range(5):
        writer.append({"kind": "test", "i": i})
    real_latest = store.checkpoints.latest

    def latest_after_another_commit(conn):  # noqa: ANN001
        monkeypatch.setattr(store.checkpoints, "latest", real_latest)
        for i in range(5):
            writer.append({"kind": "test", "i": 5 + i})  # records 5..9 and checkpoint 10 commit now
        return real_latest(conn)

    monkeypatch.setattr(store.checkpoints, "latest", latest_after_another_commit)
    opened = Ledger(pg_url, signer)
    assert opened.append({"kind": "test", "i": 10}).seq == 10  # not ledger_inconsistent
    opened.close()
    writer.close()
    reader = Ledger(pg_url, signer)
    assert verify(reader) == 11
    reader.close()


def test_postgres_processes_share_one_chain(tmp_path: Path, signer, pg_url: str):
    script = (
        "import sys; from pathlib import Path; from auditinf.ledger import Ledger, load_signer\n"
        "led = Ledger(sys.argv[1], load_signer(Path(sys.argv[2]), 'test.auditinf/ledger'))\n"
        "[led.append({'kind': 'test', 'p': sys.argv[3], 'i': i}) for i in range(100)]\n"
    )
    Ledger(pg_url, signer).close()  # create the table once before the writers race
    key = str(tmp_path / "keys" / "signing.key")
    procs = [subprocess.Popen([sys.executable, "-c", script, pg_url, key, str(p)]) for p in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    led = Ledger(pg_url, signer)
    assert verify(led) == 300
    led.close()
