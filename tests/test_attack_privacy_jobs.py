"""Regressions for the attack report's findings 10 (job memory) and 11 (private records leak
addresses, the matched ABI and the target's identity in provenance)."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from eth_abi import encode
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.api.jobs import JobTable
from auditinf.errors import Overloaded, RequestTooLarge
from auditinf.evm.chain import StaticChainFacts
from auditinf.ledger.canonical import commit

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
U = "0x" + "11" * 20


def spender(i: int) -> str:
    return "0x" + hashlib.sha256(f"private-spender-{i}".encode()).hexdigest()[:40]


def approve(to: str, who: str) -> dict:
    data = "0x095ea7b3" + encode(["address", "uint256"], [who, 2**256 - 1]).hex()
    return {"chain_id": 1, "from": U, "to": to, "value": "0", "data": data, "private": True}


# -- finding 11 -----------------------------------------------------------------------------

def test_private_record_has_no_address_or_abi_identity_in_clear(make_service):
    attacker = spender(1)
    service = make_service(chain=StaticChainFacts(1, {attacker: "0x"}))
    answer = service.risk(approve(USDC, attacker), "wallet-9")
    row = service.ledger.get(answer["receipt"]["seq"])
    text = row.body.decode().lower()
    body = json.loads(row.body)
    # the chain facts consulted the spender: stored only as a commitment
    for needle in (attacker[2:], USDC[2:].lower(), U[2:], "usdc", "erc20", ".json", "eth_getcode"):
        assert needle not in text, needle
    assert set(body["input"]["provenance"]) == {"commitment"}
    # ... that the vault opens to the provenance the public record would hold
    openings = {o.field: o for o in service.vault.disclose(row.seq, row.body)}
    opened = json.loads(openings["input.provenance"].content)
    assert body["input"]["provenance"]["commitment"] == commit(
        openings["input.provenance"].tag, openings["input.provenance"].content, openings["input.provenance"].salt)[0]
    consulted = next(p for p in opened if p["input"] == "chain_facts")["consulted"]
    assert any(c.get("address", "").lower() == attacker for c in consulted)
    abi = next(p for p in opened if p["input"] == "abi")
    assert abi["file"].endswith(".json")


def test_private_signing_record_has_no_address_in_clear(make_service):
    verifying = spender(2)
    service = make_service(chain=StaticChainFacts(1, {verifying: "0x"}))
    typed = {"types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"},
                                        {"name": "verifyingContract", "type": "address"}],
                       "Mail": [{"name": "contents", "type": "string"}]},
             "primaryType": "Mail", "domain": {"chainId": 1, "verifyingContract": verifying},
             "message": {"contents": "hello"}}
    answer = service.risk({"method": "eth_signTypedData_v4", "params": [U, typed], "private": True})
    row = service.ledger.get(answer["receipt"]["seq"])
    assert verifying[2:] not in row.body.decode().lower() and U[2:] not in row.body.decode().lower()
    assert set(json.loads(row.body)["input"]["provenance"]) == {"commitment"}


def test_public_record_keeps_provenance_in_clear(make_service):
    attacker = spender(3)
    service = make_service(chain=StaticChainFacts(1, {attacker: "0x"}))
    answer = service.risk({**approve(USDC, attacker), "private": False})
    body = json.loads(service.ledger.get(answer["receipt"]["seq"]).body)
    assert isinstance(body["input"]["provenance"], list)
    assert any(p["input"] == "abi" and p.get("file") for p in body["input"]["provenance"])


# -- finding 10 -----------------------------------------------------------------------------

@pytest.fixture
def blocked_table():
    gate = threading.Event()
    started = threading.Event()
    seen: list = []

    def run(kind, request, client_id):
        seen.append(request)
        started.set()
        gate.wait(10)
        return {"ok": True}

    table = JobTable(run, max_jobs=1000, ttl_s=60, workers=1, max_bytes=64 * 1024)
    yield table, gate, started, seen
    gate.set()
    table.shutdown()


def test_queued_jobs_hold_json_bytes_bounded_by_bytes(blocked_table):
    table, gate, started, seen = blocked_table
    table.submit("risk", {"chain_id": 1}, "c", "r0")  # occupies the only worker
    assert started.wait(5)
    bomb = {"chain_id": 1, "x": [{}] * 10_000}  # ~30 KB of JSON, ~0.7 MB parsed
    size = len(json.dumps(bomb, separators=(",", ":")))
    job = table.get(table.submit("risk", bomb, "c", "r1")["id"])
    assert isinstance(job.request, bytes) and len(job.request) == size
    assert table.queued_bytes == size
    table.submit("risk", bomb, "c", "r2")
    with pytest.raises(Overloaded) as exc:  # a third would pass 64 KiB of queued requests
        table.submit("risk", bomb, "c", "r3")
    assert exc.value.code == "job_table_full" and exc.value.http_status == 503 and exc.value.retry_after_s >= 1
    with pytest.raises(RequestTooLarge):
        table.submit("risk", {"x": "a" * 70_000}, "c", "r4")
    gate.set()
    for _ in range(200):
        if table.queued_bytes == 0 and len(seen) == 3:
            break
        threading.Event().wait(0.05)
    assert table.queued_bytes == 0
    assert seen[1] == bomb  # the job ran on the request as submitted, parsed again
    table.submit("risk", bomb, "c", "r5")  # room again


def test_job_request_over_the_byte_bound_is_413(make_service):
    service = make_service(settings={"jobs_max_bytes": 2048})
    client = TestClient(create_app(service.settings, service))
    response = client.post("/v1/jobs", json={"kind": "risk", "request": {"chain_id": 1, "x": [{}] * 1000}})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    small = client.post("/v1/jobs", json={"kind": "risk", "request": {"chain_id": 1, "to": U, "data": "0x"}})
    assert small.status_code == 202
