"""KEK rotation: shredding stays final against old copies of the wrapped key (backups, WAL, dead
tuples), the other clients keep their content, and a crash at any point leaves the vault openable."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

from auditinf.errors import KeyFileError, LedgerError, NotFound
from auditinf.ledger import Ledger, verify_rows
from auditinf.ledger import kek_rotation as rotation_module
from auditinf.ledger.kek import KekFiles, load_kek
from auditinf.ledger.kek_rotation import rotate_kek, state_kek_id
from auditinf.ledger.vault import PendingSeal, Vault

from .test_cli import run
from .test_ledger_durability import CHILD, child_env
from .test_vault import approve, canary

CLIENTS = ("alice", "bob", "carol")


def seal_records(ledger: Ledger, vault: Vault, per_client: int = 2) -> dict[int, tuple[str, bytes]]:
    """Private records for each client; returns seq → (client, content)."""
    made = {}
    for i in range(per_client):
        for client in CLIENTS:
            seal = PendingSeal(client)
            content = f"{client} secret {i} {os.urandom(4).hex()}".encode()
            commitment = seal.commit("input", "auditinf/input/v1", content)
            receipt = ledger.append({"kind": "t", "client_id": client, "input": {"commitment": commitment}},
                                    attach=vault.writer(seal))
            made[receipt.seq] = (client, content)
    return made


def opened(vault: Vault, ledger: Ledger, seq: int) -> bytes:
    return vault.disclose(seq, bytes(ledger.get(seq).body))[0].content


def key_dir_files(kek: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in kek.parent.iterdir() if p.is_file()}


def kek_files(kek: Path) -> list[str]:
    """The vault's files beside the KEK (the signing key pair is there too)."""
    return sorted(set(key_dir_files(kek)) - {"signing.key", "signing.pub"})


def wrapped_keys(rows) -> dict[str, tuple[str, bytes]]:  # noqa: ANN001 - rows (client_id, kek_id, wrapped)
    return {client: (kek_id, bytes(wrapped)) for client, kek_id, wrapped in rows}


LIVE_KEYS = "SELECT client_id, kek_id, wrapped FROM {table} WHERE wrapped IS NOT NULL"


def sqlite_keys(path: Path) -> dict[str, tuple[str, bytes]]:
    with sqlite3.connect(path) as conn:
        return wrapped_keys(conn.execute(LIVE_KEYS.format(table="data_key")).fetchall())


def check_after_shred_and_rotate(ledger: Ledger, vault: Vault, made: dict, backup_url: str, kek: Path,
                                 old_key: bytes, backup_wrapped: dict, rotation) -> None:  # noqa: ANN001
    """What shred + rotate must leave: the backup's copy of alice's key opens under no KEK file that
    exists, the old KEK is in no file, the others still disclose, the rotation is a verified record."""
    new = load_kek(kek)
    assert rotation.old_kek_id == backup_wrapped["alice"][0] != rotation.new_kek_id == new.kek_id
    assert not KekFiles(kek).pending.exists()
    for name, data in key_dir_files(kek).items():  # no file beside the KEK holds the old one
        assert old_key not in data and old_key.hex().encode() not in data, name
    # the backup made before the shred still holds alice's wrapped key, and the old KEK opened it …
    assert len(aes_key_unwrap(old_key, backup_wrapped["alice"][1])) == 32
    # … but the KEK that exists now does not, and the vault over the backup says why
    with pytest.raises(InvalidUnwrap):
        aes_key_unwrap(new.key, backup_wrapped["alice"][1])
    backup = Ledger(backup_url, create=False)
    try:
        backup_vault = Vault(backup.engine, kek)
        for seq, (client, _) in made.items():
            with pytest.raises(KeyFileError):  # every client's backup copy: the price of rotating
                opened(backup_vault, backup, seq)
    finally:
        backup.close()
    for seq, (client, content) in made.items():
        if client == "alice":
            with pytest.raises(NotFound) as exc:
                opened(vault, ledger, seq)
            assert exc.value.code == "content_shredded"
        else:
            assert opened(vault, ledger, seq) == content
    record = json.loads(ledger.get(rotation.receipt.seq).body)
    assert record["kind"] == "kek_rotation"
    assert record["kek_rotation"] == {"old_kek_id": rotation.old_kek_id, "new_kek_id": rotation.new_kek_id}
    signer = ledger.signer
    assert verify_rows(ledger.rows(), {signer.kid: signer.verifier}) == ledger.size()


def test_shred_then_rotate_makes_a_backup_useless(ledger: Ledger, tmp_path: Path):
    kek = tmp_path / "keys" / "data.kek"
    vault = Vault(ledger.engine, kek, create=True)
    made = seal_records(ledger, vault)
    old_key = load_kek(kek).key
    db = Path(ledger.url.split("///")[1])
    backup_path = tmp_path / "backup.db"
    with sqlite3.connect(db) as src, sqlite3.connect(backup_path) as dst:
        src.backup(dst)
    backup_wrapped = sqlite_keys(backup_path)
    assert set(backup_wrapped) == set(CLIENTS)

    assert vault.shred("alice").data_keys == 1
    rotation = rotate_kek(vault, ledger)
    assert rotation.data_keys == 2 and rotation.receipt.seq == len(made)
    live = sqlite_keys(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT kek_id, seq FROM kek_state").fetchall() == [(rotation.new_kek_id,
                                                                                rotation.receipt.seq)]
    assert set(live) == {"bob", "carol"} and {k for k, _ in live.values()} == {rotation.new_kek_id}
    check_after_shred_and_rotate(ledger, vault, made, f"sqlite:///{backup_path}", kek, old_key, backup_wrapped,
                                 rotation)


def test_shred_then_rotate_on_postgres(signer, pg_url: str, tmp_path: Path):
    ledger = Ledger(pg_url, signer)
    try:
        kek = tmp_path / "keys" / "data.kek"
        vault = Vault(ledger.engine, kek, create=True)
        made = seal_records(ledger, vault)
        old_key = load_kek(kek).key
        # the backup: a copy of every table into another schema, taken before the shred
        schema = pg_url.split("search_path%3D")[1]
        backup_schema = f"{schema}_bk"
        with ledger.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA {backup_schema}"))
            for (table,) in conn.execute(sqlalchemy.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).all():
                conn.execute(sqlalchemy.text(f"CREATE TABLE {backup_schema}.{table} AS TABLE {schema}.{table}"))
        backup_url = pg_url.replace(f"search_path%3D{schema}", f"search_path%3D{backup_schema}")
        with ledger.engine.connect() as conn:
            backup_wrapped = wrapped_keys(conn.execute(sqlalchemy.text(
                LIVE_KEYS.format(table=f"{backup_schema}.data_key"))).all())
        assert set(backup_wrapped) == set(CLIENTS)

        vault.shred("alice")
        rotation = rotate_kek(vault, ledger)
        assert rotation.data_keys == 2
        check_after_shred_and_rotate(ledger, vault, made, backup_url, kek, old_key, backup_wrapped, rotation)
    finally:
        with ledger.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA IF EXISTS {pg_url.split('search_path%3D')[1]}_bk CASCADE"))
        ledger.close()


def test_running_vault_follows_a_rotation_made_elsewhere(ledger: Ledger, tmp_path: Path):
    kek = tmp_path / "keys" / "data.kek"
    serving = Vault(ledger.engine, kek, create=True)  # e.g. the API process, KEK cached
    made = seal_records(ledger, serving, per_client=1)
    other = Ledger(ledger.url, ledger.signer)  # e.g. `auditinf kek rotate`, another connection pool
    try:
        rotation = rotate_kek(Vault(other.engine, kek), other)
    finally:
        other.close()
    for seq, (_, content) in made.items():
        assert opened(serving, ledger, seq) == content
    seal = PendingSeal("dave")  # a new client's data key is wrapped under the new KEK, not the cached old one
    receipt = ledger.append({"kind": "t", "client_id": "dave",
                             "input": {"commitment": seal.commit("input", "auditinf/input/v1", b"d")}},
                            attach=serving.writer(seal))
    assert {k for k, _ in sqlite_keys(Path(ledger.url.split("///")[1])).values()} == {rotation.new_kek_id}
    assert opened(Vault(ledger.engine, kek), ledger, receipt.seq) == b"d"


class Crash(RuntimeError):
    """Stands for the process dying at that point (the rotation's own clean-up is disabled too)."""


def crash(*_args, **_kwargs):
    raise Crash()


def crash_on_replace(suffix: str):
    """``os.replace`` that dies when it would rename a file ending in ``suffix``."""
    real = os.replace

    def replace(src, dst):  # noqa: ANN001, ANN202
        if str(src).endswith(suffix):
            raise Crash()
        return real(src, dst)

    return replace


# point: (patch, a successor KEK file is left, the re-wrap committed)
CRASH_POINTS = {
    # the successor written to a temporary file, not yet renamed to <kek>.next
    "writing_next": (lambda mp: mp.setattr(os, "replace", crash_on_replace(".tmp")), False, False),
    # inside the re-wrap transaction: it never commits
    "before_commit": (lambda mp: mp.setattr(Vault, "rewrap", crash), True, False),
    # committed, the new KEK still only in <kek>.next
    "after_commit": (lambda mp: mp.setattr(KekFiles, "install_pending", crash), True, True),
    # committed, the old KEK file already zeroed, the rename not done
    "during_install": (lambda mp: mp.setattr(os, "replace", crash_on_replace(".next")), True, True),
}


def crash_and_recover(ledger: Ledger, kek: Path, point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = Vault(ledger.engine, kek, create=True)
    made = seal_records(ledger, vault, per_client=1)
    old = load_kek(kek)
    size = ledger.size()
    patch, left, committed = CRASH_POINTS[point]
    with monkeypatch.context() as mp:
        mp.setattr(rotation_module, "_settle", lambda vault: None)
        patch(mp)
        with pytest.raises((Crash, LedgerError)):
            rotate_kek(vault, ledger)
    pending = KekFiles(kek).pending
    assert pending.exists() == left
    if point == "writing_next":  # what a kill (rather than an exception) leaves: the temporary file
        stray = pending.with_name(f".{pending.name}.999.dead.tmp")
        stray.write_bytes(os.urandom(32))
    assert ledger.size() == size + committed  # the kek_rotation record commits with the re-wrap, or not at all
    new_id = load_kek(pending).kek_id if left else None
    expected = new_id if committed else old.kek_id
    assert state_kek_id(ledger.engine) == expected
    for seq, (_, content) in made.items():  # openable before any recovery ran
        assert opened(vault, ledger, seq) == content
    reopened = Vault(ledger.engine, kek)  # the next open finishes or rolls back
    assert kek_files(kek) == ["data.kek", "data.kek.lock"]  # no successor, no stray temporary file
    assert load_kek(kek).kek_id == state_kek_id(ledger.engine) == expected
    for seq, (_, content) in made.items():
        assert opened(reopened, ledger, seq) == content
    again = rotate_kek(reopened, ledger)  # and rotating works again afterwards
    assert again.old_kek_id == load_kek(kek).kek_id or again.new_kek_id == load_kek(kek).kek_id
    assert opened(Vault(ledger.engine, kek), ledger, next(iter(made))) == made[next(iter(made))][1]
    signer = ledger.signer
    assert verify_rows(ledger.rows(), {signer.kid: signer.verifier}) == ledger.size()


@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
def test_crash_between_steps_leaves_the_vault_openable(ledger: Ledger, tmp_path: Path, point: str,
                                                       monkeypatch: pytest.MonkeyPatch):
    crash_and_recover(ledger, tmp_path / "keys" / "data.kek", point, monkeypatch)


@pytest.mark.parametrize("point", ["before_commit", "during_install"])
def test_crash_between_steps_on_postgres(signer, pg_url: str, tmp_path: Path, point: str,
                                         monkeypatch: pytest.MonkeyPatch):
    ledger = Ledger(pg_url, signer)
    try:
        crash_and_recover(ledger, tmp_path / "keys" / "data.kek", point, monkeypatch)
    finally:
        ledger.close()


KILLS = 12


def test_sigkill_during_rotations_leaves_the_vault_openable(tmp_path: Path, signer):
    """A process rotating the KEK in a loop is SIGKILLed at random moments; after each kill the
    vault opens (finishing or rolling back), every content opens, one KEK file remains and it is
    never older than the last rotation the process completed."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    url, kek = f"sqlite:///{tmp_path / 'kek.db'}", tmp_path / "keys" / "data.kek"
    ledger = Ledger(url, signer)
    made = seal_records(ledger, Vault(ledger.engine, kek, create=True), per_client=1)
    ledger.close()
    zygote = subprocess.Popen([sys.executable, str(CHILD), "zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=child_env())
    rotations = 0
    try:
        for kill in range(KILLS):
            progress = tmp_path / f"progress-{kill}"
            zygote.stdin.write(f"kek {progress} {url} {tmp_path / 'keys' / 'signing.key'} {kek}\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not (progress.exists() and progress.read_text()):
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.2))
            os.kill(pid, signal.SIGKILL)
            zygote.stdin.write(f"reap {pid}\n")
            zygote.stdin.flush()
            assert zygote.stdout.readline().strip() == "reaped"
            done = [line for line in progress.read_text().splitlines(keepends=True) if line.endswith("\n")][1:]
            rotations += len(done)
            ledger = Ledger(url, signer)
            try:
                vault = Vault(ledger.engine, kek)
                state = state_kek_id(ledger.engine)
                assert load_kek(kek).kek_id == state and kek_files(kek) == ["data.kek", "data.kek.lock"]
                assert not done or state == done[-1].strip() or state not in {d.strip() for d in done}
                assert {k for k, _ in sqlite_keys(tmp_path / "kek.db").values()} == {state}
                for seq, (_, content) in made.items():
                    assert opened(vault, ledger, seq) == content
                ledger.checkpoint_now()  # the ledger is consistent with its checkpoints
                assert verify_rows(ledger.rows(), {signer.kid: signer.verifier}) == ledger.size()
            finally:
                ledger.close()
        assert rotations > KILLS  # the kills landed among running rotations
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)


def test_cli_shred_rotates_unless_told_not_to(tmp_path: Path):
    assert run(tmp_path, "keygen").returncode == 0
    tx = tmp_path / "tx.json"
    tx.write_text(json.dumps(approve(canary(7), 5)))
    seq = json.loads(run(tmp_path, "risk", str(tx), "--private").stdout)["receipt"]["seq"]
    kek = tmp_path / "k" / "data.kek"
    first = load_kek(kek).kek_id
    rotated = run(tmp_path, "kek", "rotate")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    out = json.loads(rotated.stdout)
    assert out["old_kek_id"] == first and out["new_kek_id"] == load_kek(kek).kek_id and out["data_keys"] == 1
    assert out["record"]["seq"] == seq + 1
    assert json.loads(run(tmp_path, "disclose", "--seq", str(seq)).stdout)["openings"]
    kept = run(tmp_path, "shred", "--client", "cli", "--no-rotate")
    assert kept.returncode == 0 and json.loads(kept.stdout)["kek_rotation"] is None
    assert load_kek(kek).kek_id == out["new_kek_id"]
    shredded = json.loads(run(tmp_path, "shred", "--client", "cli").stdout)
    assert shredded["kek_rotation"]["old_kek_id"] == out["new_kek_id"] and shredded["kek_rotation"]["data_keys"] == 0
    assert load_kek(kek).kek_id == shredded["kek_rotation"]["new_kek_id"]
    # a rotation that cannot run says so, after the shred it follows has been done
    seq = json.loads(run(tmp_path, "risk", str(tx), "--private").stdout)["receipt"]["seq"]
    os.chmod(kek, 0o644)
    failed = run(tmp_path, "shred", "--client", "cli")
    assert failed.returncode == 2 and json.loads(failed.stdout)["error"]["code"] == "kek_rotation_failed"
    gone = run(tmp_path, "disclose", "--seq", str(seq))
    assert json.loads(gone.stdout)["error"]["code"] == "content_shredded"
    os.chmod(kek, 0o600)
    assert run(tmp_path, "kek", "rotate").returncode == 0
    assert run(tmp_path, "verify").returncode == 0
