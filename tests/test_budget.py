"""Per-client daily budgets: refused with 402 before any model call, recorded; seeded from today."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.errors import BudgetExhausted
from auditinf.policy import BudgetPolicy
from auditinf.policy.budget import BudgetTracker
from auditinf.service import Service

from .fakes.fault_server import GOOD_ANSWER, FaultServer
from .test_inference import body

PRICE = {"price_usd_per_1m": {"input": "1.00", "output": "2.00"}}
PER_CALL = (100 * Decimal(1) + 20 * Decimal(2)) / 10**6  # the fault server reports 100 + 20 tokens


def budget_service(make_service, upstream, limit="0.0002"):
    return make_service(public=("hosted-a", "deterministic"), hosted_url=upstream.base_url, hosted=PRICE,
                        extra={"budgets": {"default_daily_usd": "100", "clients": {"client-broke": limit}}})


def test_over_budget_is_402_before_any_model_call_and_recorded(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}]) as up:
        service = budget_service(make_service, up)
        client = TestClient(create_app(service.settings, service))
        headers = {"X-Client-Id": "client-broke"}
        for _ in range(2):  # 0 then 0.00014 spent: both under 0.0002
            assert client.post("/v1/explain", json=body(), headers=headers).status_code == 200
        assert service.budget.spent("client-broke") == 2 * PER_CALL
        refused = client.post("/v1/explain", json=body(), headers=headers)
        assert len(up.requests) == 2  # no model call for the refused request
        other = client.post("/v1/explain", json=body(), headers={"X-Client-Id": "client-rich"})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "budget_exhausted"
    assert "client-broke" in refused.json()["error"]["message"]
    assert other.status_code == 200
    records = [json.loads(service.ledger.get(s).body) for s in range(service.ledger.size())]
    refusal = [r for r in records if r["kind"] == "refusal"]
    assert len(refusal) == 1 and refusal[0]["client_id"] == "client-broke"
    assert refusal[0]["refusal"] == {"code": "budget_exhausted", "spent_usd": str(2 * PER_CALL)}
    assert [Decimal(r["cost_usd"]) for r in records if r["kind"] == "explain"] == [PER_CALL] * 3


def test_spend_is_seeded_from_todays_records_at_start_up(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}]) as up:
        service = budget_service(make_service, up, limit="1")
        for _ in range(3):
            service.risk(body(), client_id="client-broke")
        service.risk(body(), client_id="someone-else")
    restarted = Service(service.settings, service.ledger, policy=service.policy, registry=service.registry)
    assert restarted.budget.spent("client-broke") == 3 * PER_CALL
    assert restarted.budget.spent("someone-else") == PER_CALL


def test_seed_stops_at_the_first_record_of_an_earlier_day(make_service):
    service = make_service()
    for _ in range(5):
        service.explain({"chain_id": 1, "to": "0x" + "11" * 20, "value": "1", "data": "0x"})
    today = datetime.now(timezone.utc).date()
    tracker = BudgetTracker(today=lambda: today + timedelta(days=1))
    assert tracker.seed(service.ledger, batch=2) == 0  # the newest record is already from "yesterday"
    assert BudgetTracker().seed(service.ledger, batch=2) == service.ledger.size()


def test_spend_resets_at_utc_midnight_and_limits_apply_per_client():
    day = [date(2026, 11, 29)]
    tracker = BudgetTracker(today=lambda: day[0])
    tracker.add("a", Decimal("3"))
    policy = BudgetPolicy(default_daily_usd=Decimal("5"), clients={"a": Decimal("3")})
    with pytest.raises(BudgetExhausted) as refused:
        tracker.check(policy, "a")
    assert refused.value.code == "budget_exhausted" and refused.value.http_status == 402
    tracker.check(policy, "b")  # default limit, nothing spent
    day[0] += timedelta(days=1)
    assert tracker.spent("a") == 0
    tracker.check(policy, "a")
    tracker.check(BudgetPolicy(), "a")  # no limit configured
