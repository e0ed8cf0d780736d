"""The accuracy harness: our own cases (tests/cases) and the shared ones pass through it, their
EIP-712 digests are re-derived here with eth-account, and a wrong expectation makes it fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditinf.cli import app
from auditinf.eval import run_eval

from .typed_builders import eth_account_digest

OWN = Path(__file__).resolve().parent / "cases"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "cases"


@pytest.mark.parametrize("path", sorted(OWN.glob("*.json")), ids=lambda p: p.stem)
def test_own_case_digest_is_eth_accounts(path):
    case = json.loads(path.read_text())
    if "eip712_digest" in case["expected"]:
        assert case["expected"]["eip712_digest"] == eth_account_digest(case["input"]["typed_data"])


def test_own_cases_all_pass():
    report = run_eval(OWN)
    failed = {c.id: c.failures for c in report.cases if c.status != "passed"}
    assert failed == {}
    summary = report.summary()
    assert summary["malicious_rated_benign"] == 0 and summary["benign_swaps_rated_malicious"] == 0
    assert summary["by_kind"]["risk"]["benign_swap_rated_malicious"] == [0, 1]
    assert summary["by_kind"]["typed_data"]["decoded_exactly"][0] == summary["by_kind"]["typed_data"]["cases"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/cases is not beside the repository")
def test_shared_cases_pass_or_are_skipped_with_reason():
    report = run_eval(SHARED)
    assert report.ok, [(c.id, c.failures) for c in report.cases if c.status == "failed"]
    assert all(c.reason for c in report.cases if c.status == "skipped")
    assert {c.kind for c in report.cases if c.status == "skipped"} <= {"ledger", "llm_output", "service"}


def test_wrong_expectation_fails_and_exit_code_is_1(tmp_path):
    case = json.loads((OWN / "own-typed-02-seaport-zero-consideration-listing.json").read_text())
    case["expected"]["eip712_digest"] = "0x" + "00" * 32
    case["expected"]["risk_flags_required"].append("BLIND_SIGNING")
    (tmp_path / "bad.json").write_text(json.dumps(case))
    shutil.copy(OWN / "own-typed-04-eth-sign-blind-hash.json", tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    result = CliRunner().invoke(app, ["eval", str(tmp_path), "--json"])
    assert result.exit_code == 1
    out = json.loads(result.output)
    by_id = {c["id"]: c for c in out["cases"]}
    bad = by_id[case["id"]]
    assert not bad["passed"] and any("eip712_digest" in f for f in bad["failures"])
    assert any("BLIND_SIGNING" in f for f in bad["failures"])
    assert by_id["own-typed-04-eth-sign-blind-hash"]["passed"]
    assert not by_id["broken"]["passed"]
    assert out["summary"]["failed"] == 2 and out["summary"]["passed"] == 1


def test_malicious_rated_benign_is_counted(tmp_path):
    case = json.loads((OWN / "own-risk-01-v2-swap-eth-for-usdc-benign.json").read_text())
    case["id"] = "swap-claimed-malicious"
    case["expected"] = {"risk_flags_required": ["UNLIMITED_APPROVAL"], "min_severity": "high"}
    (tmp_path / "c.json").write_text(json.dumps(case))
    summary = run_eval(tmp_path).summary()
    assert summary["malicious_rated_benign"] == 1 and summary["failed"] == 1


def test_cli_table_and_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["eval", str(OWN)])
    assert result.exit_code == 0, result.output
    assert "typed_data" in result.output and "malicious rated benign: 0" in result.output
    assert CliRunner().invoke(app, ["eval", str(tmp_path / "nope")]).exit_code == 2
