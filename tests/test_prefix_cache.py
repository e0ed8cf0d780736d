"""The local model's prefix cache: a request reuses the evaluated static prefix, never another
client's text (its own previous request's, when authenticated) (tests/test_models_real.py runs it on the real GGUF)."""

from __future__ import annotations

import time
from pathlib import Path

from auditinf.inference.local import LocalBackend, LocalWorker
from auditinf.obs.context import RequestContext, bind_request
from auditinf.inference.prefix import PrefixCache

SYSTEM = {"role": "system", "content": "You explain transactions."}
PREFIX = [SYSTEM, {"role": "user", "content": "Task: explain.\nFacts:\n"}]


def chatml(messages: list[dict]) -> str:
    """The ChatML text SmolLM2's template makes of ``messages`` (as llama-cpp-python formats it)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


class TokenLlama:
    """llama-cpp-python's token state in miniature: one token per character; a call reuses the
    longest common prefix of its prompt with the evaluated tokens (``reused``), as ``Llama`` does."""

    def __init__(self) -> None:
        self.input_ids: list[int] = []
        self.n_tokens = 0
        self.reused: list[int] = []

    def reset(self) -> None:
        self.n_tokens = 0

    def create_chat_completion(self, *, messages: list[dict], stream: bool, **params):  # noqa: ANN003, ANN201
        tokens = [ord(c) for c in chatml(messages)]
        same = 0
        while same < min(self.n_tokens, len(tokens)) and self.input_ids[same] == tokens[same]:
            same += 1
        self.reused.append(same)
        self.input_ids, self.n_tokens = tokens, len(tokens)
        yield {"choices": [{"delta": {"content": '{"summary": "ok"}'}, "finish_reason": "stop"}]}


def request(facts: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": PREFIX[1]["content"] + facts}]


def static_length() -> int:
    """Characters the static prefix and any request share: up to the end of the task text."""
    return len(chatml(PREFIX)) - len("<|im_end|>\n<|im_start|>assistant\n")


def test_a_request_reuses_the_static_prefix_not_the_previous_request():
    model, cache = TokenLlama(), PrefixCache()
    cache.warm(model, PREFIX)
    assert model.n_tokens == len(chatml(PREFIX))
    for facts in ("Call: approve spender 0x2222 secret", "Call: approve spender 0x2223 other"):
        cache.prepare(model, PREFIX)
        list(model.create_chat_completion(messages=request(facts), stream=True))
    # the second request shares "Call: approve spender 0x222" with the first, but reuses only the prefix
    assert model.reused[1:] == [static_length(), static_length()]
    assert static_length() < len(chatml(request("Call: approve spender 0x222"))) - len("<|im_end|>\n<|im_start|>assistant\n")


def test_a_new_prefix_is_warmed_on_first_use_and_none_resets():
    model, cache = TokenLlama(), PrefixCache()
    other = [SYSTEM, {"role": "user", "content": "Task: list the risks.\nFacts:\n"}]
    assert cache.prepare(model, other) == len(chatml(other))  # evaluated once, then kept
    assert model.reused == [0]
    assert cache.prepare(model, None) == 0 and model.n_tokens == 0


def test_worker_warms_the_prefix_before_ready_and_reuses_it(tmp_path: Path):
    model = TokenLlama()
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    worker = LocalWorker(gguf, n_ctx=512, n_threads=1, queue_size=2, loader=lambda *_: model)
    try:
        worker.start(warm=PREFIX)
        deadline = time.monotonic() + 10
        while worker.state != "ready" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.state == "ready" and model.reused == [0] and model.n_tokens == len(chatml(PREFIX))
        worker.run(request("Call: a"), {}, timeout_s=10, prefix=PREFIX)
        worker.run(request("Call: a, again"), {}, timeout_s=10, prefix=PREFIX)
        worker.run(request("Call: a"), {}, timeout_s=10, prefix=None)  # prefix cache off: from the first token
        assert model.reused == [0, static_length(), static_length(), 0]
    finally:
        worker.stop()


def test_the_same_authenticated_client_reuses_its_own_previous_request_no_one_else_does(tmp_path: Path):
    model = TokenLlama()
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    worker = LocalWorker(gguf, n_ctx=512, n_threads=1, queue_size=2, loader=lambda *_: model)
    first, second = "Call: approve spender 0x2222 secret", "Call: approve spender 0x2223 other"
    shared = static_length() + len("Call: approve spender 0x222")  # what the two prompts have in common
    try:
        worker.start(warm=PREFIX)
        for facts, owner in ((first, "wallet-a"), (second, "wallet-a"),   # same client: its own text reused
                             (first, "wallet-b"),                          # another client: static prefix only
                             (first, None), (first, None),                 # not authenticated: static prefix only
                             (second, "wallet-a")):                        # a's text is gone: static prefix only
            worker.run(request(facts), {}, timeout_s=10, prefix=PREFIX, owner=owner)
        assert model.reused == [0, static_length(), shared, static_length(), static_length(), static_length(),
                                static_length()]
        worker.run(request(first), {}, timeout_s=10, prefix=None, owner="wallet-a")  # cache off: nothing reused
        assert model.reused[-1] == 0
    finally:
        worker.stop()


def test_the_owner_is_the_token_authenticated_client_only(tmp_path: Path):
    cached = LocalBackend("local-gguf", {"path": str(tmp_path / "m.gguf")}, None)
    uncached = LocalBackend("local-gguf", {"path": str(tmp_path / "m.gguf"), "prefix_cache": False}, None)
    assert cached._owner() is None  # outside a request (CLI, shadow runs)
    with bind_request(RequestContext("r1", authenticated_client="wallet-a")):
        assert cached._owner() == "wallet-a" and uncached._owner() is None
    with bind_request(RequestContext("r2")):  # a self-declared X-Client-Id never sets it
        assert cached._owner() is None
