"""In-process fake backends for router tests: each call takes the next scripted outcome."""

from __future__ import annotations

import time
from typing import Any

from auditinf.inference import ModelAnswer, Prompt, parse_answer

from .fault_server import GOOD_ANSWER


class ScriptedBackend:
    """``script`` items: an exception instance (raised), ``("text", finish_reason)`` (parsed as a
    model's raw output), or a dict (a valid answer). The last item repeats. ``calls`` logs
    ``(monotonic time, prompt)``. ``worker`` is ``None``: no local-model queue (admission passes)."""

    worker = None

    def __init__(self, kind: str = "local", name: str = "fake", script: list[Any] | None = None,
                 delay_s: float = 0.0, tokens: tuple[int, int] = (0, 0), response_model: str | None = None) -> None:
        self.kind, self.name = kind, name
        self.script = list(script or [GOOD_ANSWER])
        self.delay_s = delay_s
        self.tokens = tokens
        self.response_model = response_model
        self.calls: list[tuple[float, Prompt]] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": self.kind, "name": self.name, "id": "fake"}

    def generate(self, prompt: Prompt, *, data_class: str, timeout_s: float) -> ModelAnswer:
        self.calls.append((time.monotonic(), prompt))
        if self.delay_s:
            time.sleep(self.delay_s)
        item = self.script[min(len(self.calls) - 1, len(self.script) - 1)]
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, tuple):
            content = parse_answer(item[0], item[1])
        else:
            content = item
        return ModelAnswer(content=content, finish_reason="stop", tokens_in=self.tokens[0], tokens_out=self.tokens[1],
                           response_model=self.response_model)
