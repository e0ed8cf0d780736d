"""Accuracy harness: run every case file of a folder (the ../shared/cases format, see its README)
through the service and score the answers.

Each case runs against a fresh service built for the evaluation: a throw-away ledger and key, a
policy whose every route is the deterministic backend (no model: the harness measures the
deterministic analysis, which every model answer stands on), and chain facts from the case's
``chain_state_mock`` (``eth_getCode``), if any. Per kind:

- ``decode`` / ``abi_methods`` / ``risk`` / ``typed_data`` / ``service`` (HTTP input errors):
  evaluated (:mod:`auditinf.eval_checks`);
- ``ledger`` (Merkle proofs, checkpoints, signed notes), ``llm_output`` and gateway-fault
  ``service`` cases (a scripted upstream model): skipped with the reason — the test suite runs
  them by id (tests/test_shared_cases.py, test_merkle.py, test_note.py).

Metrics per kind: decoded exactly, required risk flags found, minimum severity met, malicious
rated benign (a case that requires a risk flag or a medium+ severity answered ``benign``: must be
0), benign swaps rated malicious (a swap case that requires no flag answered ``malicious``).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import AuditinfError
from .eval_checks import SEVERITY, check_decoded, check_flags, check_typed, norm, severity_met
from .evm.chain import StaticChainFacts
from .evm.tokens import decode_decimals, decode_token_text
from .jsonin import load_json
from .ledger import Ledger, generate_key
from .policy import load_policy
from .policy.spec import REQUEST_KINDS
from .service import Service

__all__ = ["CaseResult", "EvalReport", "run_eval", "SKIPPED_KINDS"]

SKIPPED_KINDS = {
    "ledger": "verifier vectors (Merkle proofs, checkpoints, signed notes): run by id in the test suite",
    "llm_output": "needs a scripted upstream model: run by id in tests/test_shared_cases.py",
}
_GATEWAY = "gateway fault case (scripted upstream model): run by id in tests/test_shared_cases.py"
METRICS = ("decoded_exactly", "flags_found", "min_severity_met", "malicious_rated_benign", "benign_swap_rated_malicious")


@dataclass
class CaseResult:
    """One case: ``status`` passed | failed | skipped; ``metrics`` maps each of :data:`METRICS`
    that applies to the case to True/False."""

    id: str
    kind: str
    status: str
    failures: list[str] = field(default_factory=list)
    reason: str | None = None
    metrics: dict[str, bool] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "passed": self.status == "passed",
                               "status": self.status, "failures": self.failures}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class EvalReport:
    cases: list[CaseResult]

    @property
    def ok(self) -> bool:
        return all(c.status != "failed" for c in self.cases)

    def summary(self) -> dict[str, Any]:
        """``{"total", "passed", "failed", "skipped", "malicious_rated_benign", "benign_swaps_rated_malicious",
        "by_kind": {kind: {"cases", "passed", "failed", "skipped", <metric>: [hits, applicable]}}}``."""
        by_kind: dict[str, dict[str, Any]] = {}
        for c in self.cases:
            k = by_kind.setdefault(c.kind, {"cases": 0, "passed": 0, "failed": 0, "skipped": 0,
                                            **{m: [0, 0] for m in METRICS}})
            k["cases"] += 1
            k[c.status] += 1
            for metric, value in c.metrics.items():
                k[metric][0] += int(value)
                k[metric][1] += 1
        count = {s: sum(c.status == s for c in self.cases) for s in ("passed", "failed", "skipped")}
        return {"total": len(self.cases), **count,
                "malicious_rated_benign": sum(c.metrics.get("malicious_rated_benign", False) for c in self.cases),
                "benign_swaps_rated_malicious": sum(c.metrics.get("benign_swap_rated_malicious", False)
                                                    for c in self.cases),
                "by_kind": by_kind}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(), "cases": [c.to_dict() for c in self.cases]}


class _Harness:
    """Builds one service per case over a shared throw-away ledger and deterministic policy."""

    def __init__(self, workdir: Path) -> None:
        key_file = workdir / "keys" / "signing.key"
        signer = generate_key(key_file, "eval.auditinf/ledger")
        self.ledger = Ledger(f"sqlite:///{workdir / 'eval.db'}", signer)
        policy_file = workdir / "policy.json"
        policy_file.write_text(json.dumps({
            "id": "eval", "version": "1", "models": {"deterministic": {"backend": "deterministic"}},
            "routes": {k: {"public": ["deterministic"], "private": ["deterministic"]} for k in REQUEST_KINDS},
            "retries": {"max_attempts": 1}, "classification": {}}))
        self.policy = load_policy(policy_file)
        self.settings = Settings(ledger_url=self.ledger.url, key_file=key_file, policy=policy_file)

    def service(self, case_input: dict) -> Service:
        mock = (case_input.get("chain_state_mock") or {}).get("eth_getCode")
        chain_id = case_input.get("chain_id") or (case_input.get("typed_data") or {}).get("domain", {}).get("chainId", 1)
        chain = StaticChainFacts(int(chain_id), mock, source="case-mock") if mock else None
        return Service(self.settings, self.ledger, policy=self.policy, chain=chain)


def _tx_body(inp: dict) -> dict:
    body = {k: v for k, v in inp.items() if k in ("chain_id", "from", "to", "value", "data", "abi")}
    if "viewer_recent_counterparties" in inp:
        body["known_counterparties"] = inp["viewer_recent_counterparties"]
    return body


def _signing_body(inp: dict) -> dict:
    if "params" in inp:  # already a JSON-RPC signing request
        return {k: v for k, v in inp.items() if k in ("method", "params", "chain_id")}
    typed = inp.get("typed_data")
    chain_id = inp.get("chain_id", (typed or {}).get("domain", {}).get("chainId"))
    params = [inp["signer"], typed] if inp["method"] == "eth_signTypedData_v4" else \
        [inp["message"], inp["signer"]] if inp["method"] == "personal_sign" else [inp["signer"], inp["hash"]]
    return {"method": inp["method"], "params": params, **({"chain_id": chain_id} if chain_id else {})}


def _risk_metrics(answer: dict, expected: dict, swap: bool) -> dict[str, bool]:
    metrics: dict[str, bool] = {}
    if expected.get("risk_flags_required"):
        metrics["flags_found"] = not check_flags(answer, {"risk_flags_required": expected["risk_flags_required"]})
    if "min_severity" in expected:
        metrics["min_severity_met"] = severity_met(answer["risk_level"], expected["min_severity"])
    if SEVERITY.index(expected.get("min_severity", "none")) >= SEVERITY.index("medium") \
            or expected.get("risk_flags_required"):
        metrics["malicious_rated_benign"] = answer["verdict"] == "benign"
    if swap:
        metrics["benign_swap_rated_malicious"] = answer["verdict"] == "malicious"
    return metrics


def _decode_case(svc: Service, inp: dict, exp: dict) -> tuple[list[str], dict[str, bool]]:
    if "eth_call_results" in inp:  # token metadata: bytes32 fallback
        results = inp["eth_call_results"]
        got = {"symbol": decode_token_text(bytes.fromhex(results["symbol()"][2:])),
               "name": decode_token_text(bytes.fromhex(results["name()"][2:])),
               "decimals": decode_decimals(bytes.fromhex(results["decimals()"][2:]))}
        failures = [f"{k}: got {got[k]!r}, expected {exp[k]!r}" for k in got if k in exp and got[k] != exp[k]]
        return failures, {"decoded_exactly": not failures}
    refusal = "calldata_too_short" if exp.get("method", "") is None else \
        "abi_decode_error" if "method_candidate" in exp and "args" not in exp else None
    try:
        answer = svc.explain(_tx_body(inp), "eval")
    except AuditinfError as exc:
        if refusal and exc.code == refusal:
            return [], {"decoded_exactly": True}
        return [f"refused with {exc.code}: {exc.message}"], {"decoded_exactly": False}
    if refusal:
        return [f"decoded, but a {refusal} refusal was expected"], {"decoded_exactly": False}
    failures = check_decoded(answer["decoded"], exp)
    return failures, {"decoded_exactly": not failures}


def _methods_case(svc: Service, inp: dict, exp: dict) -> tuple[list[str], dict[str, bool]]:
    body = {k: inp[k] for k in ("abi", "data", "return_data") if k in inp}
    if "contract" in inp:
        body["to"] = inp["contract"]
    answer = svc.methods(body, "eval")
    got = {m["signature"]: m for m in answer["methods"]}
    failures = [] if len(got) == len(exp["methods"]) else [f"methods: got {len(got)}, expected {len(exp['methods'])}"]
    for want in exp["methods"]:
        have = got.get(want["signature"])
        if have is None:
            failures.append(f"method {want['signature']} missing")
            continue
        failures += [f"{want['signature']}.{k}: got {have.get(k)!r}" for k in ("name", "selector", "inputs",
                                                                               "state_mutability")
                     if k in want and have.get(k) != want[k]]
    for signature, outputs in exp.get("method_outputs", {}).items():
        if [o["type"] for o in got.get(signature, {}).get("outputs", [])] != outputs:
            failures.append(f"{signature} outputs differ")
    failures += check_decoded(answer.get("decoded") or {}, exp.get("decoded_data", {}))
    if "decoded_return" in exp and norm(answer.get("decoded_return", {}).get("values")) != norm(
            exp["decoded_return"]["values"]):
        failures.append("decoded_return differs")
    return failures, {"decoded_exactly": not failures}


def _risk_case(svc: Service, inp: dict, exp: dict) -> tuple[list[str], dict[str, bool]]:
    answer = svc.risk(_tx_body(inp), "eval")
    decoded = answer["decoded"]
    failures = []
    if exp.get("method") and decoded.get("method") != exp["method"]:
        failures.append(f"method: got {decoded.get('method')}, expected {exp['method']}")
    if "args" in exp and decoded.get("method") is not None and \
            list(norm(decoded.get("args", {})).values()) != list(norm(exp["args"]).values()):
        failures.append("args differ")  # names may differ between ABIs: compared by position
    failures += check_decoded(decoded, {k: v for k, v in exp.items()
                                        if k in ("selector", "commands", "deadline", "method_candidate", "human_amount")})
    decoded_ok = not failures
    failures += check_flags(answer, exp)
    if "native_value_wei" in exp and not any(f["evidence"].get("value_wei") == exp["native_value_wei"]
                                             for f in answer["findings"]):
        failures.append("no finding carries the native value in wei")
    swap = "swap" in str(decoded.get("method") or "").lower() or bool(decoded.get("commands"))
    benign_swap = swap and not exp.get("min_severity") and not exp.get("risk_flags_required")
    return failures, {"decoded_exactly": decoded_ok, **_risk_metrics(answer, exp, benign_swap)}


def _typed_case(svc: Service, inp: dict, exp: dict) -> tuple[list[str], dict[str, bool]]:
    answer = svc.risk(_signing_body(inp), "eval")
    decoded_failures = check_typed(answer["decoded"], exp)
    failures = decoded_failures + check_flags(answer, exp)
    return failures, {"decoded_exactly": not decoded_failures, **_risk_metrics(answer, exp, False)}


def _service_case(svc: Service, inp: dict, exp: dict) -> tuple[list[str], dict[str, bool]]:
    http = inp["http"]
    handler = {"/explain": svc.explain, "/risk": svc.risk, "/methods": svc.methods}.get(http["path"])
    if handler is None:
        return [f"no such endpoint {http['path']}"], {}
    try:
        handler(http["body"], "eval")
        status = 200
    except AuditinfError as exc:
        status = exc.http_status
    ok = status in exp.get("http_status_one_of", [])
    return ([] if ok else [f"HTTP status {status}, expected one of {exp.get('http_status_one_of')}"]), {}


_RUNNERS = {"decode": _decode_case, "abi_methods": _methods_case, "risk": _risk_case, "typed_data": _typed_case,
            "service": _service_case}


def _skip_reason(case: dict) -> str | None:
    if case["kind"] in SKIPPED_KINDS:
        return SKIPPED_KINDS[case["kind"]]
    if case["kind"] == "service" and "http" not in case["input"]:
        return _GATEWAY
    if case["kind"] not in _RUNNERS:
        return f"kind {case['kind']!r} is not evaluated by this harness"
    return None


def evaluate_case(harness: _Harness, case: dict) -> CaseResult:
    """Run one case; an unexpected refusal or a check failure is a failed case, never an exception."""
    kind = case.get("kind", "?")
    reason = _skip_reason(case)
    if reason:
        return CaseResult(case["id"], kind, "skipped", reason=reason)
    try:
        failures, metrics = _RUNNERS[kind](harness.service(case["input"]), case["input"], case["expected"])
    except AuditinfError as exc:
        failures, metrics = [f"refused with {exc.code}: {exc.message}"], {"decoded_exactly": False}
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a malformed case file
        failures, metrics = [f"case file not understood: {type(exc).__name__}: {exc}"], {}
    return CaseResult(case["id"], kind, "failed" if failures else "passed", failures, metrics=metrics)


def _load(path: Path) -> dict:
    case = load_json(path.read_bytes())
    if not isinstance(case, dict) or not {"id", "kind", "input", "expected"} <= set(case):
        raise ValueError("not a case: needs id, kind, input, expected")
    return case


@contextmanager
def _harness() -> Iterator[_Harness]:
    with tempfile.TemporaryDirectory(prefix="auditinf-eval-") as tmp:
        harness = _Harness(Path(tmp))
        try:
            yield harness
        finally:
            harness.ledger.close()


def run_eval(folder: Path) -> EvalReport:
    """Evaluate every ``*.json`` case in ``folder`` (sorted by file name). Raises ``FileNotFoundError``
    when the folder does not exist."""
    if not folder.is_dir():
        raise FileNotFoundError(folder)
    results = []
    with _harness() as harness:
        for path in sorted(folder.glob("*.json")):
            try:
                case = _load(path)
            except (AuditinfError, ValueError, OSError) as exc:
                results.append(CaseResult(path.stem, "?", "failed", [f"unreadable case file: {exc}"]))
                continue
            results.append(evaluate_case(harness, case))
    return EvalReport(results)
