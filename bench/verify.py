"""Benchmark: offline verification rates next to same-run baselines of the raw crypto loops.

Run: ``PYTHONPATH=. .venv/bin/python bench/verify.py [--records N]``. It writes N realistic records
(about 1.3 KB each: findings, decoded call, attempts with float durations, explanation) to a
temporary SQLite ledger, loads the rows once, then times on one core:

- raw Ed25519 verify of each body (the floor every full verify pays);
- the raw loop RFC 8785 re-canonicalisation (``rfc8785``) + SHA-256 + Ed25519 verify;
- ``verify_rows`` (full verify: JCS check, links, leaf hashes, signatures, key state);
- raw SHA-256 of each body, and ``HashChainVerifier`` (hash-only: seq, links, leaf hashes).

Each rate is the best of ``--repeat`` runs; ratios are against the baseline of the same run.
Targets (issue 3): full verify ≥ 0.85 × raw Ed25519 verify; hash-only ≥ 200,000 records/s.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rfc8785  # noqa: E402

from auditinf.ledger import Ledger, generate_key  # noqa: E402
from auditinf.ledger.bundle import BundleRow  # noqa: E402
from auditinf.ledger.verify import HashChainVerifier, verify_rows  # noqa: E402

CONTENT = {
    "kind": "risk", "client_id": "wallet-1", "data_class": "public",
    "analysis": {"verdict": "warning", "risk_level": "high",
                 "findings": [{"code": "unlimited_approval", "severity": "high",
                               "message": "Unlimited allowance to an unknown spender " + "x" * 40}] * 3,
                 "decoded": {"method": "approve", "args": {"spender": "0x" + "22" * 20, "value": str(2**256 - 1)}}},
    "attempts": [{"backend": "local", "duration_ms": 2875.1, "outcome": "error", "error_type": "malformed_text"},
                 {"backend": "deterministic", "duration_ms": 0.4, "outcome": "success"}],
    "output": {"explanation": {"summary": "Approves an unknown spender to move every USDC token. " * 5}},
}


def best(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` runs of ``fn`` (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        signer = generate_key(Path(tmp) / "k.key", "bench.auditinf/ledger")
        ledger = Ledger(f"sqlite:///{tmp}/l.db", signer)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: ledger.append({**CONTENT, "i": i}), range(n)))
        rows = [BundleRow(r.seq, r.leaf_hash, bytes(r.body), r.signature, r.kid) for r in ledger.rows()]
        ledger.close()
    key, trusted = signer.verifier.public_key, {signer.kid: signer.verifier}
    sigs = [base64.b64decode(r.signature) for r in rows]

    def raw_verify() -> None:
        for r, s in zip(rows, sigs):
            key.verify(s, r.body)

    def raw_loop() -> None:
        for r, s in zip(rows, sigs):
            assert rfc8785.dumps(json.loads(r.body)) == r.body
            hashlib.sha256(b"\x00" + r.body).digest()
            key.verify(s, r.body)

    def raw_sha() -> None:
        for r in rows:
            hashlib.sha256(b"\x00" + r.body).digest()

    def hash_only() -> None:
        chain = HashChainVerifier(trusted)
        for r in rows:
            chain.feed(r)

    rates = {name: n / best(fn, args.repeat) for name, fn in (
        ("raw Ed25519 verify", raw_verify), ("raw RFC 8785 + SHA-256 + Ed25519", raw_loop),
        ("full verify (verify_rows)", lambda: verify_rows(rows, trusted)),
        ("raw SHA-256", raw_sha), ("hash-only verify", hash_only))}
    print(f"{n} records, {sum(len(r.body) for r in rows) / n:.0f} bytes/body, best of {args.repeat}, one core")
    for name, rate in rates.items():
        print(f"  {name:34s} {rate:12,.0f} rec/s")
    full, hashed = rates["full verify (verify_rows)"], rates["hash-only verify"]
    print(f"  full / raw Ed25519 verify          {full / rates['raw Ed25519 verify']:12.2f}   (target >= 0.85)")
    print(f"  full / raw RFC 8785+SHA+Ed25519    {full / rates['raw RFC 8785 + SHA-256 + Ed25519']:12.2f}")
    print(f"  hash-only / raw SHA-256            {hashed / rates['raw SHA-256']:12.2f}   "
          f"(hash-only target >= 200,000 rec/s: {'met' if hashed >= 200_000 else 'NOT met'})")


if __name__ == "__main__":
    main()
