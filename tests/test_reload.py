"""Policy hot reload: applied and refused changes are recorded; SIGHUP and file polling trigger it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.policy.reload import PolicyReloader

TX = {"chain_id": 1, "to": "0x" + "11" * 20, "value": "1", "data": "0x"}


def records(service) -> list[dict]:
    return [json.loads(service.ledger.get(seq).body) for seq in range(service.ledger.size())]


def edit(path: Path, change) -> bytes:
    doc = json.loads(path.read_text())
    change(doc)
    raw = json.dumps(doc).encode()
    path.write_bytes(raw)
    return raw


def test_valid_change_is_recorded_then_applied(make_service):
    service = make_service()
    path = Path(service.policy.path)
    old_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    reloader = PolicyReloader(service, poll_s=0)
    assert reloader.reload() is False  # unchanged bytes: nothing to do, nothing recorded
    raw = edit(path, lambda d: d.update(version="2"))
    assert reloader.reload("manual") is True
    change = records(service)[-1]
    assert change["kind"] == "policy_change" and change["outcome"] == "applied" and change["trigger"] == "manual"
    assert change["old"]["sha256"] == old_sha and change["new"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert service.policy.version == "2"
    answer = service.explain(TX)
    assert records(service)[-1]["policy"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert answer["receipt"]["seq"] == change["seq"] + 1


def test_invalid_change_keeps_old_policy_and_records_refusal_once(make_service):
    service = make_service()
    path = Path(service.policy.path)
    before = service.policy
    reloader = PolicyReloader(service, poll_s=0)
    raw = edit(path, lambda d: d["retries"].update(max_attempts=0))
    assert reloader.reload() is False and reloader.reload() is False
    refusals = [r for r in records(service) if r["kind"] == "policy_change"]
    assert len(refusals) == 1  # the same refused content is recorded once
    assert refusals[0]["outcome"] == "refused" and "$.retries.max_attempts" in refusals[0]["error"]
    assert refusals[0]["attempted_sha256"] == hashlib.sha256(raw).hexdigest()
    assert refusals[0]["old"] == before.identity() and service.policy is before
    # a hosted model on a private route is refused too (invariant beyond the schema)
    edit(path, lambda d: d["routes"]["risk"].update(private=["hosted-a"]) or d["retries"].update(max_attempts=1))
    assert reloader.reload() is False and service.policy is before
    assert "$.routes.risk.private[0]" in records(service)[-1]["error"]


def test_file_change_is_picked_up_by_the_poll(make_service):
    service = make_service()
    reloader = PolicyReloader(service, poll_s=0.05)
    reloader.start()
    try:
        time.sleep(0.01)
        edit(Path(service.policy.path), lambda d: d.update(version="polled"))
        deadline = time.monotonic() + 5
        while service.policy.version != "polled" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        reloader.stop()
    assert service.policy.version == "polled"
    assert records(service)[-1]["trigger"] == "file_change"


def test_sighup_reloads(make_service):
    service = make_service()
    previous = signal.getsignal(signal.SIGHUP)
    app = create_app(service.settings.model_copy(update={"policy_poll_s": 0}), service)
    reloader = app.state.policy_reloader  # started by the app's startup (uvicorn runs it on the main thread)
    assert reloader.start in app.router.on_startup
    try:
        reloader.start()
        edit(Path(service.policy.path), lambda d: d.update(version="hup"))
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while service.policy.version != "hup" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        signal.signal(signal.SIGHUP, previous)
        reloader.stop()
    assert service.policy.version == "hup" and records(service)[-1]["trigger"] == "sighup"
    with TestClient(app) as client:  # the app serves under the reloaded policy
        assert client.post("/v1/explain", json=TX).status_code == 200
    assert records(service)[-1]["policy"]["version"] == "hup"
