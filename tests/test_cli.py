"""The CLI as a user runs it: keygen → risk → verify, tamper → verify fails, errors exit 2."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "abi_samples" / "transactions" / "erc20_approve_unlimited.json"


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITINF_")}
    env.update(AUDITINF_LEDGER_URL=f"sqlite:///{tmp_path / 'l.db'}", AUDITINF_KEY_FILE=str(tmp_path / "k" / "s.key"),
               AUDITINF_POLICY=str(ROOT / "tests" / "vectors" / "deterministic-policy.yaml"))
    return subprocess.run([sys.executable, "-m", "auditinf.cli", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def test_keygen_risk_verify_tamper(tmp_path: Path):
    keygen = run(tmp_path, "keygen")
    assert keygen.returncode == 0 and keygen.stdout.startswith("auditinf.local/ledger+")
    assert (tmp_path / "k" / "s.pub").read_text().strip() == keygen.stdout.strip()
    for _ in range(3):
        risk = run(tmp_path, "risk", str(SAMPLE))
        assert risk.returncode == 0, risk.stderr
    answer = json.loads(risk.stdout)
    assert answer["risk_level"] == "high" and answer["receipt"]["seq"] == 2
    flags = run(tmp_path, "explain", "--to", "0x2222222222222222222222222222222222222222", "--value", "1000", "--private")
    assert json.loads(flags.stdout)["data_class"] == "private"
    ok = run(tmp_path, "verify", "--json")
    result = json.loads(ok.stdout)
    assert ok.returncode == 0 and result["ok"] is True and result["records"] == 4
    # each command closes its ledger, signing a checkpoint over its record (checkpoint at shutdown)
    assert result["checkpoints"] == 4 and result["latest_checkpoint"]["size"] == 4
    assert [(k["kid"], k["first_seq"], k["last_seq"]) for k in result["keys"]] == [(answer["receipt"]["kid"], 0, 3)]
    with sqlite3.connect(tmp_path / "l.db") as conn:
        conn.execute("UPDATE record SET body = replace(body, X'22726973' , X'22726974') WHERE seq = 1")
    bad = run(tmp_path, "verify", "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["first_bad_seq"] == 1


def test_errors_print_json_and_exit_2(tmp_path: Path):
    run(tmp_path, "keygen")
    bad = run(tmp_path, "risk", "--to", "0x2222222222222222222222222222222222222222", "--data", "0x0g")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"]["code"] == "invalid_hex"
    no_key = run(tmp_path / "..", "verify", "--pubkey", str(tmp_path / "missing.pub"))
    assert no_key.returncode == 2
    (tmp_path / "l.db").unlink(missing_ok=True)
    no_ledger = run(tmp_path, "verify", "--json")  # a mistyped path is not an "intact, empty" ledger
    assert no_ledger.returncode == 2 and json.loads(no_ledger.stdout)["error"]["code"] == "ledger_not_found"
    assert not (tmp_path / "l.db").exists()


def test_bad_policy_refuses_start(tmp_path: Path):
    run(tmp_path, "keygen")
    policy = tmp_path / "bad.yaml"
    policy.write_text("id: x\nversion: '1'\nmodels: {}\n")
    result = run(tmp_path, "risk", str(SAMPLE), "--policy", str(policy))
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["code"] == "invalid_policy" and "$" in result.stdout
