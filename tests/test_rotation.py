"""Signing-key rotation: key events, each record verified under the key valid at its seq."""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from auditinf.errors import LedgerError, VerificationError
from auditinf.ledger import Ledger, canonical_bytes, generate_key, load_signer, parse_verifier_key, verify_rows
from auditinf.ledger.keyevents import key_event_content
from auditinf.ledger.keys import new_signer, write_signer
from auditinf.ledger.rotation import rotate, rotate_key_file
from auditinf.ledger.verify import ChainVerifier

from .test_cli import SAMPLE, run

NAME = "test.auditinf/ledger"


def fill(ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append({"kind": "test", "i": i})


@pytest.fixture
def rotated(tmp_path: Path, ledger: Ledger, signer):
    """5 records by key A, the key event (seq 5), 5 records by key B."""
    fill(ledger, 5)
    new = new_signer(NAME)
    receipt = rotate(ledger, new)
    assert receipt.seq == 5 and receipt.kid == signer.kid  # the event is signed by the outgoing key
    after = Ledger(ledger.url, new)
    fill(after, 5)
    after.close()
    return signer, new


def test_records_verify_under_the_key_valid_at_their_seq(ledger: Ledger, rotated):
    old, new = rotated
    chain = ChainVerifier({old.kid: old.verifier})
    for row in ledger.rows():
        chain.feed(row)
    assert chain.finish() == 11
    spans = [s.to_dict() for s in chain.key_spans()]
    assert spans == [{"kid": old.kid, "verifier_key": old.verifier.verifier_key, "first_seq": 0, "last_seq": 5},
                     {"kid": new.kid, "verifier_key": new.verifier.verifier_key, "first_seq": 6, "last_seq": 10}]
    body = json.loads(ledger.get(5).body)
    assert body["key_event"]["new_verifier_key"] == new.verifier.verifier_key
    assert {v.kid for v in chain.keys_for_size(6)} == {old.kid, new.kid}  # a checkpoint right after the event
    assert {v.kid for v in chain.keys_for_size(11)} == {new.kid}


def test_only_the_initial_key_is_needed(ledger: Ledger, rotated):
    old, new = rotated
    assert verify_rows(ledger.rows(), {old.kid: old.verifier}) == 11
    with pytest.raises(VerificationError) as exc:  # the new key alone cannot vouch for records before it
        verify_rows(ledger.rows(), {new.kid: new.verifier})
    assert (exc.value.seq, exc.value.step) == (0, "key_id")


def forge(ledger: Ledger, signer) -> None:
    """Write the next record signed by ``signer`` straight into the table, as a store that ignored
    the key events (or an attacker with that key) would."""
    head = ledger.get(ledger.size() - 1)
    body = canonical_bytes({"kind": "test", "v": 1, "seq": head.seq + 1, "prev": head.leaf_hash, "kid": signer.kid,
                            "ts": "2026-01-01T00:00:00.000000+00:00"})
    with sqlite3.connect(ledger.url.split("///")[1]) as conn:
        conn.execute("INSERT INTO record (seq, leaf_hash, body, signature, kid) VALUES (?, ?, ?, ?, ?)",
                     (head.seq + 1, hashlib.sha256(b"\x00" + body).hexdigest(), body,
                      base64.b64encode(signer.sign(body)).decode(), signer.kid))


def test_store_refuses_to_sign_with_a_retired_key(ledger: Ledger, rotated):
    old, _new = rotated
    stale = Ledger(ledger.url, old)  # a process still holding the old key
    with pytest.raises(LedgerError) as exc:
        stale.append({"kind": "test", "stale": True})
    assert exc.value.code == "signing_key_retired"
    stale.close()
    assert ledger.size() == 11


def test_record_signed_by_retired_key_fails(ledger: Ledger, rotated):
    old, new = rotated
    forge(ledger, old)
    with pytest.raises(VerificationError) as exc:
        verify_rows(ledger.rows(), {old.kid: old.verifier, new.kid: new.verifier})
    assert (exc.value.seq, exc.value.step) == (11, "retired_key")


def test_record_signed_by_unknown_key_fails(ledger: Ledger, rotated):
    old, _new = rotated
    forge(ledger, new_signer(NAME))
    with pytest.raises(VerificationError) as exc:
        verify_rows(ledger.rows(), {old.kid: old.verifier})
    assert (exc.value.seq, exc.value.step) == (11, "key_id")


def test_key_event_without_proof_of_possession_fails(ledger: Ledger, signer):
    fill(ledger, 2)
    new, impostor = new_signer(NAME), new_signer(NAME)
    content = key_event_content(signer, new)
    forged = key_event_content(signer, impostor)["key_event"]["possession"]  # signed by another key
    content["key_event"]["possession"] = forged
    ledger.append(content)
    with pytest.raises(VerificationError) as exc:
        verify_rows(ledger.rows(), {signer.kid: signer.verifier})
    assert (exc.value.seq, exc.value.step) == (2, "key_event")


def test_key_event_naming_mismatched_key_id_fails(ledger: Ledger, signer):
    new = new_signer(NAME)
    content = key_event_content(signer, new)
    content["key_event"]["new_kid"] = "00000000"
    ledger.append(content)
    with pytest.raises(VerificationError) as exc:
        verify_rows(ledger.rows(), {signer.kid: signer.verifier})
    assert (exc.value.seq, exc.value.step) == (0, "key_event")


def test_retired_key_cannot_rotate_again(ledger: Ledger, rotated):
    old, _new = rotated
    with pytest.raises(LedgerError) as exc:
        rotate(Ledger(ledger.url, old), new_signer(NAME))
    assert exc.value.code == "signing_key_retired"


def test_interrupted_rotation_is_finished_or_discarded(tmp_path: Path):
    key = tmp_path / "keys" / "signing.key"
    old = generate_key(key, NAME)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    ledger = Ledger(url, old)
    fill(ledger, 2)
    # crash after writing .next but before the key event: the stray key is discarded
    stray = new_signer(NAME)
    write_signer(key.with_name("signing.key.next"), stray)
    result = rotate_key_file(lambda s: Ledger(url, s), key, NAME)
    assert result.new_kid != stray.kid and result.receipt.seq == 2
    assert load_signer(key, NAME).kid == result.new_kid
    assert parse_verifier_key(key.with_suffix(".pub").read_text()).kid == result.new_kid
    assert parse_verifier_key((key.parent / f"signing.{old.kid}.pub").read_text()).kid == old.kid
    # crash after the key event but before the files were swapped: the next run only swaps them
    current = load_signer(key, NAME)
    pending = new_signer(NAME)
    write_signer(key.with_name("signing.key.next"), pending)
    rotate(Ledger(url, current), pending)
    finished = rotate_key_file(lambda s: Ledger(url, s), key, NAME)
    assert finished.receipt is None and finished.new_kid == pending.kid
    assert load_signer(key, NAME).kid == pending.kid and not key.with_name("signing.key.next").exists()
    assert verify_rows(Ledger(url, create=False).rows(), {old.kid: old.verifier}) == 4


def test_cli_keygen_rotate_then_verify(tmp_path: Path):
    assert run(tmp_path, "keygen").returncode == 0
    first = (tmp_path / "k" / "s.pub").read_text().strip()
    assert run(tmp_path, "risk", str(SAMPLE)).returncode == 0
    rotated = run(tmp_path, "keygen", "--rotate")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    second = rotated.stdout.strip()
    assert second != first and (tmp_path / "k" / "s.pub").read_text().strip() == second
    after = run(tmp_path, "risk", str(SAMPLE))
    assert json.loads(after.stdout)["receipt"]["kid"] == parse_verifier_key(second).kid
    old_pub = tmp_path / "k" / f"s.{parse_verifier_key(first).kid}.pub"
    ok = run(tmp_path, "verify", "--pubkey", str(old_pub), "--json")
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["records"] == 3
    only_new = run(tmp_path, "verify", "--pubkey", str(tmp_path / "k" / "s.pub"), "--json")
    assert only_new.returncode == 1 and json.loads(only_new.stdout)["first_bad_seq"] == 0
