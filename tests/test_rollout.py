"""Canary weights (sticky by request id) and shadow runs recorded beside the primary."""

from __future__ import annotations

import hashlib
import json

from auditinf.inference.rollout import bucket, choose_version
from auditinf.policy import parse_policy

from .fakes.fault_server import GOOD_ANSWER, FaultServer
from .test_inference import body, stored

SHADOW_ANSWER = {"summary": "Shadow model: approves a spender for tokens.", "key_points": [], "risk_notes": []}


def canary_policy(weights: dict[str, float]):
    models = {"hosted-a": {"backend": "hosted"}, "deterministic": {"backend": "deterministic"},
              **{name: {"backend": "hosted", "canary_of": "hosted-a", "canary_weight": w} for name, w in weights.items()}}
    doc = {"id": "t", "version": "1", "models": models, "retries": {"max_attempts": 1}, "classification": {},
           "routes": {k: {"public": ["hosted-a", "deterministic"], "private": ["deterministic"]}
                      for k in ("explain", "risk", "methods")}}
    return parse_policy(json.dumps(doc).encode())


def test_canary_weights_within_5_points_over_2000_requests():
    policy = canary_policy({"hosted-b": 0.1, "hosted-c": 0.3})
    counts = {"hosted-a": 0, "hosted-b": 0, "hosted-c": 0}
    for i in range(2000):
        chosen, _ = choose_version(policy, policy.models["hosted-a"], f"req-{i}")
        counts[chosen.name] += 1
    shares = {name: n / 2000 for name, n in counts.items()}
    for name, want in {"hosted-a": 0.6, "hosted-b": 0.1, "hosted-c": 0.3}.items():
        assert abs(shares[name] - want) <= 0.05, shares


def test_choice_is_sticky_and_follows_the_documented_hash():
    policy = canary_policy({"hosted-b": 0.25})
    for i in range(200):
        rid = f"9f0c-{i}"
        digest = hashlib.sha256(rid.encode() + b"\x00hosted-a").digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        assert bucket(rid, "hosted-a") == point
        chosen, canary_of = choose_version(policy, policy.models["hosted-a"], rid)
        assert (chosen.name, canary_of) == (("hosted-b", "hosted-a") if point < 0.25 else ("hosted-a", None))
        assert choose_version(policy, policy.models["hosted-a"], rid)[0] is chosen


def test_canary_served_request_is_recorded_as_such(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}]) as up:
        service = make_service(public=("hosted-a", "deterministic"), hosted_url=up.base_url,
                               extra={"models": {"hosted-b": {"backend": "hosted", "model": "next-model",
                                                              "canary_of": "hosted-a", "canary_weight": 0.5}}})
        rid = next(f"r{i}" for i in range(100) if bucket(f"r{i}", "hosted-a") < 0.5)
        answer = service.risk(body(), request_id=rid)
        assert json.loads(up.requests[0]["body"])["model"] == "next-model"
    attempt = answer["attempts"][0]
    assert (attempt["model"], attempt["canary_of"], attempt["outcome"]) == ("hosted-b", "hosted-a", "success")
    assert stored(service, answer["receipt"]["seq"])["request_id"] == rid


def shadow_service(make_service, primary, shadow):
    return make_service(public=("hosted-a", "deterministic"), hosted_url=primary.base_url,
                        extra={"models": {"hosted-s": {"backend": "hosted", "base_url": shadow.base_url,
                                                       "model": "shadow-model", "shadow_of": "hosted-a"}}})


def test_shadow_runs_on_public_requests_and_is_recorded_not_returned(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}]) as primary, FaultServer([{"answer": SHADOW_ANSWER}]) as shadow:
        service = shadow_service(make_service, primary, shadow)
        answer = service.risk(body())
        service.shadows.drain()
        assert len(shadow.requests) == 1
        assert json.loads(shadow.requests[0]["body"])["messages"] == json.loads(primary.requests[0]["body"])["messages"]
    assert "Shadow model" not in json.dumps(answer)
    records = [json.loads(service.ledger.get(s).body) for s in range(service.ledger.size())]
    shadows = [r for r in records if r["kind"] == "shadow"]
    assert len(shadows) == 1 and shadows[0]["request_id"] == answer["request_id"]
    assert shadows[0]["shadow_of"] == "hosted-a" and shadows[0]["output"]["explanation"] == SHADOW_ANSWER
    assert shadows[0]["attempts"][0]["model"] == "hosted-s"


def test_no_shadow_for_private_requests_and_shadow_failure_is_harmless(make_service):
    with FaultServer([{"answer": GOOD_ANSWER}]) as primary, FaultServer([{"status": 500}]) as shadow:
        service = shadow_service(make_service, primary, shadow)
        private = service.risk(body(private=True))
        public = service.risk(body())
        service.shadows.drain()
        assert len(shadow.requests) == 1  # the public request only
    assert private["data_class"] == "private" and public["model"]["backend"] == "hosted"
    records = [json.loads(service.ledger.get(s).body) for s in range(service.ledger.size())]
    shadow_records = [r for r in records if r["kind"] == "shadow"]
    assert [r["request_id"] for r in shadow_records] == [public["request_id"]]
    assert shadow_records[0]["output"] is None and shadow_records[0]["attempts"][0]["http_status"] == 500
