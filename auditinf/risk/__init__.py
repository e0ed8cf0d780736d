"""Deterministic risk rules: findings with stable codes, severity, evidence; verdict and risk level."""

from .findings import Finding, Severity, risk_level, verdict
from .rules import RuleContext, evaluate

__all__ = ["Finding", "Severity", "risk_level", "verdict", "RuleContext", "evaluate"]
