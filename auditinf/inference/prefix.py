"""The local model keeps its evaluated static prompt prefix between requests, and nothing more.

llama-cpp-python's ``Llama`` reuses the longest common token prefix of its previous call (its KV
cache), so a prompt whose system message was evaluated before starts generating sooner. Left
alone it would reuse whatever the previous request shared with the next one, another client's
private facts included, and the time to first token would tell a client how long that shared
part was (a timing side channel of prompt caches). :class:`PrefixCache` instead:

- evaluates each static prefix once — the ``[system, user]`` messages of a prompt's text that no
  request changes (system prompt, task line) — and records its token ids;
- before each request, cuts the model's evaluated tokens back to their longest common prefix with
  that static prefix (``Llama.n_tokens``; the KV entries after it are dropped by the next
  evaluation), so a request reuses only text that no request supplied — unless the evaluated
  tokens are the same authenticated client's previous request (``keep_all``): its own text may
  be reused, as llama-cpp-python would.

With ``prefix=None`` (policy option ``prefix_cache: false``) the model is reset instead and every
prompt is evaluated from its first token.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["PrefixCache"]

_LIMIT = 8  # static prefixes kept (one per request kind at most)


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class PrefixCache:
    """Token ids of the static prefixes evaluated on one ``llama_cpp.Llama`` (one worker's model)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, ...], list[int]] = {}

    @staticmethod
    def supported(model: Any) -> bool:
        """True for a model with llama-cpp-python's token state (``input_ids``, ``n_tokens``, ``reset``)."""
        return all(hasattr(model, name) for name in ("input_ids", "n_tokens", "reset"))

    def warm(self, model: Any, prefix: list[dict[str, str]]) -> list[int]:
        """Evaluate ``prefix`` (chat messages, the last one a user message) on ``model`` and remember
        its token ids. Runs one ``create_chat_completion`` of one greedy token; raises what it raises."""
        stream = model.create_chat_completion(messages=prefix, stream=True, max_tokens=1, temperature=0.0)
        for _ in stream:
            pass
        ids = [int(t) for t in model.input_ids[:model.n_tokens]]
        if len(self._ids) >= _LIMIT:
            self._ids.pop(next(iter(self._ids)))
        self._ids[tuple(m["content"] for m in prefix)] = ids
        return ids

    def prepare(self, model: Any, prefix: list[dict[str, str]] | None, *, keep_all: bool = False) -> int:
        """Make ``model`` ready for a prompt that starts with ``prefix``: keep only the evaluated
        tokens that prefix shares (warming it first if it is new), or none with ``prefix=None``.
        ``keep_all`` (the model's evaluated tokens are the same client's previous request, see
        :class:`~auditinf.inference.local.LocalWorker`) keeps them all once the prefix is known:
        the generation then reuses whatever the prompt shares with them.
        Returns how many evaluated tokens the next generation may reuse."""
        if prefix is None:
            model.reset()
            return 0
        ids = self._ids.get(tuple(m["content"] for m in prefix))
        if ids is None:
            ids = self.warm(model, prefix)
        elif keep_all:
            return int(model.n_tokens)
        keep = _common(model.input_ids[:model.n_tokens], ids)
        model.n_tokens = keep
        return keep
