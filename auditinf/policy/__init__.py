"""Versioned policy: models, routes per request kind × data class, retries, classification."""

from .classify import SecretHit, data_class, find_secret, refuse_secrets, secret_refusal
from .loader import DATA_CLASSES, REQUEST_KINDS, ModelSpec, Policy, RetryPolicy, load_policy

__all__ = ["SecretHit", "data_class", "find_secret", "refuse_secrets", "secret_refusal", "DATA_CLASSES", "REQUEST_KINDS",
           "ModelSpec", "Policy", "RetryPolicy", "load_policy"]
