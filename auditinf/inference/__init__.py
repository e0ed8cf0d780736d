"""Model backends (local llama-cpp, hosted OpenAI-compatible, deterministic) and the router."""

from __future__ import annotations

import os

from ..config import Settings
from ..policy import ModelSpec
from .base import ANSWER_SCHEMA, Backend, ModelAnswer, Prompt, StreamSink, parse_answer
from .breaker import Breakers, CircuitBreaker
from .deterministic import DeterministicBackend
from .hosted import HostedBackend
from .local import LocalBackend, bundled_gguf
from .prompt import build_prompt, check_consistent
from .router import Attempt, Candidate, RouteResult, route

__all__ = ["ANSWER_SCHEMA", "Backend", "ModelAnswer", "Prompt", "StreamSink", "parse_answer", "Breakers",
           "CircuitBreaker", "DeterministicBackend", "HostedBackend", "LocalBackend", "bundled_gguf", "build_prompt",
           "check_consistent", "Attempt", "Candidate", "RouteResult", "route", "make_backend"]


def make_backend(spec: ModelSpec, settings: Settings) -> Backend:
    """Instantiate the backend a policy model names, with settings filling what the policy omits."""
    if spec.backend == "local":
        return LocalBackend(spec.name, spec.options, settings.local_model_path, settings.local_queue_size)
    if spec.backend == "hosted":
        env_key = spec.options.get("api_key_env")
        key = os.environ.get(env_key) if env_key else (
            settings.hosted_api_key.get_secret_value() if settings.hosted_api_key else None)
        return HostedBackend(spec.name, spec.options, base_url=settings.hosted_base_url,
                             model=settings.hosted_model, api_key=key)
    return DeterministicBackend()
