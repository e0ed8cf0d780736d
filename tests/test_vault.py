"""Private records: commitments in the body, openings sealed per client, disclosure, crypto-shredding."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from eth_abi import encode

from auditinf.errors import KeyFileError, LedgerError, NotFound, VerificationError
from auditinf.ledger import canonical_bytes, verify_rows
from auditinf.ledger.kek import load_kek
from auditinf.ledger.vault import PendingSeal, Vault

from .test_cli import run

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def approve(spender: str, amount: int) -> dict:
    data = "0x095ea7b3" + encode(["address", "uint256"], [spender, amount]).hex()
    return {"chain_id": 1, "to": USDC, "value": "0", "data": data, "private": True}


def canary(i: int) -> str:
    """A spender address that appears nowhere but in the private request."""
    return "0x" + hashlib.sha256(f"canary-{i}".encode()).hexdigest()[:40]


def db_bytes(path: Path) -> bytes:
    """The database file and its WAL / shared-memory files, as an attacker with disk access sees them."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def commitment_by_hand(tag: str, salt: bytes, content: bytes) -> str:
    return "sha256:" + hashlib.sha256(tag.encode() + b"\x00" + salt + content).hexdigest()


def test_private_record_keeps_commitments_and_discloses(det_service):
    answer = det_service.risk(approve(canary(1), 2**256 - 1), "wallet-7")
    seq = answer["receipt"]["seq"]
    row = det_service.ledger.get(seq)
    body = json.loads(row.body)
    assert canary(1)[2:] not in row.body.decode().lower()
    assert "clear" not in body["input"] and set(body["output"]) == {"commitment"}
    openings = {o.field: o for o in det_service.vault.disclose(seq, row.body)}
    assert set(openings) == {"input", "input.provenance", "output", "analysis.decoded"}
    # the opened input is the normalised transaction, committed exactly as SHA-256(tag‖0‖salt‖content)
    opened = json.loads(openings["input"].content)
    assert opened["transaction"]["data"] == approve(canary(1), 2**256 - 1)["data"]
    for field, where in (("input", body["input"]), ("output", body["output"]),
                         ("analysis.decoded", body["analysis"]["decoded"])):
        o = openings[field]
        assert where["commitment"] == o.commitment == commitment_by_hand(o.tag, o.salt, o.content)
    assert json.loads(openings["analysis.decoded"].content)["args"]["spender"].lower() == canary(1)
    assert json.loads(openings["output"].content)["explanation"]["summary"] == answer["explanation"]
    # the salt the caller got opens the same input commitment
    assert answer["input_commitment"]["salt"] == openings["input"].salt.hex()


def test_public_record_has_nothing_sealed(det_service):
    answer = det_service.risk({**approve(canary(2), 5), "private": False})
    with pytest.raises(NotFound) as exc:
        det_service.vault.disclose(answer["receipt"]["seq"], det_service.ledger.get(answer["receipt"]["seq"]).body)
    assert exc.value.code == "not_found"


def test_record_and_openings_commit_together(ledger, tmp_path: Path):
    vault = Vault(ledger.engine, tmp_path / "k" / "data.kek", create=True)
    seal = PendingSeal("c1")
    seal.commit("input", "auditinf/input/v1", b"secret input")
    write = vault.writer(seal)

    def failing(session, seq):
        write(session, seq)
        raise RuntimeError("disk full after the sealed rows were added")

    with pytest.raises(LedgerError) as err:  # the sequencer fails the whole batch with a typed error
        ledger.append({"kind": "t", "input": {"commitment": seal.items[0].commitment}}, attach=failing)
    assert isinstance(err.value.__cause__, RuntimeError)
    assert ledger.size() == 0
    with sqlite3.connect(ledger.url.split("///")[1]) as conn:
        assert conn.execute("SELECT count(*) FROM sealed").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM data_key").fetchone() == (0,)


def test_sealed_row_moved_to_another_record_does_not_open(ledger, tmp_path: Path):
    vault = Vault(ledger.engine, tmp_path / "k" / "data.kek", create=True)
    for i in range(2):
        seal = PendingSeal("c1")
        commitment = seal.commit("input", "auditinf/input/v1", f"content {i}".encode())
        ledger.append({"kind": "t", "client_id": "c1", "input": {"commitment": commitment}}, attach=vault.writer(seal))
    path = ledger.url.split("///")[1]
    with sqlite3.connect(path) as conn:  # give record 1 the opening of record 0 (its AAD names seq 0)
        nonce, ct = conn.execute("SELECT nonce, ciphertext FROM sealed WHERE seq = 0").fetchone()
        conn.execute("UPDATE sealed SET nonce = ?, ciphertext = ? WHERE seq = 1", (nonce, ct))
    with pytest.raises(VerificationError) as exc:
        vault.disclose(1, ledger.get(1).body)
    assert exc.value.step == "commitment" and exc.value.seq == 1
    assert vault.disclose(0, ledger.get(0).body)[0].content == b"content 0"


def test_wrong_or_unsafe_kek_refused(ledger, tmp_path: Path):
    kek_path = tmp_path / "k" / "data.kek"
    vault = Vault(ledger.engine, kek_path, create=True)
    seal = PendingSeal("c1")
    ledger.append({"kind": "t", "client_id": "c1",
                   "input": {"commitment": seal.commit("input", "auditinf/input/v1", b"x")}}, attach=vault.writer(seal))
    other = tmp_path / "other.kek"
    fd = os.open(other, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    with pytest.raises(KeyFileError):
        Vault(ledger.engine, other).disclose(0, ledger.get(0).body)
    os.chmod(kek_path, 0o644)
    with pytest.raises(KeyFileError):
        load_kek(kek_path)
    os.chmod(kek_path, 0o600)
    kek_path.write_bytes(b"short")
    with pytest.raises(KeyFileError):
        load_kek(kek_path)


def test_shred_destroys_content_and_chain_still_verifies(det_service, tmp_path: Path):
    service = det_service
    seqs = {"alice": [], "bob": []}
    for i in range(12):
        client = "alice" if i % 2 == 0 else "bob"
        seqs[client].append(service.risk(approve(canary(i), 10**18 + i), client)["receipt"]["seq"])
        service.risk({**approve("0x" + "33" * 20, 7), "private": False}, client)  # public records around them
    db = Path(service.ledger.url.split("///")[1])
    kek = load_kek(service.settings.data_kek_file).key
    with sqlite3.connect(db) as conn:
        wrapped = conn.execute("SELECT wrapped FROM data_key WHERE client_id = 'alice'").fetchone()[0]
        sealed = conn.execute("SELECT s.nonce, s.ciphertext, s.seq, s.field, s.key_id, s.tag, s.commitment "
                              "FROM sealed s JOIN data_key k USING (key_id) WHERE k.client_id = 'alice'").fetchall()
    data_key = aes_key_unwrap(kek, wrapped)
    secrets = [wrapped, data_key] + [row[1] for row in sealed]
    raw = db_bytes(db)
    assert all(s in raw for s in [wrapped] + [row[1] for row in sealed])  # the probe finds them before
    # what the probe looks for really is alice's content: it decrypts to salt ‖ the canonical input
    nonce, ct, seq, field, key_id, tag, commitment = next(r for r in sealed if r[3] == "input")
    aad = canonical_bytes({"v": "auditinf/sealed/v1", "client_id": "alice", "commitment": commitment, "field": field,
                           "key_id": key_id, "seq": seq, "tag": tag})
    plain = AESGCM(data_key).decrypt(nonce, ct, aad)
    assert commitment_by_hand(tag, plain[:32], plain[32:]) == commitment and canary(0)[2:].encode() in plain.lower()

    report = service.vault.shred("alice")
    assert report.data_keys == 1 and report.sealed_rows == 4 * 6 and report.files_scrubbed

    raw = db_bytes(db)
    for secret in secrets:
        assert secret not in raw
    for i in range(0, 12, 2):  # alice's spenders, in any spelling
        assert canary(i)[2:].encode() not in raw.lower() and bytes.fromhex(canary(i)[2:]) not in raw
    for seq in seqs["alice"]:
        with pytest.raises(NotFound) as exc:
            service.vault.disclose(seq, service.ledger.get(seq).body)
        assert exc.value.code == "content_shredded"
    for seq in seqs["bob"]:
        assert service.vault.disclose(seq, service.ledger.get(seq).body)
    signer = service.ledger.signer
    assert verify_rows(service.ledger.rows(), {signer.kid: signer.verifier}) == 24
    # a new private request from alice gets a fresh data key
    again = service.risk(approve(canary(99), 1), "alice")["receipt"]["seq"]
    assert service.vault.disclose(again, service.ledger.get(again).body)


def test_cli_disclose_and_shred(tmp_path: Path):
    assert run(tmp_path, "keygen").returncode == 0
    tx = tmp_path / "tx.json"
    tx.write_text(json.dumps(approve(canary(5), 123)))
    risk = run(tmp_path, "risk", str(tx), "--private")
    assert risk.returncode == 0, risk.stderr
    seq = json.loads(risk.stdout)["receipt"]["seq"]
    shown = run(tmp_path, "disclose", "--seq", str(seq))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    opened = {o["field"]: o for o in json.loads(shown.stdout)["openings"]}
    assert opened["input"]["content"]["transaction"]["data"] == approve(canary(5), 123)["data"]
    assert opened["input"]["commitment"] == commitment_by_hand(
        "auditinf/input/v1", bytes.fromhex(opened["input"]["salt"]), canonical_bytes(opened["input"]["content"]))
    shredded = run(tmp_path, "shred", "--client", "cli")
    assert shredded.returncode == 0 and json.loads(shredded.stdout)["sealed_rows"] == 4
    gone = run(tmp_path, "disclose", "--seq", str(seq))
    assert gone.returncode == 2 and json.loads(gone.stdout)["error"]["code"] == "content_shredded"
    assert run(tmp_path, "verify").returncode == 0
