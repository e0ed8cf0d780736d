"""Ledger benchmark: durable appends with group commit, append latency, verify rates, Merkle cost.

Every figure is printed beside a baseline measured in the same process on the same records:

- durable appends/s (SQLite, PostgreSQL; N concurrent callers; several processes on one SQLite
  file) vs the raw crypto loop — RFC 8785 + SHA-256 + Ed25519 sign of the same records, one thread;
- append latency p50/p99 (ms), as seen by each caller;
- full verify (``verify_rows``: JCS check, links, leaf hashes, Ed25519 signatures), records/s
  on one core, vs the raw verify loop (RFC 8785 + SHA-256 + Ed25519 verify of the same bodies)
  and vs raw Ed25519 verify alone; also ledger-audit's ``audit`` over the live store;
- hash-only verify (``verify_against_checkpoint``: every body against one signed checkpoint)
  vs raw SHA-256 of the same bodies;
- Merkle root / inclusion proof / consistency proof from the stored-subtree tree vs the naive
  RFC 6962 recursion (``merkle.root``) at the same size, and the start-up tree rebuild rate.

Targets (issue 3, on a 2-core machine): ≥ 5,000 durable appends/s on SQLite; full verify ≥ 0.85 of
raw Ed25519 verify; hash-only verify ≥ 200,000 records/s. The machine is shared: compare ratios.

Usage: ``.venv/bin/python bench/ledger.py [--records 8000] [--callers 1,16,64,256] [--processes 2]
[--pg postgresql+psycopg://postgres@127.0.0.1:5432/test | --pg none]``
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import rfc8785  # noqa: E402
import sqlalchemy  # noqa: E402

from auditinf.ledger import Ledger, MerkleTree, generate_key, load_signer, merkle, verify_rows  # noqa: E402
from auditinf.ledger.bundle import DbSource  # noqa: E402
from auditinf.ledger.audit import audit  # noqa: E402
from auditinf.ledger.hashcheck import verify_against_checkpoint  # noqa: E402
from auditinf.ledger.note import NoteVerifier, open_checkpoint  # noqa: E402

ORIGIN = "bench.auditinf/ledger"


def record(i: int) -> dict:
    """A record shaped like the service's (about 1.1 KB canonical)."""
    return {
        "kind": "risk", "request_id": f"{i:08x}-0000-4000-8000-{i:012x}", "client_id": f"wallet-{i % 97}",
        "data_class": "public", "policy": {"id": "default", "version": "3", "sha256": "sha256:" + "ab" * 32},
        "input": {"commitment": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
                  "provenance": [{"input": "transaction", "source": "client"}],
                  "clear": {"transaction": {"chain_id": 1, "to": "0x" + f"{i:040x}", "value": str(2**200 + i),
                                            "data": "0x095ea7b3" + "00" * 64}}},
        "analysis": {"verdict": "warning", "risk_level": "high",
                     "findings": [{"code": "unlimited_approval", "severity": "high",
                                   "message": "Unlimited allowance granted to a spender ✓"}]},
        "model": {"backend": "deterministic", "name": "template"},
        "attempts": [{"backend": "deterministic", "duration_ms": i % 13, "outcome": "ok"}],
        "degraded": False, "output": {"explanation": {"summary": "Approves an unlimited allowance. " * 6}},
    }


def per_second(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def alternating_best_rates(subjects: dict[str, tuple[int, Callable[[], object]]], rounds: int = 5) -> dict[str, float]:
    """Records/s of each subject ``name: (n, fn)``: the best of ``rounds`` runs, the subjects taking
    turns within each round, so that a subject and its baseline see the same spells of load."""
    best = {name: float("inf") for name in subjects}
    for _ in range(rounds):
        for name, (_n, fn) in subjects.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return {name: per_second(subjects[name][0], best[name]) for name in subjects}


def line(label: str, value: float, unit: str, base_label: str, base: float) -> None:
    print(f"{label:34s} {value:11,.0f} {unit:6s} {base_label:34s} {base:11,.0f}/s   ratio {value / base:5.2f}")


# -- baselines ---------------------------------------------------------------------------------
def raw_sign_rate(signer, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        body = rfc8785.dumps({**record(i), "seq": i, "prev": "00" * 32, "kid": signer.kid, "ts": "2026-01-01T00:00:00+00:00",
                              "v": 1})
        hashlib.sha256(b"\x00" + body).digest()
        signer.sign(body)
    return per_second(n, time.perf_counter() - started)


# -- appends -----------------------------------------------------------------------------------
def run_callers(ledger: Ledger, callers: int, total: int, offset: int = 0) -> tuple[float, list[float]]:
    """``callers`` threads append ``total`` records; returns (appends/s, latencies in ms)."""
    latencies: list[list[float]] = [[] for _ in range(callers)]
    contents = [record(offset + i) for i in range(total)]
    start = threading.Barrier(callers + 1)

    def caller(k: int) -> None:
        start.wait()
        out = latencies[k]
        for i in range(k, total, callers):
            t = time.perf_counter()
            ledger.append(contents[i])
            out.append((time.perf_counter() - t) * 1000)

    pool = [threading.Thread(target=caller, args=(k,)) for k in range(callers)]
    for t in pool:
        t.start()
    start.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    return per_second(total, elapsed), [x for out in latencies for x in out]


def report_appends(label: str, rate: float, latencies: list[float], raw: float) -> None:
    cuts = statistics.quantiles(latencies, n=100)
    line(label, rate, "rec/s", "raw JCS+SHA-256+sign loop", raw)
    print(f"{'':34s} append latency p50 {cuts[49]:7.2f} ms  p99 {cuts[98]:7.2f} ms")


def _child(url: str, key: str, callers: int, total: int, offset: int, barrier, out) -> None:  # noqa: ANN001
    ledger = Ledger(url, load_signer(Path(key), ORIGIN))
    ledger.append(record(offset))  # open the writer before the clock starts
    barrier.wait()
    rate, _ = run_callers(ledger, callers, total, offset + 1)
    ledger.close()
    out.put(rate)


def multi_process(url: str, key: Path, processes: int, callers: int, total: int) -> float:
    """``processes`` forked writers, ``callers`` threads each, on one store; aggregate appends/s."""
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(processes + 1), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(url, str(key), callers, total, p * 10**6, barrier, out))
             for p in range(processes)]
    for p in procs:
        p.start()
    barrier.wait()
    started = time.perf_counter()
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    return per_second(processes * total, elapsed)


# -- verify ------------------------------------------------------------------------------------
def bench_verify(ledger: Ledger, signer) -> None:
    """Each rate is the best of five runs, baselines and subjects taking turns."""
    rows = list(ledger.rows())
    n = len(rows)
    trusted = {signer.kid: signer.verifier}
    bodies = [bytes(r.body) for r in rows]
    signatures = [base64.b64decode(r.signature) for r in rows]
    public = signer.verifier.public_key

    def raw_loop() -> None:
        for body, sig in zip(bodies, signatures):
            rfc8785.dumps(json.loads(body))
            hashlib.sha256(b"\x00" + body).digest()
            public.verify(sig, body)

    def raw_ed() -> None:
        for body, sig in zip(bodies, signatures):
            public.verify(sig, body)

    def audited() -> None:
        assert audit(DbSource(ledger), trusted, ORIGIN).ok

    note = ledger.checkpoint_now().note
    checkpoint, _ = open_checkpoint(note.encode(), ORIGIN, [NoteVerifier.from_log_key(signer.verifier)])

    def raw_sha() -> None:
        for body in bodies:
            hashlib.sha256(b"\x00" + body).digest()

    rates = alternating_best_rates({
        "full": (n, lambda: verify_rows(rows, trusted)),
        "loop": (n, raw_loop),
        "ed": (n, raw_ed),
        "audit": (n, audited),
        "hash_only": (checkpoint.size, lambda: verify_against_checkpoint(ledger.leaf_rows(), checkpoint)),
        "sha": (n, raw_sha),
    })
    line("full verify (verify_rows), 1 core", rates["full"], "rec/s", "raw JCS+SHA-256+verify loop", rates["loop"])
    line("", rates["full"], "rec/s", "raw Ed25519 verify alone", rates["ed"])
    line("full audit (read + rows + checkpoints)", rates["audit"], "rec/s", "raw Ed25519 verify alone", rates["ed"])
    line("hash-only verify (read + check)", rates["hash_only"], "rec/s", "raw SHA-256 of the bodies", rates["sha"])


# -- Merkle ------------------------------------------------------------------------------------
def bench_merkle(size: int) -> None:
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size)]
    started = time.perf_counter()
    tree = MerkleTree(leaves)
    rebuild = per_second(size, time.perf_counter() - started)
    started = time.perf_counter()
    naive_root = merkle.root(leaves)
    naive = time.perf_counter() - started
    calls = 2000
    started = time.perf_counter()
    for k in range(calls):
        tree.root(size - k % (size // 2))
    root_t = (time.perf_counter() - started) / calls
    started = time.perf_counter()
    for k in range(calls):
        tree.inclusion_proof((k * 7919) % size, size)
    incl_t = (time.perf_counter() - started) / calls
    started = time.perf_counter()
    for k in range(calls):
        tree.consistency_proof(1 + (k * 104729) % (size - 1), size)
    cons_t = (time.perf_counter() - started) / calls
    assert tree.root() == naive_root
    print(f"Merkle at {size:,} leaves: root {root_t * 1e6:6.1f} µs, inclusion proof {incl_t * 1e6:6.1f} µs, "
          f"consistency proof {cons_t * 1e6:6.1f} µs;  naive merkle.root {naive * 1e3:8.1f} ms  "
          f"(ratio naive/stored root {naive / root_t:,.0f}x); start-up rebuild {rebuild:,.0f} leaves/s")


def pg_schema_url(base: str) -> tuple[str, Callable[[], None]] | None:
    schema = f"auditinf_bench_{os.urandom(4).hex()}"
    try:
        engine = sqlalchemy.create_engine(base)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    except sqlalchemy.exc.OperationalError as exc:
        print(f"PostgreSQL skipped: not reachable ({type(exc).__name__})")
        return None

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()

    return f"{base}?options=-csearch_path%3D{schema}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=8000, help="appends per concurrent run")
    parser.add_argument("--callers", default="1,16,64,256", help="concurrent caller threads, comma-separated")
    parser.add_argument("--processes", type=int, default=2, help="writer processes on one SQLite file")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL base URL, or 'none'")
    parser.add_argument("--merkle-size", type=int, default=1 << 20)
    args = parser.parse_args()
    callers = [int(c) for c in args.callers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "keys" / "signing.key"
        signer = generate_key(key, ORIGIN)
        raw = raw_sign_rate(signer, 2000)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
              f"raw JCS+SHA-256+sign loop {raw:,.0f} rec/s (1 thread)\n")
        biggest = None
        for n in callers:
            total = min(args.records, 300) if n == 1 else args.records
            ledger = Ledger(f"sqlite:///{tmp}/sqlite-{n}.db", signer)
            raw = raw_sign_rate(signer, 1000)  # re-measured beside each run: the load moves
            rate, lat = run_callers(ledger, n, total)
            report_appends(f"SQLite appends, {n} callers", rate, lat, raw)
            if biggest is not None:
                biggest.close()
            biggest = ledger
        if args.processes > 1:
            url = f"sqlite:///{tmp}/multi.db"
            Ledger(url, signer).close()
            raw = raw_sign_rate(signer, 1000)
            rate = multi_process(url, key, args.processes, max(callers), args.records // args.processes)
            line(f"SQLite, {args.processes} processes x {max(callers)} callers", rate, "rec/s",
                 "raw JCS+SHA-256+sign loop", raw)
        if args.pg != "none":
            made = pg_schema_url(args.pg)
            if made:
                url, drop = made
                try:
                    for n in (64, max(callers)):
                        ledger = Ledger(url, signer)
                        raw = raw_sign_rate(signer, 1000)
                        rate, lat = run_callers(ledger, n, args.records, offset=n * 10**6)
                        report_appends(f"PostgreSQL appends, {n} callers", rate, lat, raw)
                        ledger.close()
                finally:
                    drop()
        print()
        bench_verify(biggest, signer)
        biggest.close()
        print()
        bench_merkle(args.merkle_size)


if __name__ == "__main__":
    main()
