"""The agent gate: decisions from rules + policy thresholds only, recorded; an allow carries a
checkpoint and inclusion proof that verify independently."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eth_abi import encode
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.gate import decide, gate
from auditinf.policy import GatePolicy

from .fakes.fault_server import GOOD_ANSWER, FaultServer

ROOT = Path(__file__).resolve().parent.parent
EOA = "0x" + "22" * 20
SENDER = "0x" + "11" * 20
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
DRAINER = "0x" + "de" * 20
GATE = {"levels": {"none": "allow", "low": "allow", "medium": "review", "high": "deny", "critical": "deny"},
        "unknown_risk": "review", "max_value_wei": str(10**18), "deny_addresses": [DRAINER]}


def transfer(value: int = 1000, to: str = EOA, **extra) -> dict:
    return {"chain_id": 1, "from": SENDER, "to": to, "value": str(value), "data": "0x", **extra}


def approve(spender: str) -> dict:
    data = "0x095ea7b3" + encode(["address", "uint256"], [spender, 2**256 - 1]).hex()
    return {"chain_id": 1, "from": SENDER, "to": USDC, "value": "0", "data": data}


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH of RFC 6962 §2.1 over leaf hashes (computed here, independently of auditinf)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc6962_root(leaves[:k]) + rfc6962_root(leaves[k:])).digest()


@pytest.fixture
def gate_service(make_service):
    return make_service(extra={"gate": GATE})


def test_small_transfer_is_allowed_with_a_verifiable_checkpoint(gate_service):
    for _ in range(4):  # a few records first: a tree of 6 leaves, the gate record not the last power of two
        gate_service.explain(transfer())
    answer = gate(gate_service, transfer())
    assert answer["decision"] == "allow" and [r["code"] for r in answer["reasons"]] == ["risk_level"]
    cp = answer["checkpoint"]
    ledger = gate_service.ledger
    assert cp["leaf_index"] == answer["receipt"]["seq"] and cp["size"] > cp["leaf_index"]
    body = ledger.get(cp["leaf_index"]).body
    assert cp["leaf_hash"] == hashlib.sha256(b"\x00" + body).hexdigest()
    leaves = [bytes.fromhex(ledger.get(s).leaf_hash) for s in range(cp["size"])]
    assert rfc6962_root(leaves).hex() == cp["root_hash"]
    # the note: origin, size, base64 root; signed by the ledger key (C2SP signed-note, Ed25519)
    text, sig_line = cp["note"].split("\n\n")
    assert text.split("\n") == [cp["origin"], str(cp["size"]), base64.b64encode(bytes.fromhex(cp["root_hash"])).decode()]
    key = base64.b64decode(ledger.signer.verifier.verifier_key.split("+", 2)[2])[1:]
    sig = base64.b64decode(sig_line.split(" ")[2])[4:]
    Ed25519PublicKey.from_public_bytes(key).verify(sig, (text + "\n").encode())
    # the audit path leads from the leaf to that root (RFC 6962 §2.1.1, recomputed here)
    node, index, size = bytes.fromhex(cp["leaf_hash"]), cp["leaf_index"], cp["size"]
    fn, sn = index, size - 1
    for sibling in map(bytes.fromhex, cp["inclusion_proof"]):
        if fn & 1 or fn == sn:
            node = hashlib.sha256(b"\x01" + sibling + node).digest()
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = hashlib.sha256(b"\x01" + node + sibling).digest()
        fn, sn = fn >> 1, sn >> 1
    assert node.hex() == cp["root_hash"]


def test_unlimited_approval_is_denied_and_both_records_link(gate_service):
    answer = gate(gate_service, approve(EOA))
    assert answer["decision"] == "deny" and answer["checkpoint"] is None
    assert answer["reasons"][0] == {"code": "risk_level", "decision": "deny",
                                    "message": answer["reasons"][0]["message"]}
    record = json.loads(gate_service.ledger.get(answer["receipt"]["seq"]).body)
    risk_record = json.loads(gate_service.ledger.get(record["risk_record"]["seq"]).body)
    assert record["kind"] == "gate" and record["decision"] == "deny"
    assert risk_record["kind"] == "risk" and risk_record["request_id"] == record["request_id"] == answer["request_id"]
    assert record["risk_record"]["leaf_hash"] == answer["risk"]["receipt"]["leaf_hash"]


def test_value_over_limit_is_review_and_denied_address_is_deny(gate_service):
    over = gate(gate_service, transfer(value=10**18 + 1))
    assert over["decision"] == "review" and {r["code"] for r in over["reasons"]} == {"risk_level", "value_over_limit"}
    at_limit = gate(gate_service, transfer(value=10**18))
    assert at_limit["decision"] == "allow"
    denied = gate(gate_service, approve(DRAINER))  # the denied address is an argument, not the target
    assert denied["decision"] == "deny" and "address_denied" in {r["code"] for r in denied["reasons"]}


def test_private_gate_record_keeps_reason_codes_only(gate_service):
    answer = gate(gate_service, transfer(value=10**18 + 1, private=True))
    assert answer["decision"] == "review"
    raw = gate_service.ledger.get(answer["receipt"]["seq"]).body.decode()
    assert str(10**18 + 1) not in raw and EOA[2:] not in raw.lower()
    assert json.loads(raw)["reasons"] == [{"code": r["code"], "decision": r["decision"]} for r in answer["reasons"]]


def test_model_text_never_changes_the_decision(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}]) as upstream:
        with_model = make_service(public=("hosted-a", "deterministic"), hosted_url=upstream.base_url,
                                  extra={"gate": GATE})
        a = gate(with_model, approve(EOA))
        assert len(upstream.requests) == 1
    b = gate(make_service(extra={"gate": GATE}), approve(EOA))
    assert a["risk"]["explanation"] != b["risk"]["explanation"]
    assert (a["decision"], a["reasons"]) == (b["decision"], b["reasons"])


@pytest.mark.parametrize("answer,body,value,want,codes", [
    ({"risk_level": "medium", "findings": [{"code": "x"}]}, {"to": EOA}, 0, "review", ["risk_level"]),
    ({"risk_level": "none", "findings": [], "unknown_facts": ["code at spender unknown"]}, {"to": EOA}, 0,
     "review", ["unknown_risk", "risk_level"]),
    ({"risk_level": "none", "findings": [], "decoded": {"kind": "unknown_selector"}}, {"to": EOA}, 0,
     "review", ["unknown_risk", "risk_level"]),
    ({"risk_level": "low", "findings": []}, {"to": USDC}, 0, "review", ["destination_not_allowed", "risk_level"]),
    ({"risk_level": "none", "findings": [], "decoded": {"calls": [{"args": {"to": DRAINER.upper().replace("X", "x")}}]}},
     {"to": EOA}, 0, "deny", ["address_denied", "risk_level"]),
])
def test_decide_table(answer, body, value, want, codes):
    policy = GatePolicy(allow_addresses=frozenset({EOA}), deny_addresses=frozenset({DRAINER}))
    decision, reasons = decide(policy, answer, body, value)
    assert decision == want and [r["code"] for r in reasons] == codes


def test_http_gate_endpoint(gate_service):
    client = TestClient(create_app(gate_service.settings, gate_service))
    ok = client.post("/v1/gate", json=transfer(), headers={"X-Client-Id": "agent-7"})
    assert ok.status_code == 200 and ok.json()["decision"] == "allow" and ok.json()["checkpoint"]["note"]
    record = json.loads(gate_service.ledger.get(ok.json()["receipt"]["seq"]).body)
    assert record["client_id"] == "agent-7"
    bad = client.post("/v1/gate", json=transfer(data="0xzz"))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_hex"


def test_cli_gate_exit_codes(gate_service, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUDITINF_LEDGER_URL": gate_service.ledger.url,
           "AUDITINF_KEY_FILE": str(gate_service.settings.key_file), "AUDITINF_POLICY": gate_service.policy.path}
    for body, code, decision in ((transfer(), 0, "allow"), (approve(EOA), 4, "deny"),
                                 (transfer(value=10**18 + 1), 3, "review")):
        path = tmp_path / "tx.json"
        path.write_text(json.dumps(body))
        run = subprocess.run([sys.executable, "-m", "auditinf.cli", "gate", str(path)], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == code, run.stderr
        assert json.loads(run.stdout)["decision"] == decision
