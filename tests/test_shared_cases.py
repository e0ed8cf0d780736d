"""Every real-world case of tests/vectors/shared_cases (and ../shared/cases), by id.

Each case's expectations are asserted here, except ledger cases, which their own modules run by id
(checked below). Flag names map to finding codes, and values compare, as ``auditinf eval`` does
(:mod:`auditinf.eval_checks`).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.evm.chain import StaticChainFacts
from auditinf.eval_checks import FLAG_CODES, SEVERITY, norm  # the case format's flag map and comparison rules
from auditinf.evm.tokens import decode_decimals, decode_token_text

from . import routing_cases
from .conftest import load_cases
from .fakes.fault_server import FaultServer

CASES = load_cases()
GATEWAY_CASES = {  # issue 4 routing cases, run by tests/routing_cases.py
    "gw-01-fallback-does-not-restart-retries": routing_cases.gw_01,
    "gw-02-upstream-4xx-not-retried-not-propagated": routing_cases.gw_02,
    "gw-04-exact-attempt-count-no-hidden-sdk-retries": routing_cases.gw_04,
    "gw-12-private-local-failure-never-goes-hosted": routing_cases.gw_12,
}



def ids(kind: str) -> list[str]:
    return sorted(i for i, c in CASES.items() if c["kind"] == kind)


@pytest.fixture
def client_for(make_service):
    def make(case_input: dict | None = None, **kwargs) -> TestClient:
        mock = (case_input or {}).get("chain_state_mock", {}).get("eth_getCode")
        chain = StaticChainFacts(case_input.get("chain_id", 1), mock, source="test-mock") if mock else None
        service = make_service(chain=chain, **kwargs)
        return TestClient(create_app(service.settings, service))
    return make


def tx_body(case_input: dict) -> dict:
    body = {k: v for k, v in case_input.items() if k in ("chain_id", "from", "to", "value", "data", "abi")}
    if "viewer_recent_counterparties" in case_input:  # the viewer's history: look-alike checks
        body["known_counterparties"] = case_input["viewer_recent_counterparties"]
    return body


def check_decoded(decoded: dict, expected: dict) -> None:
    for key in ("method", "signature", "selector"):
        if key in expected:
            assert decoded[key] == expected[key], key
    if "args" in expected:
        assert norm(decoded["args"]) == norm(expected["args"])
    if "trailing_bytes" in expected:
        assert decoded["trailing_bytes"] == expected["trailing_bytes"]
    if "human_amount" in expected:
        assert decoded["human_amount"] == expected["human_amount"]
    if "nested_calls_decoded" in expected:
        got = [{k: c[k] for k in ("to", "method", "selector", "args")} for c in decoded["nested_calls"]]
        assert norm(got) == norm(expected["nested_calls_decoded"])
    if "commands" in expected:
        assert len(decoded["commands"]) == len(expected["commands"])
        for have, want in zip(decoded["commands"], expected["commands"]):
            assert {k: have[k] for k in ("index", "byte", "name", "allow_revert")} == \
                {k: want[k] for k in ("index", "byte", "name", "allow_revert")}
            assert norm({k: have["decoded"][k] for k in want["decoded"]}) == norm(want["decoded"])
    if "deadline" in expected:
        assert norm(decoded["deadline"]) == norm(expected["deadline"])
    if "method_candidate" in expected and decoded["method"] is None:
        assert expected["method_candidate"] in [c["signature"] for c in decoded["method_candidates"]]


def check_flags(answer: dict, expected: dict) -> None:
    codes = {f["code"] for f in answer["findings"]}
    for flag in expected.get("risk_flags_required", []):
        assert FLAG_CODES[flag] in codes, flag
    if "min_severity" in expected:
        assert SEVERITY.index(answer["risk_level"]) >= SEVERITY.index(expected["min_severity"])


@pytest.mark.parametrize("case_id", ids("decode"))
def test_decode_case(case_id, client_for):
    case = CASES[case_id]
    inp, exp = case["input"], case["expected"]
    if "eth_call_results" in inp:  # token metadata (dec-11): bytes32 fallback
        results = inp["eth_call_results"]
        assert decode_token_text(bytes.fromhex(results["symbol()"][2:])) == exp["symbol"]
        assert decode_token_text(bytes.fromhex(results["name()"][2:])) == exp["name"]
        assert decode_decimals(bytes.fromhex(results["decimals()"][2:])) == exp["decimals"]
        return
    response = client_for(inp).post("/v1/explain", json=tx_body(inp))
    if exp.get("method") is None and "method" in exp:  # must not decode (dec-06)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "calldata_too_short"
        return
    if "method_candidate" in exp and "args" not in exp:  # bombs: refused before allocating (dec-09)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "abi_decode_error"
        assert exp["method_candidate"] in response.json()["error"]["message"]
        return
    assert response.status_code == 200, response.text
    answer = response.json()
    check_decoded(answer["decoded"], exp)
    assert "trailing_bytes" in answer["decoded"] or "trailing_bytes" not in exp
    if "no trailing-bytes warning" in " ".join(exp.get("properties", [])):
        assert "trailing_bytes" not in answer["decoded"]
    if "no risk flag is raised: read-only balanceOf calls" in exp.get("properties", []):
        assert answer["findings"] == []


@pytest.mark.parametrize("case_id", ids("abi_methods"))
def test_abi_methods_case(case_id, client_for):
    case = CASES[case_id]
    inp, exp = case["input"], case["expected"]
    body = {"abi": inp["abi"], "data": inp["data"], **({"return_data": inp["return_data"]} if "return_data" in inp
                                                        else {})}
    if "contract" in inp:
        body["to"] = inp["contract"]
    response = client_for(inp).post("/v1/methods", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    got = {m["signature"]: m for m in answer["methods"]}
    assert len(answer["methods"]) == len(exp["methods"])  # overloads kept apart
    for want in exp["methods"]:
        have = got[want["signature"]]
        for key in ("name", "selector", "inputs", "state_mutability"):
            if key in want:
                assert have[key] == want[key], (want["signature"], key)
    for signature, outputs in exp.get("method_outputs", {}).items():
        assert [o["type"] for o in got[signature]["outputs"]] == outputs
    decoded_exp = exp["decoded_data"]
    check_decoded(answer["decoded"], decoded_exp)
    if "decoded_return" in exp:
        assert answer["decoded_return"]["success"] is exp["decoded_return"]["success"]
        assert answer["decoded_return"]["values"] == exp["decoded_return"]["values"]


@pytest.mark.parametrize("case_id", ids("risk"))
def test_risk_case(case_id, client_for):
    case = CASES[case_id]
    inp, exp = case["input"], case["expected"]
    response = client_for(inp).post("/v1/risk", json=tx_body(inp))
    assert response.status_code == 200, response.text
    answer = response.json()
    if "args" in exp and answer["decoded"]["method"] is not None:
        expected_args = list(norm(exp["args"]).values())
        assert list(norm(answer["decoded"]["args"]).values()) == expected_args
    if exp.get("method") and answer["decoded"]["method"] != exp["method"]:
        pytest.fail(f"method {answer['decoded']['method']} != {exp['method']}")
    check_decoded(answer["decoded"], {k: v for k, v in exp.items() if k in (
        "selector", "commands", "deadline", "method_candidate", "human_amount")})
    check_flags(answer, exp)
    if "native_value_wei" in exp:
        assert answer["findings"][0]["evidence"]["value_wei"] == exp["native_value_wei"]


def test_risk_02_control_revocation_not_flagged(client_for):
    case = CASES["risk-02-setapprovalforall-unknown-operator"]
    body = tx_body(case["input"])
    body["data"] = body["data"][:-1] + "0"  # approved = false
    answer = client_for(case["input"]).post("/v1/risk", json=body).json()
    assert "approval_for_all" not in {f["code"] for f in answer["findings"]}


def signing_body(case_input: dict) -> dict:
    """A typed_data case's input as a wallet's JSON-RPC signing request."""
    return {"method": case_input["method"], "params": [case_input["signer"], case_input["typed_data"]],
            "chain_id": case_input.get("chain_id", case_input["typed_data"]["domain"].get("chainId", 1))}


# expected key → where the answer's decoded typed data holds it
TYPED_SUMMARY = {"token": "token", "spender": "spender", "owner": "owner", "amount": "amount", "value": "value",
                 "expiration": "expiration", "deadline": "deadline", "sig_deadline": "sig_deadline"}


@pytest.mark.parametrize("case_id", ids("typed_data"))
def test_typed_data_case(case_id, client_for):
    case = CASES[case_id]
    inp, exp = case["input"], case["expected"]
    response = client_for(inp).post("/v1/risk", json=signing_body(inp))
    assert response.status_code == 200, response.text
    answer = response.json()
    decoded = answer["decoded"]
    assert decoded["kind"] == "typed_data"
    assert decoded["digest"] == exp["eip712_digest"]
    if "recognised_as" in exp:
        assert decoded["recognised_as"] == exp["recognised_as"]
    if "verifying_contract" in exp:
        assert norm(decoded["domain"]["verifyingContract"]) == norm(exp["verifying_contract"])
    for key, have in TYPED_SUMMARY.items():
        if key in exp:
            assert norm(decoded["summary"][have]) == norm(exp[key]), key
    for key in [k for k in exp if k.endswith("_display")]:
        shown = [v for path, v in decoded["display"].items() if path.split(".")[-1] == key[:-len("_display")]]
        assert shown and shown[0].startswith(exp[key].split(" ")[0]), key
    check_flags(answer, exp)
    record = client_for(inp).get(f"/v1/records/{answer['receipt']['seq']}").json()["body"]
    assert record["analysis"]["decoded"]["digest"] == exp["eip712_digest"]
    assert record["analysis"]["decoded"]["struct_hash"] == decoded["struct_hash"]


# Gateway cases gw-08/gw-14 run by id in tests/test_gateway_cases.py (keys never logged; local model
# still loading); gw-01/02/04/12 (routing) by tests/routing_cases.py through GATEWAY_CASES below.
GATEWAY_OBS_TESTED = {"gw-08-keys-never-in-logs-records-metrics", "gw-14-local-model-still-loading"}


@pytest.mark.parametrize("case_id", [i for i in ids("service") if i not in GATEWAY_OBS_TESTED])
def test_service_case(case_id, client_for, tmp_path, ledger, monkeypatch, caplog):
    case = CASES[case_id]
    if case_id in GATEWAY_CASES:
        runner = GATEWAY_CASES[case_id]
        args = (case, tmp_path, ledger, monkeypatch) + ((caplog,) if runner is routing_cases.gw_02 else ())
        return runner(*args)
    if case_id.startswith("gw-"):
        pytest.skip("gateway case without a runner yet")
    http = case["input"]["http"]
    response = client_for({}).post("/v1" + http["path"], json=http["body"])
    exp = case["expected"]
    assert response.status_code in exp["http_status_one_of"]
    error = response.json()["error"]
    assert error["field"] == "data" and error["code"] == "invalid_hex"
    assert "'g'" in error["message"] and "position 71" in error["message"] and "byte offset 35" in error["message"]


def _upstream_script(mock) -> list[dict]:
    if isinstance(mock, dict):  # every request hangs
        return [{"hang": 6}]
    return [{"status": m["status"], "content": m["body"]["choices"][0]["message"]["content"],
             "finish_reason": m["body"]["choices"][0]["finish_reason"]} for m in mock]


@pytest.mark.parametrize("case_id", ids("llm_output"))
def test_llm_output_case(case_id, client_for):
    case = CASES[case_id]
    inp, exp = case["input"], case["expected"]
    request = dict(inp["service_request"], chain_state_mock=inp.get("chain_state_mock"))
    with FaultServer(_upstream_script(inp["upstream_llm_mock"])) as upstream:
        client = client_for(request, public=("hosted-a", "deterministic"), hosted_url=upstream.base_url,
                            retries={"max_attempts": 3, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                                     "retry_on": [500, "timeout"], "deadline_s": 30})
        started = time.monotonic()
        response = client.post("/v1/risk", json=tx_body(request))
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        answer = response.json()
        assert answer["decoded"]["method"] == exp.get("method", exp.get("if_200", {}).get("method"))
        check_flags(answer, exp.get("if_200", exp))
        hosted = [a for a in answer["attempts"] if a["backend"] == "hosted"]
        assert 1 <= len(hosted) <= 3 and len(hosted) == len(upstream.requests)
        assert all(a["outcome"] == "error" for a in hosted)
        assert {a["error_type"] for a in hosted} <= {"truncated", "schema_invalid", "timeout"}
        assert answer["degraded"] is True and answer["model"]["backend"] == "deterministic"
        assert "Hello! How can I assist you today?" not in response.text
        assert elapsed < 60
        # no hung worker: the next request is served normally
        assert client.get("/healthz").status_code == 200


# Ledger cases run by id in their own modules: Merkle proofs in tests/test_merkle.py (ledger-19 also
# as a service-level deletion in tests/test_ledger.py), signed notes/checkpoints in tests/test_note.py.
LEDGER_CASE_MODULES = ("test_merkle.py", "test_note.py")


@pytest.mark.parametrize("case_id", ids("ledger"))
def test_ledger_case_is_run_by_id(case_id):
    """Every ledger case is exercised by id in one of the ledger test modules (a new case fails here)."""
    here = Path(__file__).parent
    assert any(case_id in (here / name).read_text() for name in LEDGER_CASE_MODULES), case_id
