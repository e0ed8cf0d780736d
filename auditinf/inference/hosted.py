"""The hosted backend: any OpenAI-compatible chat-completions server, through the ``openai`` SDK.

- Public data only. A request of any other class raises :class:`PrivacyViolation` here, before
  any byte is sent — defence in depth behind the policy loader and the router.
- One request per attempt: the SDK's own retries are off (``max_retries=0``); the router owns
  retries. The per-attempt timeout bounds the whole call, not only each read: a server that
  trickles its answer byte by byte is cut off at the deadline too (the call runs on a worker
  thread and is abandoned, its connection closed).
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
import ssl
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Callable

import certifi
import httpx
import openai

from ..errors import (BackendUnavailable, InferenceError, InvalidModelOutput, ModelTimeout, PrivacyViolation,
                      UpstreamError)
from .base import ModelAnswer, Prompt, parse_answer, safe_count, safe_label

__all__ = ["HostedBackend", "map_openai_error"]


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
        timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
        client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self._api_key or "not-needed",
            max_retries=0,
            timeout=timeout,
            http_client=openai.DefaultHttpxClient(verify=_tls_context(), timeout=timeout),
        )
        try:
            response = _within(timeout_s, client.close, lambda: client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
                response_format=self._response_format(prompt),
                max_tokens=self.max_tokens,
                temperature=self.temperature,
            ))
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
            raise map_openai_error(exc) from exc
        except ValueError as exc:  # a 200 whose body is not JSON: the SDK lets json's error through
            raise UpstreamError("hosted model sent a malformed response body",
                                error_type="malformed_response") from exc
        finally:
            client.close()
        if not response.choices:
            raise UpstreamError("hosted model returned no choices", error_type="empty_output")
        choice = response.choices[0]
        usage = response.usage
        tokens_in = safe_count(usage.prompt_tokens) if usage else None
        tokens_out = safe_count(usage.completion_tokens) if usage else None
        served = safe_label(response.model)
        try:
            content = parse_answer(choice.message.content, choice.finish_reason)
        except InvalidModelOutput as exc:  # billed all the same: keep what the cost is computed from
            exc.tokens_in, exc.tokens_out, exc.response_model = tokens_in, tokens_out, served
            raise
        return ModelAnswer(content=content, finish_reason=choice.finish_reason, tokens_in=tokens_in,
                           tokens_out=tokens_out, response_model=served, response_id=safe_label(response.id))


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context (CA bundle: certifi, as httpx's default) per process: building it for every
    attempt cost 20-140 ms of CA loading (bench/gateway.py). Each attempt still gets its own
    client, so abandoning a timed-out call closes only that call's connection."""
    return ssl.create_default_context(cafile=certifi.where())


def _within(timeout_s: float, abandon: Callable[[], None], call: Callable[[], Any]) -> Any:
    """Run ``call`` on a daemon thread and wait at most ``timeout_s`` seconds for it; past that,
    ``abandon()`` (close the client) and raise :class:`ModelTimeout`. Exceptions are re-raised."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="auditinf-hosted-call", daemon=True).start()
    if not done.wait(timeout_s):
        try:
            abandon()
        except Exception:  # noqa: BLE001 - the call is abandoned either way
            pass
        raise ModelTimeout(f"hosted model did not finish within the {timeout_s:.1f} s attempt timeout")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _mentions_format(exc: openai.APIStatusError) -> bool:
    try:
        text = exc.response.text.lower()
    except Exception:  # the body may be unreadable; then it was not about the format
        return False
    return "response_format" in text or "json_schema" in text
