"""Analysis benchmark: decode + nested decoding + rules, per core, against raw eth-abi decoding.

Figures, each beside its baseline measured in the same process on the same calldata:
- throughput (tx/s on one core) of ``analyse_call`` + ``evaluate`` over the mix of every sample
  transaction in ``abi_samples/transactions`` (batches, Safe MultiSend, a six-command Universal
  Router plan, approvals, swaps, transfers, native sends) vs ``eth_abi.decode`` of each one's
  top-level arguments with the types already known (no matching, no nesting, no rules);
- latency percentiles (p50 / p99, ms) for the six-command Universal Router transaction vs raw
  decoding of its ``execute`` arguments plus each command input with known types.

Targets (issue 5): ≥ 2,000 tx/s per core; p99 < 10 ms for a ≥ 5-command router transaction.
Usage: ``.venv/bin/python bench/analysis.py [--seconds 3]``. Single process, single thread: the
figures are per core. Run on an otherwise idle machine for stable numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import eth_abi  # noqa: E402
from eth_utils.abi import collapse_if_tuple  # noqa: E402

from auditinf.evm import analyse_call, default_registry, parse_transaction  # noqa: E402
from auditinf.evm.nested.universal_router import router_table  # noqa: E402
from auditinf.risk import RuleContext, evaluate  # noqa: E402

ROUTER_SAMPLE = "universal_router_six_commands.json"


def throughput(fn, items: list, seconds: float) -> float:
    """Calls per second of ``fn`` cycling over ``items`` for about ``seconds``."""
    done, started = 0, time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for item in items:
            fn(item)
        done += len(items)
    return done / (time.perf_counter() - started)


def latencies(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return sorted(out)


def pct(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each throughput run")
    parser.add_argument("--runs", type=int, default=3000, help="latency samples for the router transaction")
    args = parser.parse_args()
    reg = default_registry()
    files = sorted((ROOT / "abi_samples/transactions").glob("*.json"))
    txs = {p.name: parse_transaction(json.loads(p.read_text())) for p in files}
    mix = list(txs.values())

    def full(tx) -> None:
        evaluate(RuleContext(tx=tx, call=analyse_call(tx, reg), registry=reg))

    raw_items = []
    for tx in mix:  # the types the full path finds, given to eth-abi up front
        call = analyse_call(tx, reg)
        if call.decoded is not None:
            raw_items.append((list(call.decoded.types.values()), tx.data[4:]))
    for _ in range(200):  # warm caches (ABI parsing, selector table) before timing
        for tx in mix:
            full(tx)

    tps = throughput(full, mix, args.seconds)
    raw_tps = throughput(lambda item: eth_abi.decode(item[0], item[1]), raw_items, args.seconds)
    print(f"mix of {len(mix)} sample transactions ({len(raw_items)} with calldata an ABI decodes)")
    print(f"  decode + nested + rules : {tps:10,.0f} tx/s per core   (target >= 2,000)")
    print(f"  raw eth_abi.decode      : {raw_tps:10,.0f} tx/s per core   (known types, top level only)")
    print(f"  ratio full / raw        : {tps / raw_tps:10.3f}")

    router = txs[ROUTER_SAMPLE]
    call = analyse_call(router, reg)
    _, table, _ = router_table(router.chain_id, router.to)
    inner_types = [[collapse_if_tuple(p) for p in table[cmd.byte & 0x3F][1]] for cmd in call.commands]
    inputs = [bytes.fromhex(x[2:]) for x in call.decoded.values[1]]

    def raw_router() -> None:
        eth_abi.decode(["bytes", "bytes[]", "uint256"], router.data[4:])
        for types, data in zip(inner_types, inputs):
            eth_abi.decode(types, data)

    full_ms = latencies(lambda: full(router), args.runs)
    raw_ms = latencies(raw_router, args.runs)
    print(f"Universal Router transaction with {len(call.commands)} commands "
          f"({sum(1 for c in call.commands for _ in c.walk())} with its sub-plan), {args.runs} runs")
    print(f"  decode + nested + rules : p50 {pct(full_ms, .5):6.3f} ms   p99 {pct(full_ms, .99):6.3f} ms   "
          f"(target p99 < 10 ms)")
    print(f"  raw eth_abi.decode      : p50 {pct(raw_ms, .5):6.3f} ms   p99 {pct(raw_ms, .99):6.3f} ms   "
          "(execute args + each command input, known types)")
    print(f"  ratio full / raw (p50)  : {pct(full_ms, .5) / pct(raw_ms, .5):10.2f}   "
          f"mean full {statistics.fmean(full_ms):.3f} ms")


if __name__ == "__main__":
    main()
