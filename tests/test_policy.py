"""Policy fields beyond routing: prices, rollout, breaker, budgets, gate; their invariants."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
import rfc8785

from auditinf.errors import PolicyError
from auditinf.policy import load_policy, parse_policy, usd_text

from .conftest import write_policy

ROOT = Path(__file__).resolve().parent.parent


def policy_doc(**extra) -> dict:
    path_doc = {
        "id": "t", "version": "1",
        "models": {"hosted-a": {"backend": "hosted", "price_usd_per_1m": {"input": "1.25", "output": 10}},
                   "local-gguf": {"backend": "local"}, "deterministic": {"backend": "deterministic"}},
        "routes": {k: {"public": ["hosted-a", "deterministic"], "private": ["local-gguf", "deterministic"]}
                   for k in ("explain", "risk", "methods")},
        "retries": {"max_attempts": 1},
        "classification": {},
    }
    for key, value in extra.items():
        path_doc[key] = {**path_doc["models"], **value} if key == "models" else value
    return path_doc


def parse(doc: dict):
    return parse_policy(json.dumps(doc).encode(), "p.json")


def test_prices_are_decimals_and_their_table_is_hashed():
    policy = parse(policy_doc())
    hosted = policy.models["hosted-a"]
    assert hosted.price_in == Decimal("1.25") and hosted.price_out == Decimal("10")
    assert hosted.cost_usd(1_000, 2_000) == Decimal("0.02125")  # 1000·1.25/1e6 + 2000·10/1e6
    assert policy.models["local-gguf"].cost_usd(10**6, 10**6) == 0
    table = {"deterministic": {"input": "0", "output": "0"}, "hosted-a": {"input": "1.25", "output": "10"},
             "local-gguf": {"input": "0", "output": "0"}}
    assert policy.prices_sha256 == hashlib.sha256(rfc8785.dumps(table)).hexdigest()
    assert policy.identity()["sha256"] == hashlib.sha256(json.dumps(policy_doc()).encode()).hexdigest()


def test_price_change_changes_price_hash_only_through_prices():
    a = parse(policy_doc())
    b = parse(policy_doc(models={"hosted-a": {"backend": "hosted", "price_usd_per_1m": {"input": "1.250",
                                                                                        "output": "10"}}}))
    c = parse(policy_doc(models={"hosted-a": {"backend": "hosted", "price_usd_per_1m": {"input": "1.26",
                                                                                        "output": "10"}}}))
    assert a.prices_sha256 != c.prices_sha256
    assert b.models["hosted-a"].price_in == a.models["hosted-a"].price_in


@pytest.mark.parametrize("extra,path", [
    ({"models": {"hosted-a": {"backend": "hosted", "price_usd_per_1m": {"input": "-1", "output": "1"}}}},
     r"\$\.models\.hosted-a\.price_usd_per_1m\.input"),
    ({"models": {"hosted-a": {"backend": "hosted", "price_usd_per_1m": {"input": "1e3", "output": "1"}}}},
     r"\$\.models\.hosted-a\.price_usd_per_1m\.input"),
    ({"gate": {"levels": {"high": "maybe"}}}, r"\$\.gate\.levels\.high"),
    ({"gate": {"max_value_wei": "1.5"}}, r"\$\.gate\.max_value_wei"),
    ({"gate": {"deny_addresses": ["0x12"]}}, r"\$\.gate\.deny_addresses\[0\]"),
    ({"budgets": {"clients": {"a": "ten"}}}, r"\$\.budgets\.clients\.a"),
    ({"circuit_breaker": {"open_after_consecutive_failures": 0}},
     r"\$\.circuit_breaker\.open_after_consecutive_failures"),
    ({"models": {"hosted-b": {"backend": "hosted", "canary_of": "hosted-a"}}}, r"\$\.models\.hosted-b"),
    ({"models": {"deterministic": {"backend": "deterministic", "pinned_version": "x"}}}, r"\$\.models\.deterministic"),
])
def test_schema_errors_name_the_json_path(extra, path):
    with pytest.raises(PolicyError, match=path):
        parse(policy_doc(**extra))


@pytest.mark.parametrize("models,path,reason", [
    ({"hosted-b": {"backend": "hosted", "canary_of": "nope", "canary_weight": 0.1}},
     r"\$\.models\.hosted-b\.canary_of", "another model"),
    ({"hosted-b": {"backend": "hosted", "canary_of": "hosted-a", "canary_weight": 0.6},
      "hosted-c": {"backend": "hosted", "canary_of": "hosted-a", "canary_weight": 0.5}},
     r"\$\.models\.hosted-c\.canary_weight", "more than 1"),
    ({"hosted-b": {"backend": "hosted", "shadow_of": "hosted-a"},
      "hosted-c": {"backend": "hosted", "shadow_of": "hosted-b"}}, r"\$\.models\.hosted-c\.shadow_of", "itself"),
    # a hosted canary of a model on a private route would send private data off the host
    ({"local-gguf-b": {"backend": "hosted", "canary_of": "local-gguf", "canary_weight": 0.1}},
     r"\$\.routes\.explain\.private\[0\]", "local-gguf-b"),
])
def test_rollout_invariants(models, path, reason):
    with pytest.raises(PolicyError, match=f"{path}.*{reason}"):
        parse(policy_doc(models=models))


def test_budget_gate_breaker_defaults_and_values():
    policy = parse(policy_doc(budgets={"default_daily_usd": "2.50", "clients": {"big": 100}},
                              gate={"levels": {"medium": "deny"}, "max_value_wei": str(10**30),
                                    "deny_addresses": ["0x" + "AB" * 20]},
                              circuit_breaker={"open_after_consecutive_failures": 2, "open_s": 1.5}))
    assert policy.budgets.limit_for("someone") == Decimal("2.50") and policy.budgets.limit_for("big") == 100
    assert policy.gate.levels == {"none": "allow", "low": "allow", "medium": "deny", "high": "deny",
                                  "critical": "deny"}
    assert policy.gate.max_value_wei == 10**30 and policy.gate.deny_addresses == {"0x" + "ab" * 20}
    assert (policy.breaker.open_after_consecutive_failures, policy.breaker.open_s,
            policy.breaker.half_open_probes) == (2, 1.5, 1)
    bare = parse(policy_doc())
    assert bare.budgets.limit_for("x") is None and bare.gate.max_value_wei is None


def test_shipped_policies_carry_prices_budgets_and_gate():
    default = load_policy(ROOT / "policies" / "default.yaml")
    assert default.models["hosted-default"].price_out > default.models["hosted-default"].price_in > 0
    assert default.budgets.default_daily_usd == Decimal("5.00")
    assert default.gate.levels["high"] == "deny" and default.gate.max_value_wei == 10**18
    strict = load_policy(ROOT / "policies" / "strict-local.yaml")
    assert all(m.price_in == m.price_out == 0 for m in strict.models.values())


def test_record_carries_policy_and_price_hashes(make_service):
    service = make_service()
    answer = service.explain({"chain_id": 1, "to": "0x" + "11" * 20, "value": "1", "data": "0x"})
    record = json.loads(service.ledger.get(answer["receipt"]["seq"]).body)
    assert record["policy"]["sha256"] == hashlib.sha256(Path(service.policy.path).read_bytes()).hexdigest()
    assert record["policy"]["prices_sha256"] == service.policy.prices_sha256
    assert record["cost_usd"] == "0"


def test_write_policy_helper_extra_merges_models(tmp_path: Path):
    path = write_policy(tmp_path / "p.json", public=["hosted-a", "deterministic"], private=["deterministic"],
                        extra={"models": {"hosted-b": {"backend": "hosted", "shadow_of": "hosted-a"}}})
    assert set(load_policy(path).models) == {"hosted-a", "hosted-b", "local-gguf", "deterministic"}


def test_costs_are_plain_decimal_strings():
    assert usd_text(Decimal(14) / Decimal(10**8)) == "0.00000014"  # never "1.4E-7"
    assert usd_text(Decimal("100")) == "100" and usd_text(Decimal("0E-12")) == "0"
    assert usd_text(Decimal("2.50")) == "2.5"
