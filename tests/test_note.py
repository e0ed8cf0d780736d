"""C2SP signed notes and checkpoints: the shared ledger cases 09/13/15 by id, plus round trips."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditinf.ledger import parse_verifier_key
from auditinf.ledger.note import (Checkpoint, NoteError, NoteVerifier, cosigner, open_checkpoint, open_note,
                                  sign_checkpoint)

from .conftest import load_cases

CASES = load_cases()
CT_ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")  # RFC 6962 test tree


def log_verifier(case: dict) -> NoteVerifier:
    key = case["input"]["trusted_keys"][0]
    public = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["ed25519_seed_hex"])).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == key["public_key_hex"]  # the case's own derivation, checked independently
    verifier = parse_verifier_key(key["vkey"])
    assert verifier.kid == key["key_id_hex"]
    return NoteVerifier.from_log_key(verifier)


def test_ledger_09_witness_cosignature_first_is_ignored_or_verified():
    case = CASES["ledger-09-checkpoint-cosignature-before-log-signature"]
    raw = base64.b64decode(case["input"]["note_b64"])
    assert raw.decode() == case["input"]["note_text"]
    origin = case["input"]["expected_origin"]
    checkpoint, note = open_checkpoint(raw, origin, [log_verifier(case)])
    expected = case["expected"]["checkpoint"]
    assert (checkpoint.origin, checkpoint.size, checkpoint.root.hex()) == (
        expected["origin"], expected["tree_size"], expected["root_hash_hex"])
    assert checkpoint.root == CT_ROOT_8
    assert list(note.verified_by) == case["expected"]["verified_signers"]
    witness = cosigner(case["input"]["witness_key_not_trusted"]["vkey"])
    assert witness.key_hash.hex() == case["input"]["witness_key_not_trusted"]["key_id_hex"]
    _, both = open_checkpoint(raw, origin, [log_verifier(case), witness])
    assert sorted(both.verified_by) == sorted([origin, "witness.example/w1"])


def test_ledger_13_origin_must_match_byte_for_byte():
    case = CASES["ledger-13-checkpoint-origin-mismatch-same-key"]
    verifier = log_verifier(case)
    for variant in case["input"]["variants"]:
        raw = base64.b64decode(variant["note_b64"])
        open_note(raw, [verifier])  # the signature itself is valid ...
        with pytest.raises(NoteError, match="origin"):  # ... the origin is not this log's
            open_checkpoint(raw, case["input"]["expected_origin"], [verifier])


def test_ledger_15_strict_framing():
    case = CASES["ledger-15-note-framing-cr-newline-trailing-data"]
    verifier, origin = log_verifier(case), case["input"]["expected_origin"]
    checkpoint, _ = open_checkpoint(base64.b64decode(case["input"]["valid_base"]["note_b64"]), origin, [verifier])
    assert checkpoint.size == 8 and checkpoint.root == CT_ROOT_8
    for variant in case["input"]["variants"]:
        with pytest.raises(NoteError):
            open_checkpoint(base64.b64decode(variant["note_b64"]), origin, [verifier])


def test_sign_and_open_round_trip(signer):
    root = hashlib.sha256(b"root").digest()
    note = sign_checkpoint(Checkpoint(signer.verifier.name, 42, root), signer)
    checkpoint, opened = open_checkpoint(note.encode(), signer.verifier.name,
                                         [NoteVerifier.from_log_key(signer.verifier)])
    assert (checkpoint.size, checkpoint.root) == (42, root)
    assert opened.verified_by == (signer.verifier.name,)
    tampered = note.replace("\n42\n", "\n43\n")
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(tampered.encode(), signer.verifier.name, [NoteVerifier.from_log_key(signer.verifier)])


@pytest.mark.parametrize("size", ["08", "-1", "1e3", " 8", "9223372036854775808"])
def test_non_canonical_sizes_are_refused(signer, size):
    text = f"{signer.verifier.name}\n{size}\n{base64.b64encode(bytes(32)).decode()}\n"
    from auditinf.ledger.note import sign_note
    with pytest.raises(NoteError, match="size"):
        open_checkpoint(sign_note(text, signer).encode(), signer.verifier.name,
                        [NoteVerifier.from_log_key(signer.verifier)])


def test_unknown_signers_only_is_refused(signer, tmp_path):
    from auditinf.ledger import generate_key
    other = generate_key(tmp_path / "other.key", signer.verifier.name)
    note = sign_checkpoint(Checkpoint(signer.verifier.name, 1, bytes(32)), other)
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_checkpoint(note.encode(), signer.verifier.name, [NoteVerifier.from_log_key(signer.verifier)])
