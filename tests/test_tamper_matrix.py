"""Tamper matrix: ≥ 1,000 seeded random tamperings of one ledger, every one detected at the right place.

The ledger is built once (records across a key rotation, checkpoints every 8 records, database
backups taken on the way); each trial mutates an in-memory copy of its rows and checkpoints and
runs the same :func:`~auditinf.ledger.audit.audit` that ``auditinf verify`` runs. Kinds: body
byte flips (with and without a recomputed leaf hash), deletions, insertions (forged by an unknown
key, or a replayed record), reorderings, signature swaps, checkpoint edits (note text, note
signature, stored root), truncation behind a checkpoint the auditor holds, and rollbacks to an
earlier backup of the database file.
"""

from __future__ import annotations

import base64
import hashlib
import random
import shutil
from collections import Counter
from dataclasses import dataclass, replace

import pytest

from auditinf.ledger import Ledger, canonical_bytes
from auditinf.ledger.audit import AuditReport, StoredCheckpoint, audit
from auditinf.ledger.bundle import BundleRow, DbSource
from auditinf.ledger.keys import new_signer
from auditinf.ledger.note import Checkpoint, sign_checkpoint
from auditinf.ledger.rotation import rotate

NAME = "test.auditinf/ledger"
RECORDS = 48
TRIALS = 1040


@dataclass
class ListSource:
    rows_: list
    checkpoints_: list
    description: str = "memory"

    def rows(self):
        return iter(self.rows_)

    def checkpoints(self):
        return iter(self.checkpoints_)

    def count(self):
        return len(self.rows_)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """48 records (key A for 0–23, key event at 24, key B after), a checkpoint every 8 records,
    and copies of the database file at sizes 16, 30 and 41."""
    root = tmp_path_factory.mktemp("matrix")
    url = f"sqlite:///{root / 'l.db'}"
    first, second = new_signer(NAME), new_signer(NAME)
    backups = {}
    ledger = Ledger(url, first, checkpoint_every_records=8)
    for i in range(24):
        ledger.append({"kind": "test", "i": i, "text": f"record {i} ✓"})
    rotate(ledger, second)
    ledger.close()
    ledger = Ledger(url, second, checkpoint_every_records=8)
    while ledger.size() < RECORDS:
        size = ledger.size()
        if size in (16, 30, 41):
            ledger.checkpoint_now()
            backup = root / f"backup-{size}.db"
            shutil.copy(root / "l.db", backup)
            for suffix in ("-wal", "-shm"):
                if (root / f"l.db{suffix}").exists():
                    shutil.copy(root / f"l.db{suffix}", root / f"backup-{size}.db{suffix}")
            backups[size] = f"sqlite:///{backup}"
        ledger.append({"kind": "test", "i": size, "nested": {"prev": "x" * 64, "seq": size}})
    ledger.checkpoint_now()
    rows = [BundleRow(r.seq, r.leaf_hash, bytes(r.body), r.signature, r.kid) for r in ledger.rows()]
    cps = [StoredCheckpoint(c.size, c.note, c.root_hash) for c in ledger.checkpoints()]
    ledger.close()
    trusted = {first.kid: first.verifier}
    assert audit(ListSource(rows, cps), trusted, NAME).ok
    assert len(rows) == RECORDS and cps[-1].size == RECORDS and len(cps) >= 6
    return rows, cps, trusted, backups, second


def flip(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data))
    return data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1:]


def leaf(body: bytes) -> str:
    return hashlib.sha256(b"\x00" + body).hexdigest()


def mutate(kind: str, rows: list, cps: list, rng: random.Random, second) -> tuple[list, list, bytes | None, dict]:
    """Apply one tampering; returns (rows, checkpoints, held note, expectation)."""
    rows, cps, held = list(rows), list(cps), None
    n = len(rows)
    if kind in ("flip", "flip_rehash"):
        s = rng.randrange(n)
        body = flip(rows[s].body, rng)
        rows[s] = replace(rows[s], body=body, leaf_hash=leaf(body) if kind == "flip_rehash" else rows[s].leaf_hash)
        return rows, cps, held, {"seq": s}
    if kind == "delete":
        s = rng.randrange(n - 1)
        k = rng.randint(1, min(3, n - 1 - s))
        del rows[s:s + k]
        if rng.random() < 0.5:  # and renumber the rest, as a careful attacker would
            rows = rows[:s] + [replace(r, seq=r.seq - k) for r in rows[s:]]
        return rows, cps, held, {"seq": s}
    if kind in ("insert_forged", "insert_replay"):
        s = rng.randrange(n)
        if kind == "insert_forged":  # a well-formed record signed by a key the log never named
            intruder = new_signer(NAME)
            prev = rows[s - 1].leaf_hash if s else "00" * 32
            body = canonical_bytes({"kind": "test", "forged": True, "v": 1, "seq": s, "prev": prev,
                                    "kid": intruder.kid, "ts": "2026-01-01T00:00:00.000000+00:00"})
            new = BundleRow(s, leaf(body), body, base64.b64encode(intruder.sign(body)).decode(), intruder.kid)
        else:  # a genuine record replayed at another position
            j = rng.choice([j for j in range(n) if j != s])
            new = replace(rows[j], seq=s)
        rows = rows[:s] + [new] + [replace(r, seq=r.seq + 1) for r in rows[s:]]
        return rows, cps, held, {"seq": s}
    if kind == "reorder":
        i, j = sorted(rng.sample(range(n), 2))
        rows[i], rows[j] = replace(rows[j], seq=i), replace(rows[i], seq=j)
        return rows, cps, held, {"seq": i}
    if kind == "signature_swap":
        i, j = rng.sample(range(n), 2)
        rows[i] = replace(rows[i], signature=rows[j].signature)
        return rows, cps, held, {"seq": i}
    if kind == "checkpoint_text":
        c = rng.randrange(len(cps))
        note = cps[c].note
        text_end = note.index("\n\n")
        pos = rng.randrange(text_end)
        edited = note[:pos] + chr((ord(note[pos]) - 32 + rng.randrange(1, 90)) % 95 + 32) + note[pos + 1:]
        if edited == note:
            edited = note[:pos] + ("1" if note[pos] != "1" else "2") + note[pos + 1:]
        cps[c] = replace(cps[c], note=edited)
        return rows, cps, held, {"seq": None, "checkpoint": cps[c].size}
    if kind == "checkpoint_signature":
        c = rng.randrange(len(cps))
        text, _, sigline = cps[c].note.rpartition("\n\n")
        name, _, b64 = sigline.rstrip("\n").rpartition(" ")
        sig = bytearray(base64.b64decode(b64))
        sig[rng.randrange(4, len(sig))] ^= rng.randrange(1, 256)  # keep the key id: a bad signature, not a stranger
        cps[c] = replace(cps[c], note=f"{text}\n\n{name} {base64.b64encode(bytes(sig)).decode()}\n")
        return rows, cps, held, {"seq": None, "checkpoint": cps[c].size}
    if kind == "checkpoint_root":
        c = rng.randrange(len(cps))
        cps[c] = replace(cps[c], root_hash=hashlib.sha256(rng.randbytes(8)).hexdigest())
        return rows, cps, held, {"seq": None, "checkpoint": cps[c].size}
    if kind == "checkpoint_resigned":  # the log's own key signs a root the records do not have
        c = rng.randrange(len(cps))
        size = cps[c].size
        if size == 0:
            c, size = len(cps) - 1, cps[-1].size
        note = sign_checkpoint(Checkpoint(NAME, size, rng.randbytes(32)), second) if size > 24 else None
        if note is None:  # before the rotation the retired key would be needed: edit a later one instead
            c, size = len(cps) - 1, cps[-1].size
            note = sign_checkpoint(Checkpoint(NAME, size, rng.randbytes(32)), second)
        previous = max((cp.size for cp in cps[:c]), default=0)
        cps[c] = StoredCheckpoint(size, note, None)
        return rows, cps, held, {"seq": previous, "checkpoint": size}
    if kind == "truncate_held":
        held_cp = rng.choice([cp for cp in cps if cp.size > 1])
        t = rng.randrange(1, held_cp.size)
        rows = rows[:t]
        cps = [cp for cp in cps if cp.size <= t]  # the attacker removes the checkpoints that would tell
        return rows, cps, held_cp.note.encode(), {"seq": t, "step": "truncated"}
    raise AssertionError(kind)


KINDS = ["flip", "flip_rehash", "delete", "insert_forged", "insert_replay", "reorder", "signature_swap",
         "checkpoint_text", "checkpoint_signature", "checkpoint_root", "checkpoint_resigned", "truncate_held"]


def check(report: AuditReport, expect: dict, kind: str) -> None:
    assert not report.ok, kind
    assert report.first_bad_seq == expect["seq"], (kind, report.to_dict())
    if "checkpoint" in expect:
        assert report.checkpoint == expect["checkpoint"], (kind, report.to_dict())
        assert report.step.startswith("checkpoint"), (kind, report.step)
    if "step" in expect:
        assert report.step == expect["step"], (kind, report.to_dict())


def test_tamper_matrix_detects_every_trial(built):
    rows, cps, trusted, backups, second = built
    rng = random.Random(20261129)
    detected, steps = Counter(), Counter()
    for trial in range(TRIALS):
        kind = KINDS[trial % len(KINDS)]
        mrows, mcps, held, expect = mutate(kind, rows, cps, rng, second)
        keys = trusted if held is None else {**trusted, second.kid: second.verifier}  # the auditor kept the key too
        report = audit(ListSource(mrows, mcps), keys, NAME, held=held)
        check(report, expect, kind)
        detected[kind] += 1
        steps[report.step] += 1
    assert sum(detected.values()) == TRIALS and set(detected) == set(KINDS)
    # the matrix exercises every check, not one lucky one
    assert {"canonical_json", "signature", "leaf_hash", "contiguous_seq", "key_id", "body_seq", "prev_link",
            "checkpoint_signature", "checkpoint_row", "checkpoint_root", "truncated"} <= set(steps), steps


@pytest.mark.parametrize("seed", range(12))
def test_rollback_to_an_earlier_backup_detected(built, seed):
    """The database file is replaced by an older copy; the auditor holds a later checkpoint."""
    _rows, cps, trusted, backups, second = built
    trusted = {**trusted, second.kid: second.verifier}
    rng = random.Random(seed)
    size = rng.choice(sorted(backups))
    held = rng.choice([cp for cp in cps if cp.size > size])
    ledger = Ledger(backups[size], create=False)
    try:
        assert audit(DbSource(ledger), trusted, NAME).ok  # the backup alone looks intact
        report = audit(DbSource(ledger), trusted, NAME, held=held.note.encode())
    finally:
        ledger.close()
    assert not report.ok and report.step == "truncated" and report.first_bad_seq == size
    assert report.checkpoint == held.size


def rewrite_from(rows: list, s: int) -> list:
    """Edit record ``s`` and recompute every later leaf hash and ``prev`` link, as someone without
    the signing key but with write access would: only signatures and signed roots can tell."""
    out = rows[:s]
    prev = out[-1].leaf_hash if out else "00" * 32
    for r in rows[s:]:
        at = r.body.rindex(b'"prev":"') + 8  # the top-level member sorts after "nested"
        body = r.body[:at] + prev.encode() + r.body[at + 64:]
        if r.seq == s:
            body = body.replace(b'"ts":"2', b'"ts":"3', 1)
        out.append(replace(r, body=body, leaf_hash=leaf(body)))
        prev = out[-1].leaf_hash
    return out


@pytest.mark.parametrize("s", [0, 7, 8, 23, 24, 40, 47])
def test_hash_only_mode_catches_a_rewritten_history_at_the_checkpoints(built, s):
    rows, cps, trusted, _backups, second = built
    keys = {**trusted, second.kid: second.verifier}  # hash-only mode reads no key events: every key is given
    assert audit(ListSource(rows, cps), keys, NAME, hash_only=True).ok
    report = audit(ListSource(rewrite_from(rows, s), cps), keys, NAME, hash_only=True)
    covering = [cp.size for cp in cps if cp.size <= s]
    assert not report.ok and report.step == "checkpoint_root"
    assert report.first_bad_seq == max(covering, default=0) <= s  # the first record no matching checkpoint covers
    full = audit(ListSource(rewrite_from(rows, s), cps), trusted, NAME)
    assert (full.first_bad_seq, full.step) == (s, "signature")  # the full pass pins the exact record
