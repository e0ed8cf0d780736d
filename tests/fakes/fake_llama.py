"""A stand-in for ``llama_cpp.Llama`` behind the local worker, for tests that need control of
load time, generation time and output (the real GGUF runs in tests/test_models_real.py).

``FakeLlamaFactory`` is the loader the worker calls (``loader(path, n_ctx, n_threads)``): it can
hold the load until ``release_load()`` (or fail it), and every model it makes streams ``text`` in
``chunks`` pieces, optionally waiting for ``release_generation()`` first, counting calls.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

GOOD_LOCAL_ANSWER = {
    "summary": "Approves an unlimited USDC allowance for the spender, who can then move the tokens.",
    "key_points": ["approve gives the spender an unlimited allowance"],
    "risk_notes": ["an unlimited approval can drain the token balance"],
}


class FakeLlama:
    def __init__(self, factory: "FakeLlamaFactory") -> None:
        self.factory = factory
        self.n_tokens = 0
        self.closed = False

    def create_chat_completion(self, *, messages: list[dict], stream: bool, **params: Any) -> Iterator[dict]:
        factory = self.factory
        with factory.lock:
            factory.calls.append({"messages": messages, "params": params})
        factory.generation_started.set()
        if not factory.generation_gate.wait(timeout=30):
            raise RuntimeError("test never released generation")
        text = factory.text
        size = max(1, len(text) // factory.chunks)
        pieces = [text[i:i + size] for i in range(0, len(text), size)]
        self.n_tokens = 50 + len(pieces)

        def chunks() -> Iterator[dict]:
            for piece in pieces:
                if factory.chunk_delay_s:
                    time.sleep(factory.chunk_delay_s)
                yield {"choices": [{"delta": {"content": piece}, "finish_reason": None}]}
            yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}

        return _Closable(chunks())

    def close(self) -> None:
        self.closed = True


class _Closable:
    def __init__(self, it: Iterator[dict]) -> None:
        self._it = it

    def __iter__(self) -> Iterator[dict]:
        return self._it

    def close(self) -> None:
        self._it.close()


class FakeLlamaFactory:
    def __init__(self, answer: dict | str = GOOD_LOCAL_ANSWER, *, chunks: int = 8, hold_load: bool = False,
                 fail_load: bool = False, hold_generation: bool = False, chunk_delay_s: float = 0.0) -> None:
        self.text = answer if isinstance(answer, str) else json.dumps(answer)
        self.chunks = chunks
        self.chunk_delay_s = chunk_delay_s
        self.fail_load = fail_load
        self.load_gate = threading.Event()
        self.generation_gate = threading.Event()
        self.generation_started = threading.Event()
        if not hold_load:
            self.load_gate.set()
        if not hold_generation:
            self.generation_gate.set()
        self.lock = threading.Lock()
        self.calls: list[dict] = []
        self.loads = 0

    def __call__(self, path: Path, n_ctx: int, n_threads: int | None) -> FakeLlama:
        self.loads += 1
        if not self.load_gate.wait(timeout=60):
            raise RuntimeError("test never released the load")
        if self.fail_load:
            raise ValueError("Failed to load model from file")  # what llama-cpp raises for a bad GGUF
        return FakeLlama(self)

    def release_load(self) -> None:
        self.load_gate.set()

    def release_generation(self) -> None:
        self.generation_gate.set()
