"""Crash and concurrency safety of the sequencer (group commit) on SQLite and PostgreSQL.

After every run the whole log is checked as an auditor would: :func:`verify_rows` (contiguous
seq, canonical bodies, links, leaf hashes, signatures), every receipt a client was given is stored
exactly as acknowledged, and every stored checkpoint opens under the log key with the root
recomputed from the stored bodies (SHA-256(0x00 ‖ body); the latest also by the naive
:func:`merkle.root`). Reopening the store for writing must pass the start-up consistency check.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from auditinf.ledger import Ledger, MerkleTree, merkle, verify_rows
from auditinf.ledger.note import NoteVerifier, open_checkpoint

from .conftest import write_policy

CHILD = Path(__file__).with_name("ledger_child.py")
ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "test.auditinf/ledger"


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def parse_receipts(text: str) -> list[dict]:
    """Complete lines only: a line cut by the kill was never fully handed to the client."""
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def check_log(url: str, signer, receipts: list[dict]) -> int:
    """Audit the store at ``url`` (see the module docstring); returns its size."""
    ledger = Ledger(url, signer)
    try:
        ledger.checkpoint_now()  # raises ledger_inconsistent if the start-up check failed
        rows = list(ledger.rows())
        assert verify_rows(rows, {signer.kid: signer.verifier}) == len(rows)
        for receipt in receipts:
            row = rows[receipt["seq"]]
            assert (row.leaf_hash, row.signature, row.kid) == (receipt["leaf_hash"], receipt["signature"],
                                                               receipt["kid"])
        assert len({r["seq"] for r in receipts}) == len(receipts)  # no seq acknowledged twice
        leaves = [hashlib.sha256(b"\x00" + bytes(row.body)).digest() for row in rows]
        tree = MerkleTree(leaves)
        verifier = [NoteVerifier.from_log_key(signer.verifier)]
        stored = list(ledger.checkpoints())
        for row in stored:
            checkpoint, _ = open_checkpoint(row.note.encode(), ORIGIN, verifier)
            assert checkpoint.size == row.size and checkpoint.root == tree.root(row.size) == row.root
        assert stored and stored[-1].size == len(rows) and stored[-1].root == merkle.root(leaves)
        return len(rows)
    finally:
        ledger.close()


# -- crash -------------------------------------------------------------------------------------
KILLS = 50


def test_sigkill_at_50_random_points_loses_no_acknowledged_record(tmp_path: Path, signer):
    """A writer (4 threads, checkpoint every 7 records) is SIGKILLed at a random moment, 50 times;
    each store survives 5 crashes before a fresh one is started."""
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    key = tmp_path / "keys" / "signing.key"
    zygote = subprocess.Popen([sys.executable, str(CHILD), "zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=child_env())
    try:
        total = 0
        for kill in range(KILLS):
            url = f"sqlite:///{tmp_path / f'crash-{kill // 5}.db'}"
            receipts_file = tmp_path / f"receipts-{kill // 5}.jsonl"
            zygote.stdin.write(f"run {receipts_file} {url} {key}\n")
            zygote.stdin.flush()
            before = receipts_file.stat().st_size if receipts_file.exists() else 0
            pid = int(zygote.stdout.readline())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and (receipts_file.stat().st_size if receipts_file.exists() else 0) == before:
                time.sleep(0.002)  # the writer is up and appending (however loaded the machine)
            time.sleep(rng.uniform(0.0, 0.25))  # then a random point of its work
            os.kill(pid, signal.SIGKILL)
            zygote.stdin.write(f"reap {pid}\n")
            zygote.stdin.flush()
            assert zygote.stdout.readline().strip() == "reaped"
            receipts = parse_receipts(receipts_file.read_text()) if receipts_file.exists() else []
            total += len(receipts)
            check_log(url, signer, receipts)
        assert total > KILLS  # every kill landed while records were being written
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=30)


# -- concurrency -------------------------------------------------------------------------------
def run_writers(url: str, key: Path, processes: int, count: int, threads: int) -> list[dict]:
    procs = [subprocess.Popen([sys.executable, str(CHILD), "load", url, str(key), f"p{p}", str(count), str(threads)],
                              stdout=subprocess.PIPE, text=True, env=child_env()) for p in range(processes)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [r for out in outputs for r in parse_receipts(out)]


def assert_one_chain(url: str, signer, receipts: list[dict], expected: int) -> None:
    assert sorted(r["seq"] for r in receipts) == list(range(expected))  # contiguous, each seq once
    assert check_log(url, signer, receipts) == expected


def test_four_processes_500_appends_each_make_one_sqlite_chain(tmp_path: Path, signer):
    url = f"sqlite:///{tmp_path / 'many.db'}"
    Ledger(url, signer).close()
    receipts = run_writers(url, tmp_path / "keys" / "signing.key", processes=4, count=500, threads=4)
    assert_one_chain(url, signer, receipts, 2000)


def test_four_processes_500_appends_each_make_one_postgres_chain(tmp_path: Path, signer, pg_url: str):
    Ledger(pg_url, signer).close()  # create the tables once before the writers race
    receipts = run_writers(pg_url, tmp_path / "keys" / "signing.key", processes=4, count=500, threads=4)
    assert_one_chain(pg_url, signer, receipts, 2000)


def healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_two_uvicorn_workers_on_one_sqlite_file_make_one_chain(tmp_path: Path, signer):
    policy = write_policy(tmp_path / "policy.json", public=["deterministic"], private=["deterministic"])
    url = f"sqlite:///{tmp_path / 'served.db'}"
    env = {**child_env(), "AUDITINF_LEDGER_URL": url, "AUDITINF_KEY_FILE": str(tmp_path / "keys" / "signing.key"),
           "AUDITINF_POLICY": str(policy), "AUDITINF_ORIGIN": ORIGIN, "AUDITINF_CHECKPOINT_EVERY_RECORDS": "25"}
    server = subprocess.Popen([sys.executable, "-m", "auditinf.cli", "serve", "--workers", "2", "--port", "0"],
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        base = None
        deadline = time.monotonic() + 120
        while base is None and time.monotonic() < deadline and server.poll() is None:
            line = server.stderr.readline()  # JSON log lines; the parent logs the bound address
            if "Uvicorn running on" in line:
                base = json.loads(line)["msg"].split("running on ")[1].split()[0]
        assert base, "server did not start"
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()  # drain the log
        with httpx.Client(base_url=base, timeout=60) as client:
            while not healthy(client) and time.monotonic() < deadline:
                time.sleep(0.1)  # the workers listen once they have started
            children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
            if children.exists():
                assert len(children.read_text().split()) >= 2  # two worker processes serve the requests

            def ask(i: int) -> dict:
                tx = {"chain_id": 1, "to": "0x" + f"{i + 1:040x}", "value": str(i), "data": "0x"}
                response = client.post("/v1/explain", json=tx, headers={"X-Client-Id": f"c{i % 7}"})
                assert response.status_code == 200, response.text
                return response.json()["receipt"]

            results: list[dict] = []
            lock = threading.Lock()

            def worker(first: int) -> None:
                for i in range(first, 160, 8):
                    receipt = ask(i)
                    with lock:
                        results.append(receipt)

            pool = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
    finally:
        server.send_signal(signal.SIGINT)  # graceful: each worker's lifespan signs a last checkpoint
        server.wait(timeout=60)
    assert len(results) == 160
    assert_one_chain(url, signer, results, 160)


def test_leaf_rows_and_hash_only_check_on_postgres(signer, pg_url: str):
    from auditinf.ledger.hashcheck import verify_against_checkpoint

    ledger = Ledger(pg_url, signer)
    for i in range(25):
        ledger.append({"kind": "test", "i": i})
    row = ledger.checkpoint_now()
    checkpoint, _ = open_checkpoint(row.note.encode(), ORIGIN, [NoteVerifier.from_log_key(signer.verifier)])
    assert [r[0] for r in ledger.leaf_rows(batch=7)] == list(range(25))
    assert verify_against_checkpoint(ledger.leaf_rows(), checkpoint) == 25
    ledger.close()
