"""Findings, severities and the verdict (Blockaid's three-way shape).

``risk_level`` is the highest severity among the findings (``none`` without findings).
``verdict``: ``malicious`` when any finding is critical, ``warning`` for high or medium,
``benign`` otherwise. Both are computed from rule findings only: a model can never lower them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["Severity", "Finding", "risk_level", "verdict", "findings_by_path"]


class Severity(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One rule hit: stable ``code``, ``severity``, a sentence, and the evidence it rests on."""

    code: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    path: str | None = None  # the inner call / router command it concerns ("0.2.1"); None = the transaction

    def to_dict(self) -> dict:
        out = {"code": self.code, "severity": str(self.severity), "message": self.message,
               "evidence": self.evidence}
        if self.path is not None:
            out["path"] = self.path
        return out


def risk_level(findings: list[Finding]) -> str:
    """``none`` | ``low`` | ``medium`` | ``high`` | ``critical``: the maximum severity."""
    return str(max(f.severity for f in findings)) if findings else "none"


def verdict(findings: list[Finding]) -> str:
    """``benign`` | ``warning`` | ``malicious`` from the findings' severities."""
    top = max((f.severity for f in findings), default=0)
    if top >= Severity.CRITICAL:
        return "malicious"
    if top >= Severity.MEDIUM:
        return "warning"
    return "benign"


def findings_by_path(findings: list[dict]) -> dict[str, list[dict]]:
    """Serialised findings of inner calls / router commands grouped by ``path`` (the rest left out)."""
    out: dict[str, list[dict]] = {}
    for f in findings:
        if f.get("path") is not None:
            out.setdefault(f["path"], []).append({k: v for k, v in f.items() if k != "path"})
    return out
