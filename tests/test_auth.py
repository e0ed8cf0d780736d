"""Client authentication: the registry file (hash only, mode 0600, schema), the `auditinf clients`
commands, and the API with a registry (RFC 6750 bearer tokens, 401/403, job isolation, records
saying how the client id was established) and without one (self-declared, warned)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.auth.registry import RegistryFile, add_client, load_registry, parse_registry, revoke_client
from auditinf.errors import ClientRegistryError, InputError, KeyFileError, NotFound
from auditinf.ledger import verify_rows

from .conftest import write_clients
from .test_api import tx
from .test_cli import run
from .test_obs import samples, value

TOKEN_A, TOKEN_B = "ak-test-token-of-client-a-0001", "ak-test-token-of-client-b-0002"


def records(service) -> list[dict]:
    return [json.loads(service.ledger.get(seq).body) for seq in range(service.ledger.size())]


@pytest.fixture
def clients_file(tmp_path: Path) -> Path:
    return write_clients(tmp_path / "clients.json", {"client-a": TOKEN_A, "client-b": TOKEN_B})


@pytest.fixture
def auth_service(make_service, clients_file):
    return make_service(settings={"clients_file": clients_file})


@pytest.fixture
def client(auth_service) -> TestClient:
    return TestClient(create_app(auth_service.settings, auth_service))


def bearer(token: str, **extra: str) -> dict:
    return {"Authorization": f"Bearer {token}", **extra}


# -- the registry file -------------------------------------------------------------------------

def test_add_stores_only_the_hash_in_a_0600_file(tmp_path):
    path = tmp_path / "reg" / "clients.json"
    token = add_client(path, "wallet-1")
    assert token.startswith("ak-") and len(token) == 3 + 43  # base64url of 32 bytes, no padding
    raw = path.read_text()
    assert token not in raw and token[3:] not in raw
    assert json.loads(raw)["clients"]["wallet-1"]["sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_registry(path).authenticate(token) == "wallet-1"
    assert load_registry(path).authenticate(token + "x") is None
    second = add_client(path, "wallet-2")
    assert second != token and set(load_registry(path).clients) == {"wallet-1", "wallet-2"}


def test_add_refuses_existing_and_bad_ids_revoke_keeps_the_entry(tmp_path):
    path = tmp_path / "clients.json"
    old = add_client(path, "wallet-1")
    with pytest.raises(InputError) as exists:
        add_client(path, "wallet-1")
    assert exists.value.code == "client_exists"
    for bad in ("bad id", "", "x" * 65, "wallet\n"):
        with pytest.raises(InputError):
            add_client(path, bad)
    with pytest.raises(NotFound) as missing:
        revoke_client(path, "nobody")
    assert missing.value.code == "client_not_found"
    entry = revoke_client(path, "wallet-1")
    registry = load_registry(path)
    assert entry.revoked_at and registry.enabled and registry.authenticate(old) is None  # on, nobody passes
    assert revoke_client(path, "wallet-1").revoked_at == entry.revoked_at  # twice: the first date stays
    new = add_client(path, "wallet-1", replace=True)
    assert load_registry(path).authenticate(new) == "wallet-1" and load_registry(path).authenticate(old) is None


def test_registry_readable_by_others_is_refused(tmp_path, make_service):
    path = write_clients(tmp_path / "clients.json", {"client-a": TOKEN_A})
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="readable by other users"):
        load_registry(path)
    service = make_service(settings={"clients_file": path})
    with pytest.raises(KeyFileError):
        create_app(service.settings, service)  # the server refuses to start
    missing = make_service(settings={"clients_file": tmp_path / "typo.json"})
    with pytest.raises(KeyFileError, match="not found"):
        create_app(missing.settings, missing)  # an explicit path must exist: a typo never turns auth off


@pytest.mark.parametrize("doc,where", [
    ({"version": 1, "clients": {"bad id": {"sha256": "ab" * 32, "created_at": "t"}}}, "$.clients"),
    ({"version": 1, "clients": {"a": {"sha256": TOKEN_A, "created_at": "t"}}}, "$.clients.a.sha256"),
    ({"version": 1, "clients": {"a": {"sha256": "ab" * 32, "created_at": "t", "token": TOKEN_A}}}, "$.clients.a"),
    ({"version": 2, "clients": {}}, "$.version"),
    ({"clients": {}}, "$"),
])
def test_registry_schema_errors_name_the_path_never_the_value(doc, where):
    with pytest.raises(ClientRegistryError) as err:
        parse_registry(json.dumps(doc).encode(), "clients.json")
    assert err.value.code == "invalid_client_registry"
    assert f"clients.json: {where}:" in err.value.message and TOKEN_A not in err.value.message


def test_registry_refuses_shared_hashes_and_bad_json():
    same = hashlib.sha256(TOKEN_A.encode()).hexdigest()
    doc = {"version": 1, "clients": {"a": {"sha256": same, "created_at": "t"}, "b": {"sha256": same, "created_at": "t"}}}
    with pytest.raises(ClientRegistryError, match="share one token hash"):
        parse_registry(json.dumps(doc).encode())
    with pytest.raises(ClientRegistryError, match="not valid JSON"):
        parse_registry(b"{not json")


def test_cli_clients_add_list_revoke(tmp_path):
    added = run(tmp_path, "clients", "add", "wallet-1")  # cwd tmp_path: the default ledger/clients.json
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    path = tmp_path / "ledger" / "clients.json"
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert json.loads(path.read_text())["clients"]["wallet-1"]["sha256"] == digest
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and token not in added.stderr
    listed = run(tmp_path, "clients", "list")
    assert listed.returncode == 0 and token not in listed.stdout and token[3:15] not in listed.stdout
    (entry,) = json.loads(listed.stdout)["clients"]
    assert entry == {"client_id": "wallet-1", "fingerprint": digest[:12], "status": "active",
                     "created_at": entry["created_at"]}
    again = run(tmp_path, "clients", "add", "wallet-1")
    assert again.returncode == 2 and json.loads(again.stdout)["error"]["code"] == "client_exists"
    revoked = run(tmp_path, "clients", "revoke", "wallet-1")
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["status"] == "revoked"
    assert json.loads(run(tmp_path, "clients", "list").stdout)["clients"][0]["status"] == "revoked"
    unknown = run(tmp_path, "clients", "revoke", "nobody")
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["error"]["code"] == "client_not_found"
    os.chmod(path, 0o640)
    exposed = run(tmp_path, "clients", "list")
    assert exposed.returncode == 2 and json.loads(exposed.stdout)["error"]["code"] == "key_file_error"


# -- the API with a registry -------------------------------------------------------------------

def test_valid_token_names_the_client_in_the_record(client, auth_service):
    ok = client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A))
    assert ok.status_code == 200
    same = client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_B, **{"X-Client-Id": "client-b"}))
    assert same.status_code == 200
    lowercase_scheme = client.post("/v1/risk", json=tx(), headers={"Authorization": f"bearer {TOKEN_A}"})
    assert lowercase_scheme.status_code == 200  # the scheme is case-insensitive (RFC 9110 §11.1)
    stored = records(auth_service)
    assert [(r["client_id"], r["client_auth"]) for r in stored] == [
        ("client-a", "token"), ("client-b", "token"), ("client-a", "token")]
    signer = auth_service.ledger.signer
    assert verify_rows(auth_service.ledger.rows(), {signer.kid: signer.verifier}) == 3


@pytest.mark.parametrize("headers,code,challenge", [
    ({}, "unauthenticated", 'Bearer realm="auditinf"'),
    ({"Authorization": f"Basic {TOKEN_A}"}, "unauthenticated", 'Bearer realm="auditinf"'),
    ({"Authorization": "Bearer"}, "unauthenticated", 'Bearer realm="auditinf"'),
    ({"X-Client-Id": "client-a"}, "unauthenticated", 'Bearer realm="auditinf"'),
    (bearer("ak-wrong-token-0000"), "invalid_token", 'Bearer realm="auditinf", error="invalid_token"'),
    (bearer(TOKEN_A + "0"), "invalid_token", 'Bearer realm="auditinf", error="invalid_token"'),
    (bearer(hashlib.sha256(TOKEN_A.encode()).hexdigest()), "invalid_token",  # the stored hash is no token
     'Bearer realm="auditinf", error="invalid_token"'),
])
def test_missing_or_wrong_token_is_401(client, auth_service, headers, code, challenge):
    response = client.post("/v1/risk", json=tx(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["www-authenticate"] == challenge
    presented = headers.get("Authorization", "").partition(" ")[2]
    assert not presented or presented not in response.text + json.dumps(dict(response.headers))
    assert auth_service.ledger.size() == 0  # nothing ran, nothing recorded


def test_auth_is_checked_before_the_body_is_read(client, auth_service):
    response = client.post("/v1/risk", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"
    huge = client.post("/v1/risk", content=b"[" + b"1," * 600_000 + b"1]")
    assert huge.status_code == 401


def test_x_client_id_naming_another_client_is_403(client, auth_service):
    response = client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A, **{"X-Client-Id": "client-b"}))
    assert response.status_code == 403 and response.json()["error"]["code"] == "client_mismatch"
    bad = client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A, **{"X-Client-Id": "bad id"}))
    assert bad.status_code == 403
    assert auth_service.ledger.size() == 0


def test_every_request_endpoint_requires_a_token_transparency_does_not(client, auth_service):
    client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A))  # one record to look at
    job = client.post("/v1/jobs", json={"kind": "risk", "request": tx()}, headers=bearer(TOKEN_A)).json()
    for method, path, body in (("post", "/v1/explain", tx()), ("post", "/v1/risk", tx()),
                               ("post", "/v1/explain?stream=true", tx()),
                               ("post", "/v1/methods", {"abi": []}), ("post", "/v1/gate", tx()),
                               ("post", "/v1/jobs", {"kind": "risk", "request": tx()}),
                               ("get", f"/v1/jobs/{job['id']}", None)):
        response = client.request(method.upper(), path, json=body)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthenticated"
    for path in ("/v1/records/0", "/v1/pubkey", "/v1/records/0/proof", "/v1/checkpoints/latest",
                 "/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    latest = client.get("/v1/checkpoints/latest").json()["size"]
    assert client.get(f"/v1/consistency?from={latest}").status_code == 200
    assert client.get("/readyz").json()["client_auth"] == "token"
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["clientToken"] == {"type": "http", "scheme": "bearer", "description": schemes["clientToken"]["description"]}


def test_refusals_before_the_endpoint_runs_are_counted_in_request_metrics(client, auth_service):
    client.post("/v1/risk", json=tx())                                         # 401 unauthenticated
    client.post("/v1/explain", json=tx(), headers=bearer("ak-not-a-token"))   # 401 invalid_token
    client.post("/v1/gate", json=tx(), headers=bearer(TOKEN_A, **{"X-Client-Id": "client-b"}))  # 403
    client.post("/v1/jobs", json={"kind": "risk", "request": tx()})            # 401
    assert client.post("/v1/gate", json=tx(), headers=bearer(TOKEN_A)).status_code == 200
    m = samples(client)
    assert value(m, "auditinf_requests_total", kind="risk", data_class="unknown", status="401") == 1
    assert value(m, "auditinf_requests_total", kind="explain", data_class="unknown", status="401") == 1
    assert value(m, "auditinf_requests_total", kind="gate", data_class="unknown", status="403") == 1
    assert value(m, "auditinf_requests_total", kind="job", data_class="unknown", status="401") == 1
    assert value(m, "auditinf_requests_total", kind="gate", data_class="public", status="200") == 1
    assert client.get("/v1/pubkey").status_code == 200  # transparency reads are not request kinds
    assert not any(name == "auditinf_requests_total" and dict(labels).get("kind") not in
                   ("risk", "explain", "gate", "job") for name, labels in samples(client))


def wait_job(client: TestClient, job_id: str, headers: dict) -> dict:
    deadline = time.monotonic() + 30
    while (state := client.get(f"/v1/jobs/{job_id}", headers=headers).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return state


def test_jobs_are_visible_only_to_their_client(client, auth_service):
    submitted = client.post("/v1/jobs", json={"kind": "risk", "request": tx()}, headers=bearer(TOKEN_A))
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    done = wait_job(client, job_id, bearer(TOKEN_A))
    assert done["status"] == "done" and done["result"]["risk_level"] == "high"
    other = client.get(f"/v1/jobs/{job_id}", headers=bearer(TOKEN_B))
    unknown = client.get("/v1/jobs/00000000-0000-4000-8000-000000000000", headers=bearer(TOKEN_B))
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json()  # no hint that the id exists
    (record,) = records(auth_service)
    assert (record["client_id"], record["client_auth"], record["request_id"]) == (
        "client-a", "token", submitted.headers["x-request-id"])


def test_revoked_and_added_clients_take_effect_on_the_next_request(client, auth_service, clients_file):
    assert client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A)).status_code == 200
    revoke_client(clients_file, "client-a")
    refused = client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_token"
    token_c = add_client(clients_file, "client-c")
    assert client.post("/v1/risk", json=tx(), headers=bearer(token_c)).status_code == 200
    assert [r["client_id"] for r in records(auth_service)] == ["client-a", "client-c"]


def test_a_broken_or_emptied_registry_keeps_the_one_in_force(client, clients_file, caplog):
    caplog.set_level(logging.ERROR, logger="auditinf.auth")
    clients_file.write_text('{"version": 1, "clients": {"client-a": {"sha256": "nothex"}}}')
    assert client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A)).status_code == 200
    assert client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_A)).status_code == 200
    assert [r.getMessage() for r in caplog.records].count(
        "client registry not reloaded; the previous one stays in force") == 1  # once per file state
    write_clients(clients_file, {})  # emptying the file does not turn authentication off
    assert client.post("/v1/risk", json=tx()).status_code == 401
    clients_file.unlink()  # nor does deleting it
    assert client.post("/v1/risk", json=tx()).status_code == 401
    assert client.post("/v1/risk", json=tx(), headers=bearer(TOKEN_B)).status_code == 200


def test_budget_refusal_names_the_client_id_not_the_token(make_service, clients_file, tmp_path):
    write_clients(clients_file, {"client-broke": TOKEN_B})
    service = make_service(settings={"clients_file": clients_file},
                           extra={"budgets": {"default_daily_usd": "100", "clients": {"client-broke": "0"}}})
    client = TestClient(create_app(service.settings, service))
    refused = client.post("/v1/explain", json=tx(), headers=bearer(TOKEN_B))
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "budget_exhausted"
    assert "'client-broke'" in refused.json()["error"]["message"] and TOKEN_B not in refused.text
    (record,) = records(service)
    assert record["kind"] == "refusal" and (record["client_id"], record["client_auth"]) == ("client-broke", "token")
    assert TOKEN_B not in json.dumps(record)


def test_gate_records_say_token(client, auth_service):
    response = client.post("/v1/gate", json=tx(), headers=bearer(TOKEN_A))
    assert response.status_code == 200
    assert {(r["kind"], r["client_auth"]) for r in records(auth_service)} == {("risk", "token"), ("gate", "token")}


# -- without a registry: self-declared, as before ------------------------------------------------

def test_without_registry_client_id_is_declared_and_warned(det_service, caplog):
    caplog.set_level(logging.WARNING, logger="auditinf.api.auth")
    client = TestClient(create_app(det_service.settings, det_service))
    assert any(r.getMessage().startswith("client authentication is off") for r in caplog.records)
    assert client.post("/v1/risk", json=tx(), headers={"X-Client-Id": "wallet-9", "Authorization": "Bearer x"}
                       ).status_code == 200  # a token is ignored
    assert client.post("/v1/risk", json=tx()).status_code == 200
    assert [(r["client_id"], r["client_auth"]) for r in records(det_service)] == [
        ("wallet-9", "declared"), ("anonymous", "declared")]
    ready = client.get("/readyz").json()
    assert ready["client_auth"] == "declared" and ready["warnings"][0].startswith("client authentication is off")
    assert client.post("/v1/risk", json=tx(), headers={"X-Client-Id": "bad id"}).status_code == 422


def test_registry_appearing_turns_authentication_on(make_service, tmp_path):
    path = tmp_path / "late" / "clients.json"
    service = make_service()
    client = TestClient(create_app(service.settings, service))
    client.app.state.clients = RegistryFile(path)  # the default path: absent → open
    assert client.post("/v1/risk", json=tx()).status_code == 200
    token = add_client(path, "wallet-1")
    assert client.post("/v1/risk", json=tx()).status_code == 401
    assert client.post("/v1/risk", json=tx(), headers=bearer(token)).status_code == 200
    assert [r["client_auth"] for r in records(service)] == ["declared", "token"]
