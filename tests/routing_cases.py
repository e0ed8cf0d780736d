"""Runners for the shared gateway cases gw-01/02/04/12 (called by id from test_shared_cases.py).

Each case file describes its policy in its own field names; :func:`case_policy` maps them onto
our policy schema (``per_attempt_timeout_s`` → ``timeout_s``, ``base_backoff_s`` →
``backoff_base_s``, ``connect_error`` → ``connection``, …). The hosted side is our
:class:`FaultServer`; the local model is a scripted fake (the cases describe it by behaviour:
"raises RuntimeError(...) after 0.1 s", "returns a schema-valid answer after 0.3 s").
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from auditinf import service as service_module
from auditinf.api import create_app
from auditinf.config import Settings
from auditinf.errors import PolicyError
from auditinf.evm import default_registry
from auditinf.policy import load_policy
from auditinf.service import Service

from .fakes.backends import ScriptedBackend
from .fakes.fault_server import GOOD_ANSWER, FaultServer

KEY_CANARY = "sk-canary-HOSTED-7Q2mX9vLwZ4tR8pK3nB6"


def case_policy(policy: dict, base_url: str, routes: dict | None = None) -> dict:
    """Our policy document for a case's ``policy`` block (one route for every request kind)."""
    models = {}
    for name, m in policy["models"].items():
        spec: dict[str, Any] = {"backend": m["backend"]}
        if "per_attempt_timeout_s" in m:
            spec["timeout_s"] = m["per_attempt_timeout_s"]
        if "price_usd_per_1m" in m:
            spec["price_usd_per_1m"] = m["price_usd_per_1m"]
        if m["backend"] == "hosted":
            spec.update(base_url=base_url, model=m["model"], max_tokens=m["max_tokens"])
        models[name] = spec
    route = {**policy["routes"]["explain"], **((routes or {}).get("explain", {}))}
    r = policy["retries"]
    return {
        "id": "shared-case", "version": "1", "models": models,
        "routes": {kind: route for kind in ("explain", "risk", "methods")},
        "retries": {"max_attempts": r["max_attempts"], "backoff_base_s": r["base_backoff_s"],
                    "backoff_max_s": r["max_backoff_s"], "deadline_s": r["total_deadline_s"],
                    "retry_on": ["connection" if x == "connect_error" else x for x in r["retry_on"]]},
        "circuit_breaker": policy["circuit_breaker"],
        "classification": {},
    }


def fault_script(fake_hosted: dict) -> list[dict]:
    """A case's ``fake_hosted.every_attempt`` as a FaultServer script."""
    every = fake_hosted["every_attempt"]
    if "behaviour" in every:  # "accept the connection, read the request, send nothing for 60 s"
        return [{"hang": 60}]
    step: dict[str, Any] = {"delay": every.get("delay_s", 0)}
    if every["status"] != 200:
        step.update(status=every["status"], body=every["body"])
        if "retry-after" in every.get("headers", {}):
            step["retry_after"] = every["headers"]["retry-after"]
    else:
        step["raw"] = json.dumps(every["body"])
    return [step]


class CaseRun:
    """A service built from a case's policy, with the fake local backend patched in."""

    def __init__(self, tmp_path: Path, ledger, monkeypatch, policy: dict, upstream: FaultServer,
                 local: ScriptedBackend, api_key: str | None = None) -> None:
        path = tmp_path / f"case-policy-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(policy))
        real = service_module.make_backend
        monkeypatch.setattr(service_module, "make_backend",
                            lambda spec, settings: local if spec.backend == "local" else real(spec, settings))
        settings = Settings(ledger_url=ledger.url, key_file=tmp_path / "keys" / "signing.key", policy=path,
                            hosted_api_key=api_key)
        self.service = Service(settings, ledger, policy=load_policy(path), registry=default_registry())
        self.client = TestClient(create_app(settings, self.service))
        self.upstream, self.local = upstream, local

    def post(self, request: dict):
        return self.client.post(request["path"], json=request["body"], headers={"X-Client-Id": "client-a"})

    def record(self, answer: dict) -> dict:
        return json.loads(self.service.ledger.get(answer["receipt"]["seq"]).body)


def _models(answer: dict) -> list[str]:
    return [a["model"] for a in answer["attempts"]]


def gw_01(case: dict, tmp_path: Path, ledger, monkeypatch) -> None:
    inp, exp = case["input"], case["expected"]
    local = ScriptedBackend("local", "local-gguf", [RuntimeError("llama_decode returned -1")], delay_s=0.1)
    with FaultServer(fault_script(inp["fake_hosted"])) as upstream:
        run = CaseRun(tmp_path, ledger, monkeypatch, case_policy(inp["policy"], upstream.base_url), upstream, local)
        started = time.monotonic()
        response = run.post(inp["client_request"])
        wall = time.monotonic() - started
        assert response.status_code == exp["http_status"] == 200
        answer = response.json()
        times = [r["t"] for r in upstream.requests]
        assert len(times) == exp["exact_hosted_attempts"] == 3
        assert all(b - a >= exp["min_spacing_s_between_hosted_attempts"] for a, b in zip(times, times[1:]))
        assert 1 <= len(local.calls) <= exp["max_upstream_attempts"]["local-gguf"]
        assert max(times) < min(t for t, _ in local.calls)  # strictly forward: no hosted request after local
        models = _models(answer)
        k = models.count("local-gguf")
        assert models == ["hosted-a"] * 3 + ["local-gguf"] * k + ["deterministic"]
        assert run.record(answer)["attempts"] == answer["attempts"]
        assert answer["degraded"] is True and answer["model"]["backend"] == exp["answered_by"]
        assert "unlimited_approval" in {f["code"] for f in answer["findings"]}
        assert wall <= exp["max_wall_time_s"]
        # a second identical request is bounded the same way (or cut short by the open breaker)
        before = len(upstream.requests)
        again = run.post(inp["client_request"])
        assert again.status_code == 200 and len(upstream.requests) - before <= 3
        assert _models(again.json())[-1] == "deterministic"
    # duplicate candidate: refused at load, naming the repeated candidate
    variant = case_policy(inp["policy"], "http://127.0.0.1:1/v1", inp["policy_variant_duplicate_candidate"]["routes"])
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(variant))
    with pytest.raises(PolicyError, match="'hosted-a' is listed twice"):
        load_policy(path)


def gw_02(case: dict, tmp_path: Path, ledger, monkeypatch, caplog) -> None:
    inp, exp = case["input"], case["expected"]
    expected_types = {"A_bad_request_400": ("bad_request", 400), "B_upstream_key_rejected_401": ("auth", 401)}
    for name, variant in inp["variants"].items():
        local = ScriptedBackend("local", "local-gguf", [GOOD_ANSWER], delay_s=0.3)
        caplog.clear()
        with caplog.at_level(logging.DEBUG), FaultServer(fault_script(variant["fake_hosted"])) as upstream:
            run = CaseRun(tmp_path, ledger, monkeypatch, case_policy(inp["policy"], upstream.base_url), upstream,
                          local, api_key=variant.get("hosted_api_key"))
            started = time.monotonic()
            response = run.post(inp["client_request"])
            wall = time.monotonic() - started
            assert response.status_code == exp["http_status"] == 200, name
            answer = response.json()
            bodies = [r["body"] for r in upstream.requests]
            assert len(bodies) == 1 or (len(bodies) == 2 and name.startswith("A") and bodies[0] != bodies[1])
            assert len(local.calls) == 1 and local.calls[0][0] - upstream.requests[-1]["t"] < 0.5  # no backoff after 4xx
            assert answer["model"]["backend"] == "local" and answer["attempts"][-1]["model"] == "local-gguf"
            error_type, status = expected_types[name]
            hosted = [a for a in answer["attempts"] if a["model"] == "hosted-a"]
            assert [(a["error_type"], a["http_status"], a["outcome"]) for a in hosted] == [(error_type, status, "error")]
            assert wall <= 0.3 + 1.0
            text = response.text + run.service.ledger.get(answer["receipt"]["seq"]).body.decode()
            assert "Unsupported parameter" not in text and "Incorrect API key" not in text
        if name.startswith("B"):
            logs = "\n".join(r.getMessage() for r in caplog.records)
            for canary in (KEY_CANARY, "7Q2mX9vLwZ4tR8pK3nB6"):
                assert canary not in text and canary not in logs
            warned = [r for r in caplog.records if r.levelno >= logging.WARNING and "hosted-a" in r.getMessage()]
            assert warned and "auth" in warned[0].getMessage()  # the credential failure is visible to an operator


def gw_04(case: dict, tmp_path: Path, ledger, monkeypatch) -> None:
    inp, exp = case["input"], case["expected"]
    for name, variant in inp["variants"].items():
        local = ScriptedBackend("local", "local-gguf", [GOOD_ANSWER], delay_s=0.3)
        with FaultServer(fault_script(variant["fake_hosted"])) as upstream:
            run = CaseRun(tmp_path, ledger, monkeypatch, case_policy(variant["policy"], upstream.base_url), upstream,
                          local)
            started = time.monotonic()
            response = run.post(inp["client_request"])
            wall = time.monotonic() - started
            assert response.status_code == exp["http_status"]
            answer = response.json()
            assert len(upstream.requests) == exp["exact_hosted_attempts"][name], name
            assert all(r["headers"].get("x-stainless-retry-count", "0") == "0" for r in upstream.requests)
            hosted = [a for a in answer["attempts"] if a["model"] == "hosted-a"]
            assert len(hosted) == len(upstream.requests) and run.record(answer)["attempts"] == answer["attempts"]
            assert answer["attempts"][-1]["model"] == exp["answered_by"]
            if name.startswith("C"):
                assert all(2000 <= a["duration_ms"] <= 2500 for a in hosted), [a["duration_ms"] for a in hosted]
                assert wall <= 3 * 2.5 + 2 + 0.3 + 0.5
    # a retry_on list that does not name 500: attempted once
    variant = inp["variants"]["B_three_attempts"]
    policy = json.loads(json.dumps(variant["policy"]))
    policy["retries"]["retry_on"] = [429]
    with FaultServer(fault_script(variant["fake_hosted"])) as upstream:
        run = CaseRun(tmp_path, ledger, monkeypatch, case_policy(policy, upstream.base_url), upstream,
                      ScriptedBackend("local", "local-gguf", [GOOD_ANSWER]))
        assert run.post(inp["client_request"]).status_code == 200
        assert len(upstream.requests) == 1


def gw_12(case: dict, tmp_path: Path, ledger, monkeypatch) -> None:
    inp, exp = case["input"], case["expected"]
    crashes = {"A_context_overflow": (ValueError("Requested tokens (612) exceed context window of 256"),
                                      "context_overflow", 1),
               "B_grammar_setup_failure": (ValueError("from_string: error parsing grammar file: parsed_grammar.rules "
                                                      "is empty"), "structured_output_setup", 1),
               "C_local_crash_5_times": (ValueError("Requested tokens (612) exceed context window of 256"),
                                         "context_overflow", 5)}
    for name, (crash, error_type, repeats) in crashes.items():
        local = ScriptedBackend("local", "local-gguf", [crash])
        with FaultServer(fault_script(inp["fake_hosted"])) as upstream:
            run = CaseRun(tmp_path, ledger, monkeypatch, case_policy(inp["policy"], upstream.base_url), upstream, local)
            for i in range(repeats):
                response = run.post(inp["client_request"])
                assert response.status_code == exp["http_status"] == 200
                answer = response.json()
                assert answer["degraded"] is True and answer["model"]["backend"] == exp["answered_by"]
                assert "unlimited_approval" in {f["code"] for f in answer["findings"]}
                for leaked in ("Requested tokens", "parsed_grammar", "Traceback"):
                    assert leaked not in response.text
                record = run.record(answer)
                assert record["data_class"] == "private"
                assert record["attempts"][0]["model"] == "local-gguf"
                assert record["attempts"][0]["error_type"] == error_type
            assert len(local.calls) == repeats <= exp["max_upstream_attempts"]["local-gguf"] * repeats
            if repeats == 5:  # five consecutive failures: the local breaker is open; still never hosted
                assert run.service.breakers.states()["local-gguf"] == "open"
                after = run.post(inp["client_request"]).json()
                assert after["attempts"][0]["outcome"] == "circuit_open" and len(local.calls) == 5
            assert upstream.requests == [] and b"5ec7e7" not in upstream.all_bytes()
