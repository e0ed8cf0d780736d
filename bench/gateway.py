"""Gateway overhead: auditinf (analysis + signed record) vs LiteLLM's proxy, in front of one mock.

The same mock OpenAI-compatible upstream (bench/mock_upstream.py, fixed latency, default 20 ms)
is called three ways, at 1, 8 and 32 concurrent clients:

- **direct** — the mock itself (the baseline every added latency is measured against);
- **auditinf** — ``POST /v1/explain`` on a real ``auditinf serve`` (uvicorn): client
  authentication (a bearer token from its own client registry), decode, rules, the hosted model
  call, the ledger append (signed, committed) before the answer;
- **litellm** — ``POST /v1/chat/completions`` on LiteLLM's proxy (authenticated by its master
  key), with the exact request body auditinf sent upstream.

Added latency = p50 (p99) through the gateway − p50 (p99) direct at the same concurrency. The
table gives both gateways and the ratio auditinf / LiteLLM (target: p50 ratio ≤ 0.5, record
included), plus throughput (requests/s).

LiteLLM runs from its own venv outside the repository (never a compromised 1.82.7/1.82.8/1.107.x)::

    python3.11 -m venv /work/litellm-venv
    /work/litellm-venv/bin/pip install 'litellm[proxy]==1.108.7'

Usage: ``.venv/bin/python bench/gateway.py [--litellm /work/litellm-venv/bin/litellm]
[--latency-ms 20] [--requests 200] [--concurrency 1 8 32]``. Without ``--litellm`` (or when the
binary is missing) only direct and auditinf are measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TX = {"chain_id": 1, "from": "0x1111111111111111111111111111111111111111",
      "to": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "value": "0",
      "data": "0x095ea7b30000000000000000000000002222222222222222222222222222222222222222"
              "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"}
MASTER_KEY = "sk-bench-master-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout_s: float = 120.0, headers: dict | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout_s} s")


def start(cmd: list[str], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = log.open("wb") if log else subprocess.DEVNULL
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


async def load(url: str, body: dict, headers: dict, concurrency: int, total: int) -> tuple[list[float], float]:
    """``total`` POSTs from ``concurrency`` clients; returns latencies (s) and wall time (s)."""
    latencies: list[float] = []
    remaining = total
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post(url, json=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def client_headers(env: dict, client_id: str = "bench") -> dict:
    """Register ``client_id`` in ``env``'s ``AUDITINF_CLIENTS_FILE`` (``auditinf clients add``)
    and return the ``Authorization: Bearer`` header carrying its token."""
    added = subprocess.run([PY, "-m", "auditinf.cli", "clients", "add", client_id], env={**os.environ, **env},
                           check=True, capture_output=True, text=True)
    return {"Authorization": f"Bearer {added.stdout.strip()}"}


def auditinf_env(tmp: Path, mock_url: str) -> dict:
    policy = tmp / "policy.json"
    policy.write_text(json.dumps({
        "id": "bench", "version": "1",
        "models": {"hosted-a": {"backend": "hosted", "timeout_s": 10, "max_tokens": 128},
                   "deterministic": {"backend": "deterministic"}},
        "routes": {k: {"public": ["hosted-a", "deterministic"], "private": ["deterministic"]}
                   for k in ("explain", "risk", "methods")},
        "retries": {"max_attempts": 1, "retry_on": [], "deadline_s": 30},
        "classification": {"private_clients": [], "private_addresses": []},
    }))
    return {"AUDITINF_LEDGER_URL": f"sqlite:///{tmp / 'ledger.db'}", "AUDITINF_KEY_FILE": str(tmp / "keys/signing.key"),
            "AUDITINF_POLICY": str(policy), "AUDITINF_HOSTED_BASE_URL": mock_url,
            "AUDITINF_HOSTED_MODEL": "mock-model", "AUDITINF_HOSTED_API_KEY": "sk-bench-upstream",
            "AUDITINF_LOG_LEVEL": "WARNING", "AUDITINF_WARM_LOCAL_MODELS": "false",
            "AUDITINF_CLIENTS_FILE": str(tmp / "clients.json"), "PYTHONPATH": str(ROOT)}


def litellm_config(tmp: Path, mock_url: str) -> Path:
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: mock-model\n"
        "    litellm_params:\n"
        "      model: openai/mock-model\n"
        f"      api_base: {mock_url}\n"
        "      api_key: sk-bench-upstream\n"
        "general_settings:\n"
        f"  master_key: {MASTER_KEY}\n"
        "litellm_settings:\n"
        "  drop_params: true\n")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litellm", type=Path, default=Path("/work/litellm-venv/bin/litellm"),
                        help="LiteLLM proxy binary (its own venv; see the module docstring)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=200, help="requests per run (×concurrency/8 at c>8)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        try:
            mock_port, api_port = free_port(), free_port()
            mock_url = f"http://127.0.0.1:{mock_port}/v1"
            procs.append(start([PY, str(ROOT / "bench/mock_upstream.py"), "--port", str(mock_port),
                                "--latency-ms", str(args.latency_ms)]))
            wait_ready(f"{mock_url}/models")
            env = auditinf_env(tmp, mock_url)
            subprocess.run([PY, "-m", "auditinf.cli", "keygen"], env={**os.environ, **env}, check=True,
                           capture_output=True)
            token = client_headers(env)
            procs.append(start([PY, "-m", "auditinf.cli", "serve", "--port", str(api_port)], env=env,
                               log=tmp / "auditinf.log"))
            wait_ready(f"http://127.0.0.1:{api_port}/readyz")
            targets = {"auditinf": (f"http://127.0.0.1:{api_port}/v1/explain", TX, token)}
            asyncio.run(load(targets["auditinf"][0], TX, token, 1, 20))  # warm-up; the mock keeps the last body
            upstream_body = httpx.get(f"http://127.0.0.1:{mock_port}/last_request").json()
            targets["direct"] = (f"{mock_url}/chat/completions", upstream_body, {})
            if args.litellm.is_file():
                lite_port = free_port()
                procs.append(start([str(args.litellm), "--config", str(litellm_config(tmp, mock_url)),
                                    "--port", str(lite_port), "--host", "127.0.0.1", "--num_workers", "1"],
                                   env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
                                   log=tmp / "litellm.log"))
                auth = {"Authorization": f"Bearer {MASTER_KEY}"}
                wait_ready(f"http://127.0.0.1:{lite_port}/health/liveliness", timeout_s=240)
                targets["litellm"] = (f"http://127.0.0.1:{lite_port}/v1/chat/completions", upstream_body, auth)
                asyncio.run(load(targets["litellm"][0], upstream_body, auth, 1, 20))  # warm-up
            else:
                print(f"LiteLLM binary {args.litellm} not found: measuring direct and auditinf only", file=sys.stderr)
            results: dict[tuple[str, int], dict] = {}
            for c in args.concurrency:
                total = max(args.requests, args.requests * c // 8)
                for name, (url, body, headers) in targets.items():
                    lat, wall = asyncio.run(load(url, body, headers, c, total))
                    results[name, c] = {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "rps": len(lat) / wall}
            report(results, args.concurrency, "litellm" in targets)
        finally:
            for proc in reversed(procs):
                stop(proc)


def report(results: dict, levels: list[int], with_litellm: bool) -> None:
    print(f"{'c':>3} {'target':<9} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10} {'req/s':>8}")
    for c in levels:
        base = results["direct", c]
        for name in ("direct", "auditinf", "litellm"):
            if (name, c) not in results:
                continue
            r = results[name, c]
            print(f"{c:>3} {name:<9} {r['p50'] * 1e3:8.1f} {r['p99'] * 1e3:8.1f} "
                  f"{(r['p50'] - base['p50']) * 1e3:10.1f} {(r['p99'] - base['p99']) * 1e3:10.1f} {r['rps']:8.1f}")
        if with_litellm:
            a, lt = results["auditinf", c], results["litellm", c]
            def ratio(key: str) -> str:
                mine, theirs = a[key] - base[key], lt[key] - base[key]
                return f"{mine / theirs:.2f}×" if theirs > 0 and mine >= 0 else "n/a (baseline noise)"

            print(f"{c:>3} ratio auditinf/litellm: added p50 {ratio('p50')}, added p99 {ratio('p99')}, "
                  f"throughput {a['rps'] / lt['rps']:.2f}×")


if __name__ == "__main__":
    main()
