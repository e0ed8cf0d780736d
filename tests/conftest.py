"""Shared fixtures: clean environment, fresh keys and ledgers, services with chosen policies."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest

from auditinf.config import Settings
from auditinf.evm import default_registry
from auditinf.ledger import Ledger, generate_key
from auditinf.policy import load_policy
from auditinf.service import Service

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AUDITINF_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AUDITINF_") and name != "AUDITINF_ABI_SAMPLES":
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def signer(tmp_path: Path):
    return generate_key(tmp_path / "keys" / "signing.key", "test.auditinf/ledger")


@pytest.fixture
def ledger(tmp_path: Path, signer) -> Ledger:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", signer)
    yield led
    led.close()


def write_policy(path: Path, *, public: list[str], private: list[str], hosted: dict | None = None,
                 local: dict | None = None, retries: dict | None = None, extra: dict | None = None) -> Path:
    """A policy file with the same route for every request kind; ``extra`` adds or replaces
    top-level sections (``circuit_breaker``, ``budgets``, ``gate``; ``models`` entries merge)."""
    doc = {
        "id": "test", "version": "1",
        "models": {
            "hosted-a": {"backend": "hosted", "timeout_s": 2.0, "max_tokens": 128, **(hosted or {})},
            "local-gguf": {"backend": "local", "timeout_s": 60, "max_tokens": 160, **(local or {})},
            "deterministic": {"backend": "deterministic"},
        },
        "routes": {k: {"public": public, "private": private} for k in ("explain", "risk", "methods")},
        "retries": retries or {"max_attempts": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                               "retry_on": [500, 503, "timeout", "connection"], "deadline_s": 60},
        "classification": {"private_clients": [], "private_addresses": []},
    }
    for key, value in (extra or {}).items():
        doc[key] = {**doc["models"], **value} if key == "models" else value
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def make_service(tmp_path: Path, ledger: Ledger):
    """Build a Service over the test ledger with a policy written for the test."""

    def make(*, public=("deterministic",), private=("deterministic",), hosted_url=None, hosted=None, local=None,
             retries=None, chain=None, api_key=None, extra=None, settings: dict | None = None) -> Service:
        policy_file = write_policy(tmp_path / f"policy-{os.urandom(3).hex()}.json", public=list(public),
                                   private=list(private), hosted=hosted, local=local, retries=retries, extra=extra)
        settings = Settings(ledger_url=ledger.url, key_file=tmp_path / "keys" / "signing.key", policy=policy_file,
                            hosted_base_url=hosted_url, hosted_model="fault-model" if hosted_url else None,
                            hosted_api_key=api_key, **(settings or {}))
        return Service(settings, ledger, policy=load_policy(policy_file), registry=default_registry(), chain=chain)

    return make


@pytest.fixture
def fake_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``install(**kw) -> FakeLlamaFactory``: the local worker loads a fake model (see
    tests/fakes/fake_llama.py); route a policy model to it with ``local={"path": str(factory.path)}``.
    Workers are stopped (and held gates released) after the test."""
    from auditinf.inference import local

    from .fakes.fake_llama import FakeLlamaFactory

    gguf = tmp_path / "fake-model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00 fake")
    factories: list[FakeLlamaFactory] = []

    def install(**kw) -> FakeLlamaFactory:
        factory = FakeLlamaFactory(**kw)
        factory.path = gguf
        factories.append(factory)
        monkeypatch.setattr(local, "load_llama", factory)
        return factory

    yield install
    for factory in factories:
        factory.release_load()
        factory.release_generation()
    local.shutdown_workers()


@pytest.fixture
def det_service(make_service) -> Service:
    """Service whose every route is the deterministic backend (no model)."""
    return make_service()


def load_cases() -> dict[str, dict]:
    """Cases from tests/vectors/shared_cases, overridden by ../shared/cases when present."""
    cases: dict[str, dict] = {}
    for folder in (VECTORS / "shared_cases", ROOT.parent / "shared" / "cases"):
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                case = json.loads(path.read_text())
                cases[case["id"]] = case
    return cases


def write_clients(path: Path, tokens: dict[str, str], revoked: tuple[str, ...] = ()) -> Path:
    """A client registry file (mode 0600) for ``{client id: token}``, each token's SHA-256
    computed here with hashlib; ids in ``revoked`` are marked revoked."""
    clients = {cid: {"sha256": hashlib.sha256(token.encode()).hexdigest(), "created_at": "2026-11-30T00:00:00Z",
                     **({"revoked_at": "2026-11-30T01:00:00Z"} if cid in revoked else {})}
               for cid, token in tokens.items()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"version": 1, "clients": clients}, f)
    return path


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


PG_BASE = os.environ.get("AUDITINF_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_url():
    """A fresh schema in the local PostgreSQL `test` database (skips when PostgreSQL is absent)."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    schema = f"auditinf_test_{os.urandom(4).hex()}"
    try:
        engine = sqlalchemy.create_engine(PG_BASE)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_BASE}: {type(exc).__name__}")
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()
