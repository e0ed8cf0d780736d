"""The hosted backend: any OpenAI-compatible chat-completions server, through the ``openai`` SDK.

- Public data only. A request of any other class raises :class:`PrivacyViolation` here, before
  any byte is sent — defence in depth behind the policy loader and the router.
- One request per attempt: the SDK's own retries are off (``max_retries=0``); the router owns
  retries. The per-attempt timeout bounds the whole call, not only each read: a server that
  trickles its answer byte by byte is cut off at the deadline too (the call runs on a worker
  thread, :mod:`.workers`, and is abandoned, its connection closed).
- Connections are kept alive between attempts (:mod:`.hosted_clients`): a client goes back to the
  backend's pool only after a clean call, and is closed after a timeout or any error. A kept-alive
  connection that the server closed as the request went out (no response) is ``stale_connection``:
  a retryable error that tells nothing about the backend (the router records it, leaves the
  circuit breaker alone and retries once on a new connection).
- Tokens the provider reports are kept even when the output is refused (truncated, not JSON),
  so their cost is recorded.
- Structured output: ``response_format`` ``json_schema`` (OpenAI) where the server accepts it;
  ``json_object`` with a ``schema`` (llama.cpp's server, which rejects ``json_schema``) otherwise.
  In ``auto`` mode an error response naming ``response_format`` switches the backend to ``json_object`` for
  the next attempt (one deliberate adaptation, recorded as its own attempt).
- Errors map to typed :class:`InferenceError`\\ s in one table; upstream error text is never kept
  (it can echo API keys), only the status and the error type.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import openai
import orjson

from ..errors import (BackendUnavailable, InferenceError, InvalidModelOutput, ModelTimeout, PrivacyViolation,
                      UpstreamError)
from .base import ModelAnswer, Prompt, parse_answer, safe_count, safe_label
from .hosted_clients import ClientPool, broke_before_response, new_client
from .workers import WorkerPool, call_within

__all__ = ["HostedBackend", "map_openai_error"]

_WORKERS = WorkerPool("auditinf-hosted-call")


def map_openai_error(exc: openai.OpenAIError) -> InferenceError:
    """Translate an ``openai`` exception into a typed, key-free :class:`InferenceError`."""
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout("hosted model did not answer within the attempt timeout")
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError("could not connect to the hosted model", error_type="connection", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        kinds = {400: "bad_request", 401: "auth", 403: "auth", 404: "not_found", 408: "timeout",
                 409: "conflict", 422: "bad_request", 429: "rate_limited"}
        error_type = kinds.get(status, "server_error" if status >= 500 else f"http_{status}")
        err = UpstreamError(f"hosted model answered HTTP {status}", status=status, error_type=error_type,
                            retryable=status in (408, 409, 429) or status >= 500)
        err.retry_after = _retry_after(exc.response)
        return err
    return UpstreamError(f"hosted model call failed: {type(exc).__name__}")


def _retry_after(response: httpx.Response | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3: delay-seconds or an
    HTTP-date), or ``None`` when absent or unparseable."""
    value = response.headers.get("retry-after") if response is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class HostedBackend:
    """OpenAI-compatible backend for one policy model (``kind == "hosted"``)."""

    kind = "hosted"

    def __init__(self, name: str, options: dict[str, Any], *, base_url: str | None, model: str | None,
                 api_key: str | None) -> None:
        self.name = name
        self.base_url = options.get("base_url") or base_url
        self.model = options.get("model") or model
        self._api_key = api_key
        self.max_tokens = int(options.get("max_tokens", 384))
        self.temperature = float(options.get("temperature", 0.2))
        self.mode = options.get("response_format", "auto")
        self._format = "json_object" if self.mode == "json_object" else "json_schema"
        self._clients = ClientPool(lambda: new_client(self.base_url, self._api_key))

    def _call(self, client: openai.OpenAI, prompt: Prompt, timeout_s: float) -> Any:
        """One chat completion on ``client`` within ``timeout_s`` s (see the module docstring);
        past the deadline the client is closed under the call and :class:`ModelTimeout` raised."""
        body = {"model": self.model,
                "messages": [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
                "response_format": self._response_format(prompt), "max_tokens": self.max_tokens,
                "temperature": self.temperature}
        options = {"timeout": httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))}
        # The SDK's generic POST (its documented way to custom requests) with the same body as
        # chat.completions.create, without its per-call walk of the parameter types, and the
        # 2xx body as the raw response (its error statuses still raise the SDK's exceptions): the
        # completion is read by _completion_fields, not built into SDK model objects (together
        # ~1 ms a call, bench/gateway.py). The body holds only plain JSON values.
        finished, response, error = call_within(_WORKERS, timeout_s, lambda: client.post(
            "/chat/completions", cast_to=httpx.Response, body=body, options=options).content)
        if not finished:
            raise ModelTimeout(f"hosted model did not finish within the {timeout_s:.1f} s attempt timeout")
        if error is not None:
            raise error
        try:
            return orjson.loads(response)
        except orjson.JSONDecodeError:  # what orjson refuses and json takes: a BOM, NaN, an escaped
            return json.loads(response)  # lone surrogate (safe_label drops it); ValueError if not JSON

    def close(self) -> None:
        """Close the kept-alive connections (the backend was replaced by a policy reload)."""
        self._clients.close()

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def identity(self) -> dict[str, Any]:
        """Provider identity; the key appears only as a SHA-256 fingerprint prefix."""
        key_fp = hashlib.sha256(self._api_key.encode()).hexdigest()[:12] if self._api_key else None
        return {"backend": "hosted", "name": self.model, "id": self.base_url, "key_fingerprint": key_fp}

    def _response_format(self, prompt: Prompt) -> dict[str, Any]:
        if self._format == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "answer", "schema": prompt.schema, "strict": True}}
        return {"type": "json_object", "schema": prompt.schema}

    def generate(self, prompt: Prompt, *, data_class: str, timeout_s: float) -> ModelAnswer:
        if data_class != "public":
            raise PrivacyViolation(f"refusing to send {data_class} data to hosted model {self.name}")
        if not self.configured:
            raise BackendUnavailable("no hosted model configured (AUDITINF_HOSTED_BASE_URL / _MODEL)",
                                     error_type="not_configured")
        client, reused = self._clients.take()
        clean = False
        try:
            response = self._call(client, prompt, timeout_s)
            clean = True
        except openai.APIStatusError as exc:
            # OpenAI-compatible servers reject an unknown response_format with 400, 422 or even 500
            # (llama_cpp.server); the body names the parameter either way.
            if self.mode == "auto" and self._format == "json_schema" and _mentions_format(exc):
                self._format = "json_object"
                raise UpstreamError("hosted model rejects json_schema; switching to json_object",
                                    status=exc.status_code, error_type="response_format_unsupported",
                                    retryable=True) from exc
            raise map_openai_error(exc) from exc
        except openai.OpenAIError as exc:
            if reused and broke_before_response(exc):
                self._clients.clear()  # idle as long or longer: suspect too
                raise UpstreamError("the hosted model closed a kept-alive connection before answering",
                                    error_type="stale_connection", retryable=True) from exc
            raise map_openai_error(exc) from exc
        except ValueError as exc:  # a 200 whose body is not JSON (orjson.JSONDecodeError)
            raise UpstreamError("hosted model sent a malformed response body",
                                error_type="malformed_response") from exc
        finally:
            if clean:
                self._clients.give(client)
            else:
                self._clients.discard(client)
        text, finish_reason, usage = _completion_fields(response)
        tokens_in, tokens_out = safe_count(usage.get("prompt_tokens")), safe_count(usage.get("completion_tokens"))
        served = safe_label(response.get("model"))
        try:
            content = parse_answer(text, finish_reason)
        except InvalidModelOutput as exc:  # billed all the same: keep what the cost is computed from
            exc.tokens_in, exc.tokens_out, exc.response_model = tokens_in, tokens_out, served
            raise
        return ModelAnswer(content=content, finish_reason=finish_reason, tokens_in=tokens_in,
                           tokens_out=tokens_out, response_model=served, response_id=safe_label(response.get("id")))


def _completion_fields(response: Any) -> tuple[str | None, str | None, dict[str, Any]]:
    """``(text, finish_reason, usage)`` of the first choice of a chat completion object (OpenAI
    API reference, "The chat completion object"). Raises ``UpstreamError`` ``malformed_response``
    when it is not shaped like one, ``empty_output`` when it has no choice."""
    if not isinstance(response, dict) or not isinstance(response.get("choices", []), list):
        raise UpstreamError("hosted model sent a response that is not a chat completion",
                            error_type="malformed_response")
    if not response.get("choices"):
        raise UpstreamError("hosted model returned no choices", error_type="empty_output")
    choice = response["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise UpstreamError("hosted model sent a choice without a message", error_type="malformed_response")
    text, finish_reason = message.get("content"), choice.get("finish_reason")
    usage = response.get("usage")
    return (text if isinstance(text, str) else None, finish_reason if isinstance(finish_reason, str) else None,
            usage if isinstance(usage, dict) else {})


def _mentions_format(exc: openai.APIStatusError) -> bool:
    try:
        text = exc.response.text.lower()
    except Exception:  # the body may be unreadable; then it was not about the format
        return False
    return "response_format" in text or "json_schema" in text
