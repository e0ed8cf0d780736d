"""How one answer is compared with a case's ``expected`` (the ../shared/cases format): each check
returns the list of failures as short sentences (empty: passed), never raises.

Comparison rules from the cases' README: integers compare as decimal strings, ``0x`` strings
(addresses, hex) case-insensitively; ``risk_flags_required`` uses descriptive names mapped to our
finding codes by :data:`FLAG_CODES`; ``min_severity`` orders low < medium < high < critical.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FLAG_CODES", "SEVERITY", "norm", "check_decoded", "check_flags", "check_typed", "severity_met"]

# Case-file flag names → our finding codes (auditinf/risk/rules.py, auditinf/risk/typed_rules.py).
FLAG_CODES = {
    "UNLIMITED_APPROVAL": "unlimited_approval",
    "SPENDER_IS_EOA": "spender_is_eoa",
    "APPROVAL_FOR_ALL": "approval_for_all",
    "OPERATOR_NOT_KNOWN_MARKETPLACE": "operator_unknown",
    "NATIVE_VALUE_TO_UNVERIFIED_CONTRACT": "native_value_unknown_call",
    "ZERO_VALUE_TRANSFER": "zero_value_transfer",
    "ADDRESS_POISONING_LOOKALIKE": "address_poisoning_lookalike",
    "SWAP_RECIPIENT_NOT_SENDER": "swap_recipient_not_sender",
    "MISLEADING_FUNCTION_NAME": "misleading_function_name",
    "PERMIT2_ALLOWANCE": "permit2_allowance",
    "PERMIT_SIGNATURE": "permit_signature",
    "FAR_EXPIRATION": "far_expiration",
    "PERMIT2_TRANSFER": "permit2_transfer",
    "PERMIT2_BATCH_MANY_TOKENS": "permit2_batch_many_tokens",
    "SEAPORT_ZERO_CONSIDERATION": "seaport_zero_consideration",
    "SAFE_DELEGATECALL": "safe_delegatecall",
    "BLIND_SIGNING": "blind_signing",
    "CHAIN_ID_MISMATCH": "chain_id_mismatch",
}
SEVERITY = ["none", "low", "medium", "high", "critical"]
# expected key of a typed_data case → key of the answer's decoded["summary"]
_TYPED_SUMMARY = ("token", "spender", "owner", "amount", "value", "expiration", "deadline", "sig_deadline")


def norm(value: Any) -> Any:
    """Ints as decimal strings, 0x strings lowercased, recursively (bools kept)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else value
    if isinstance(value, list):
        return [norm(v) for v in value]
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    return value


def _differs(name: str, have: Any, want: Any) -> list[str]:
    return [] if norm(have) == norm(want) else [f"{name}: got {_short(have)}, expected {_short(want)}"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def check_decoded(decoded: dict, expected: dict) -> list[str]:
    """Method, signature, selector, args, trailing bytes, human amount, nested calls, Universal
    Router commands and deadline, selector-table candidates — whichever ``expected`` names."""
    failures: list[str] = []
    for key in ("method", "signature", "selector", "args", "trailing_bytes", "human_amount", "deadline"):
        if key in expected:
            failures += _differs(key, decoded.get(key), expected[key])
    if "nested_calls_decoded" in expected:
        got = [{k: c.get(k) for k in ("to", "method", "selector", "args")} for c in decoded.get("nested_calls", [])]
        failures += _differs("nested_calls", got, expected["nested_calls_decoded"])
    if "commands" in expected:
        have = decoded.get("commands", [])
        if len(have) != len(expected["commands"]):
            failures.append(f"commands: got {len(have)}, expected {len(expected['commands'])}")
        for h, w in zip(have, expected["commands"]):
            keys = ("index", "byte", "name", "allow_revert")
            failures += _differs(f"commands[{w.get('index')}]", {k: h.get(k) for k in keys}, {k: w.get(k) for k in keys})
            failures += _differs(f"commands[{w.get('index')}].decoded",
                                 {k: h.get("decoded", {}).get(k) for k in w.get("decoded", {})}, w.get("decoded", {}))
    if "method_candidate" in expected and decoded.get("method") is None:
        names = [c.get("signature") for c in decoded.get("method_candidates", [])]
        if expected["method_candidate"] not in names:
            failures.append(f"method_candidates: {expected['method_candidate']} not among {_short(names)}")
    return failures


def severity_met(risk_level: str, minimum: str) -> bool:
    return SEVERITY.index(risk_level) >= SEVERITY.index(minimum)


def check_flags(answer: dict, expected: dict) -> list[str]:
    """Every required flag found (by its finding code), no ``risk_flags_forbidden`` flag raised,
    and the minimum severity met."""
    codes = {f["code"] for f in answer.get("findings", [])}
    failures = []
    for flag in expected.get("risk_flags_required", []):
        code = FLAG_CODES.get(flag)
        if code is None:
            failures.append(f"flag {flag}: no finding code is mapped to it")
        elif code not in codes:
            failures.append(f"flag {flag} ({code}) not raised")
    for flag in expected.get("risk_flags_forbidden", []):  # our own cases: what must NOT be raised
        if FLAG_CODES.get(flag) in codes:
            failures.append(f"flag {flag} ({FLAG_CODES[flag]}) raised but must not be")
    if "min_severity" in expected and not severity_met(answer.get("risk_level", "none"), expected["min_severity"]):
        failures.append(f"risk level {answer.get('risk_level')} below {expected['min_severity']}")
    return failures


def check_typed(decoded: dict, expected: dict) -> list[str]:
    """EIP-712 digest, what it was recognised as, verifying contract, the recognised fields and
    their display (an expected display must start with the same word: ``unlimited``, ``never``)."""
    failures: list[str] = []
    if "eip712_digest" in expected:
        failures += _differs("eip712_digest", decoded.get("digest"), expected["eip712_digest"])
    if "recognised_as" in expected:
        failures += _differs("recognised_as", decoded.get("recognised_as"), expected["recognised_as"])
    if "verifying_contract" in expected:
        failures += _differs("verifying_contract", decoded.get("domain", {}).get("verifyingContract"),
                             expected["verifying_contract"])
    summary = decoded.get("summary", {})
    for key in _TYPED_SUMMARY:
        if key in expected:
            failures += _differs(key, summary.get(key), expected[key])
    for key in (k for k in expected if k.endswith("_display")):
        field = key[: -len("_display")]
        shown = [v for path, v in decoded.get("display", {}).items() if path.split(".")[-1] == field]
        first_word = str(expected[key]).split(" ")[0]
        if not shown or not shown[0].startswith(first_word):
            failures.append(f"{key}: got {_short(shown[:1])}, expected {expected[key]!r}")
    return failures
