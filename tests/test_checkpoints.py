"""Checkpoints issued by the ledger: when, what they sign, and refusal after a rollback.

Every signed note is opened with :func:`auditinf.ledger.note.open_checkpoint` and every root is
recomputed independently from the stored bodies (SHA-256(0x00 ‖ body), :func:`merkle.root`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from auditinf.errors import InputError, LedgerError, NotFound
from auditinf.ledger import Ledger, merkle
from auditinf.ledger.note import NoteVerifier, open_checkpoint
from auditinf.ledger.verify import verify_rows

ORIGIN = "test.auditinf/ledger"


def opened(ledger: Ledger, note: str):
    checkpoint, _ = open_checkpoint(note.encode(), ORIGIN, [NoteVerifier.from_log_key(ledger.signer.verifier)])
    return checkpoint


def body_leaves(ledger: Ledger) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + row.body).digest() for row in ledger.rows()]


def sql(ledger: Ledger, statement: str, *params) -> None:
    with sqlite3.connect(ledger.url.split("///", 1)[1]) as conn:
        conn.execute(statement, params)


@pytest.fixture
def every10(tmp_path: Path, signer) -> Ledger:
    led = Ledger(f"sqlite:///{tmp_path / 'cp.db'}", signer, checkpoint_every_records=10, checkpoint_every_s=600)
    yield led
    led.close()


def test_checkpoint_every_n_records_and_at_close(tmp_path: Path, every10: Ledger, signer):
    for i in range(25):
        every10.append({"kind": "test", "i": i})
    assert [c.size for c in every10.checkpoints()] == [10, 20]
    every10.close()
    reopened = Ledger(every10.url, signer)
    stored = list(reopened.checkpoints())
    assert [c.size for c in stored] == [10, 20, 25]
    leaves = body_leaves(reopened)
    for row in stored:
        checkpoint = opened(reopened, row.note)
        assert (checkpoint.size, checkpoint.root) == (row.size, merkle.root(leaves[:row.size]))
        assert row.root_hash == checkpoint.root.hex() and row.created_at.endswith("+00:00")
    reopened.close()


def test_checkpoint_now_signs_only_when_the_log_grew(every10: Ledger):
    empty = every10.checkpoint_now()
    assert empty.size == 0 and opened(every10, empty.note).root == hashlib.sha256(b"").digest()
    every10.append({"kind": "test"})
    first = every10.checkpoint_now()
    assert first.size == 1 and every10.checkpoint_now() == first == every10.latest_checkpoint()
    assert every10.checkpoint_at(1) == first
    with pytest.raises(NotFound) as err:
        every10.checkpoint_at(2)
    assert err.value.code == "checkpoint_not_found"


def test_checkpoint_after_t_seconds(tmp_path: Path, signer):
    led = Ledger(f"sqlite:///{tmp_path / 't.db'}", signer, checkpoint_every_records=10**6, checkpoint_every_s=0.05)
    led.append({"kind": "test"})
    assert led.latest_checkpoint() is None
    time.sleep(0.06)
    led.append({"kind": "test"})
    assert led.latest_checkpoint().size == 2
    led.close()


def test_covering_checkpoint_and_proofs_verify_against_signed_notes(every10: Ledger):
    for i in range(23):
        every10.append({"kind": "test", "i": i})
    leaves = body_leaves(every10)
    row, proof = every10.covering_checkpoint(22)  # not yet covered: a checkpoint of 23 is signed
    checkpoint = opened(every10, row.note)
    assert checkpoint.size == 23
    merkle.verify_inclusion(22, 23, leaves[22], proof, checkpoint.root)
    row5, proof5 = every10.covering_checkpoint(5)
    assert row5 == row  # the latest covers it already: nothing new signed
    merkle.verify_inclusion(5, 23, leaves[5], proof5, checkpoint.root)
    old = opened(every10, every10.checkpoint_at(10).note)
    merkle.verify_consistency(10, 23, old.root, checkpoint.root, every10.consistency_proof(10, 23))
    assert every10.leaf_hashes(3, 6) == leaves[3:6]
    with pytest.raises(NotFound):
        every10.covering_checkpoint(23)
    with pytest.raises(InputError) as err:
        every10.inclusion_proof(10, 10)
    assert err.value.code == "seq_not_in_tree"
    with pytest.raises(InputError) as err:
        every10.consistency_proof(0, 10)
    assert err.value.code == "invalid_range"
    with pytest.raises(NotFound) as err:
        every10.inclusion_proof(1, 24)
    assert err.value.code == "tree_size_not_found"


def fill_and_close(url: str, signer, n: int) -> None:
    led = Ledger(url, signer, checkpoint_every_records=10)
    for i in range(n):
        led.append({"kind": "test", "i": i})
    led.close()


@pytest.mark.parametrize("tamper", [
    "DELETE FROM record WHERE seq >= 7",                                    # rollback behind checkpoint 10
    "DELETE FROM record WHERE seq = 4",                                     # a gap
    "UPDATE record SET leaf_hash = '" + "ab" * 32 + "' WHERE seq = 3",      # a forked history
    "UPDATE checkpoint SET root_hash = '" + "cd" * 32 + "' WHERE size = 10",  # an edited checkpoint
])
def test_start_up_refuses_to_append_to_a_store_that_contradicts_its_checkpoint(tmp_path: Path, signer, tamper):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    fill_and_close(url, signer, 10)
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        conn.execute(tamper)
    led = Ledger(url, signer)
    for attempt in (lambda: led.append({"kind": "test"}), led.checkpoint_now):
        with pytest.raises(LedgerError) as err:
            attempt()
        assert err.value.code == "ledger_inconsistent" and err.value.http_status == 503
    assert led.size() <= 10 and [c.size for c in led.checkpoints()] == [10]  # reads still work, nothing signed
    led.close()


def test_restored_record_table_from_an_older_backup_is_refused(tmp_path: Path, signer):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    fill_and_close(url, signer, 5)
    backup = tmp_path / "backup.db"
    with sqlite3.connect(url.split("///", 1)[1]) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    led = Ledger(url, signer, checkpoint_every_records=10)
    for i in range(20):
        led.append({"kind": "test", "i": i})
    led.close()
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        conn.execute("ATTACH DATABASE ? AS old", (str(backup),))
        conn.execute("DELETE FROM record")
        conn.execute("INSERT INTO record SELECT * FROM old.record")
    led = Ledger(url, signer)
    with pytest.raises(LedgerError, match="older backup") as err:
        led.append({"kind": "test"})
    assert err.value.code == "ledger_inconsistent"
    led.close()


def test_records_removed_while_running_stop_appends(every10: Ledger):
    for i in range(12):
        every10.append({"kind": "test", "i": i})
    sql(every10, "DELETE FROM record WHERE seq >= 11")
    with pytest.raises(LedgerError) as err:
        every10.append({"kind": "test"})
    assert err.value.code == "ledger_inconsistent"


@pytest.mark.parametrize("tamper", [
    "UPDATE checkpoint SET root_hash = '" + "cd" * 32 + "' WHERE size = 10",
    "UPDATE checkpoint SET note = replace(note, char(10) || '10' || char(10), char(10) || '9' || char(10)) "
    "WHERE size = 10",
])
def test_the_latest_checkpoint_edited_while_running_stops_appends(every10: Ledger, tamper):
    """Each batch compares the latest checkpoint (size, root, note) with the one it checked before
    (it is cached between batches) and checks it again when any of them changed."""
    for i in range(12):
        every10.append({"kind": "test", "i": i})  # checkpoint 10 is signed, then checked and cached
    sql(every10, tamper)
    with pytest.raises(LedgerError) as err:
        every10.append({"kind": "test"})
    assert err.value.code == "ledger_inconsistent"


def test_a_reader_of_a_store_without_key_events_still_reads(tmp_path: Path, signer):
    """Stores made before key rotation have no key_event table; reading them (tree roots, the
    start-up check, a rotation) must not need it."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    fill_and_close(url, signer, 5)
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        conn.execute("DROP TABLE key_event")
    reader = Ledger(url, create=False)
    leaves = [bytes.fromhex(reader.get(seq).leaf_hash) for seq in range(5)]
    assert reader.tree_root(5) == merkle.root(leaves)
    reader.close()


class SlowFirstSign:
    """A signer whose first signature takes a while, so that appends queue into one batch."""

    def __init__(self, signer) -> None:
        self._signer, self.kid, self.verifier, self._first = signer, signer.kid, signer.verifier, True

    def sign(self, message: bytes) -> bytes:
        if self._first:
            self._first = False
            time.sleep(0.3)
        return self._signer.sign(message)


def test_a_failed_batch_fails_every_append_in_it_and_leaves_no_gap(every10: Ledger, signer):
    sql(every10, "CREATE TRIGGER boom BEFORE INSERT ON record WHEN instr(NEW.body, 'boom') > 0 "
                 "BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    every10.signer = SlowFirstSign(signer)
    outcomes: dict[int, object] = {}

    def append(i: int) -> None:
        try:
            outcomes[i] = every10.append({"kind": "test", "i": i, "tag": "boom" if i == 5 else "ok"})
        except LedgerError as exc:
            outcomes[i] = exc

    first = threading.Thread(target=append, args=(0,))
    first.start()
    time.sleep(0.1)  # the writer is signing record 0; the rest queue behind it
    rest = [threading.Thread(target=append, args=(i,)) for i in range(1, 9)]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join()
    failed = sorted(i for i, o in outcomes.items() if isinstance(o, LedgerError))
    assert 5 in failed and len(failed) > 1 and 0 not in failed  # the whole batch with record 5 failed
    stored = sorted(json.loads(row.body)["i"] for row in every10.rows())
    assert stored == sorted(set(range(9)) - set(failed))
    every10.signer = signer
    receipt = every10.append({"kind": "test", "i": 99})
    assert receipt.seq == 9 - len(failed)  # no gap
    assert verify_rows(every10.rows(), {signer.kid: signer.verifier}) == receipt.seq + 1
    row, proof = every10.covering_checkpoint(receipt.seq)
    merkle.verify_inclusion(receipt.seq, row.size, bytes.fromhex(receipt.leaf_hash), proof, opened(every10, row.note).root)


def test_sqlite_reads_do_not_take_the_write_lock(every10: Ledger):
    for i in range(3):
        every10.append({"kind": "test", "i": i})
    every10.checkpoint_now()
    holder = sqlite3.connect(every10.url.split("///", 1)[1], isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert every10.size() == 3 and every10.get(2).seq == 2 and len(list(every10.rows())) == 3
        assert every10.latest_checkpoint().size == 3 and every10.inclusion_proof(1, 3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_record_jcs_refuses_fails_alone_inside_a_batch(every10: Ledger, signer):
    every10.signer = SlowFirstSign(signer)
    outcomes: dict[int, object] = {}

    def append(i: int) -> None:
        content = {"kind": "test", "i": i, "amount": 2**60 if i == 4 else i}  # 2^60: beyond I-JSON
        try:
            outcomes[i] = every10.append(content)
        except LedgerError as exc:
            outcomes[i] = exc

    first = threading.Thread(target=append, args=(0,))
    first.start()
    time.sleep(0.1)
    rest = [threading.Thread(target=append, args=(i,)) for i in range(1, 9)]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join()
    assert isinstance(outcomes[4], LedgerError) and outcomes[4].code == "invalid_record"
    assert sorted(o.seq for i, o in outcomes.items() if i != 4) == list(range(8))
    assert verify_rows(every10.rows(), {signer.kid: signer.verifier}) == 8


@pytest.mark.parametrize("tamper, seq, step", [
    (None, None, None),
    ("UPDATE record SET body = CAST(replace(CAST(body AS TEXT), '\"i\":3', '\"i\":4') AS BLOB) WHERE seq = 3",
     3, "leaf_hash"),
    ("UPDATE record SET body = CAST(replace(CAST(body AS TEXT), '\"i\":3', '\"i\":4') AS BLOB), "
     "leaf_hash = '{leaf}' WHERE seq = 3", None, "checkpoint_root"),
    ("DELETE FROM record WHERE seq = 5", 5, "contiguous_seq"),
    ("DELETE FROM record WHERE seq = 11", 11, "size"),
])
def test_hash_only_check_against_a_signed_checkpoint(every10: Ledger, tamper, seq, step):
    from auditinf.errors import VerificationError
    from auditinf.ledger.hashcheck import verify_against_checkpoint

    for i in range(12):
        every10.append({"kind": "test", "i": i})
    checkpoint = opened(every10, every10.checkpoint_now().note)
    if tamper:
        edited = every10.get(3).body.replace(b'"i":3', b'"i":4')
        sql(every10, tamper.format(leaf=hashlib.sha256(b"\x00" + edited).hexdigest()))
    if step is None:
        assert verify_against_checkpoint(every10.leaf_rows(), checkpoint) == 12
        return
    with pytest.raises(VerificationError) as err:
        verify_against_checkpoint(every10.leaf_rows(), checkpoint)
    assert (err.value.seq, err.value.step) == (seq, step)


def test_append_with_checkpoint_is_covered_in_the_same_transaction(every10: Ledger):
    every10.append({"kind": "test"})
    receipt = every10.append({"kind": "gate"}, checkpoint=True)
    latest = every10.latest_checkpoint()
    assert latest.size == receipt.seq + 1 == 2
    row, proof = every10.covering_checkpoint(receipt.seq)
    assert row == latest  # nothing new signed
    merkle.verify_inclusion(receipt.seq, 2, bytes.fromhex(receipt.leaf_hash), proof, opened(every10, row.note).root)
