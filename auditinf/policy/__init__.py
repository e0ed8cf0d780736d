"""Versioned policy: models, routes per request kind × data class, retries, breaker, budgets, gate."""

from .classify import SecretHit, data_class, find_secret, refuse_secrets, secret_refusal
from .loader import load_policy, parse_policy, price_table
from .spec import (DATA_CLASSES, GATE_DECISIONS, REQUEST_KINDS, RISK_LEVELS, BreakerPolicy, BudgetPolicy, GatePolicy,
                   ModelSpec, Policy, RetryPolicy, usd_text)

__all__ = ["SecretHit", "data_class", "find_secret", "refuse_secrets", "secret_refusal", "DATA_CLASSES",
           "GATE_DECISIONS", "REQUEST_KINDS", "RISK_LEVELS", "BreakerPolicy", "BudgetPolicy", "GatePolicy",
           "ModelSpec", "Policy", "RetryPolicy", "load_policy", "parse_policy", "price_table", "usd_text"]
