"""Vertical-slice benchmark: analysis throughput, ledger rates, /v1/risk latency.

Every figure is printed beside a baseline measured in the same process on the same inputs:
- decode + rules vs raw ``eth_abi.decode`` of the same calldata with known types;
- durable ledger appends vs the raw crypto loop (RFC 8785 + SHA-256 + Ed25519 sign) on the same content;
- full verify vs the raw Ed25519-verify loop on the same bodies;
- /v1/risk p50 through HTTP (bearer-token authenticated; deterministic backend, then the local SmolLM2 model) vs the same
  request answered by calling the service directly.

Usage: ``.venv/bin/python bench/slice.py [--local-runs 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eth_abi  # noqa: E402
import rfc8785  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from auditinf.api import create_app  # noqa: E402
from auditinf.auth.registry import add_client  # noqa: E402
from auditinf.config import Settings  # noqa: E402
from auditinf.evm import analyse_call, default_registry, parse_transaction  # noqa: E402
from auditinf.ledger import Ledger, generate_key, leaf_hash, load_signer, verify_rows  # noqa: E402
from auditinf.policy import load_policy  # noqa: E402
from auditinf.risk import RuleContext, evaluate  # noqa: E402
from auditinf.service import Service  # noqa: E402


def rate(fn, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - started)


def bench_analysis() -> None:
    reg = default_registry()
    samples = [json.loads(p.read_text()) for p in sorted((ROOT / "abi_samples/transactions").glob("*.json"))]
    txs = [parse_transaction(s) for s in samples]
    known = []
    for tx in txs:
        call = analyse_call(tx, reg)
        if call.decoded:
            known.append((list(call.decoded.types.values()), tx.data[4:]))

    def full(i: int) -> None:
        tx = txs[i % len(txs)]
        evaluate(RuleContext(tx=tx, call=analyse_call(tx, reg), registry=reg))

    def raw(i: int) -> None:
        types, data = known[i % len(known)]
        eth_abi.decode(types, data)

    n = 3000
    ours, base = rate(full, n), rate(raw, n)
    print(f"decode+rules      {ours:10.0f} tx/s   raw eth_abi.decode {base:10.0f}/s   ratio {ours / base:.2f}")


def bench_ledger(tmp: Path) -> None:
    signer = generate_key(tmp / "k" / "s.key", "bench.auditinf/ledger")
    content = {"kind": "risk", "findings": [{"code": "unlimited_approval", "severity": "high",
                                             "message": "x" * 300}], "amount": str(2**256 - 1), "pad": "y" * 1200}
    ledger = Ledger(f"sqlite:///{tmp / 'bench.db'}", signer)
    n = 500
    appends = rate(lambda i: ledger.append(dict(content, i=i)), n)
    bodies: list[bytes] = []

    def raw_sign(i: int) -> None:
        body = rfc8785.dumps(dict(content, i=i, seq=i, prev="00" * 32))
        leaf_hash(body)
        signer.sign(body)
        bodies.append(body)

    raw = rate(raw_sign, n)
    print(f"durable append    {appends:10.0f} rec/s  raw JCS+SHA256+sign {raw:8.0f}/s   ratio {appends / raw:.3f}"
          "  (one fsync per record; group commit is issue 3)")
    rows = list(ledger.rows())
    started = time.perf_counter()
    verify_rows(rows, {signer.kid: signer.verifier})
    full = len(rows) / (time.perf_counter() - started)
    sigs = [signer.sign(b) for b in bodies]
    raw_verify = rate(lambda i: signer.verifier.verify(sigs[i], bodies[i]), len(bodies))
    print(f"full verify       {full:10.0f} rec/s  raw Ed25519 verify {raw_verify:9.0f}/s   ratio {full / raw_verify:.2f}")
    ledger.close()


def p50(fn, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_latency(tmp: Path, local_runs: int) -> None:
    generate_key(tmp / "keys" / "signing.key", "bench.auditinf/ledger")
    body = json.loads((ROOT / "abi_samples/transactions/erc20_approve_unlimited.json").read_text())
    headers = {"Authorization": f"Bearer {add_client(tmp / 'clients.json', 'bench')}"}  # authenticated, as served
    for label, policy_file, runs in (("deterministic", ROOT / "tests/vectors/deterministic-policy.yaml", 50),
                                     ("local SmolLM2", ROOT / "policies/strict-local.yaml", local_runs)):
        settings = Settings(ledger_url=f"sqlite:///{tmp / (label[:3] + '.db')}", key_file=tmp / "keys" / "signing.key",
                            policy=policy_file, clients_file=tmp / "clients.json")
        service = Service(settings, Ledger(settings.ledger_url, load_signer(settings.key_file, settings.origin)),
                          policy=load_policy(policy_file))
        client = TestClient(create_app(settings, service))
        client.post("/v1/risk", json=body, headers=headers).raise_for_status()  # warm-up (loads the model)
        http = p50(lambda: client.post("/v1/risk", json=body, headers=headers), runs)
        direct = p50(lambda: service.risk(body), runs)
        print(f"/v1/risk p50 {label:14s} {http:8.1f} ms   direct service call {direct:8.1f} ms   ratio {http / direct:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_analysis()
        bench_ledger(Path(tmp))
        bench_latency(Path(tmp), args.local_runs)


if __name__ == "__main__":
    main()
