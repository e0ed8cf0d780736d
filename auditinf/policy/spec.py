"""The loaded policy as immutable values: models, retries, circuit breaker, budgets, gate.

Units: times in seconds, prices in USD per 1,000,000 tokens (``Decimal``), budgets in USD per
client per UTC day (``Decimal``), native values in wei (``int``). Built by :mod:`.loader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["usd_text", "ModelSpec", "RetryPolicy", "BreakerPolicy", "BudgetPolicy", "GatePolicy", "Policy",
           "REQUEST_KINDS", "DATA_CLASSES", "RISK_LEVELS", "GATE_DECISIONS"]

REQUEST_KINDS = ("explain", "risk", "methods")
DATA_CLASSES = ("public", "private")
RISK_LEVELS = ("none", "low", "medium", "high", "critical")
GATE_DECISIONS = ("allow", "review", "deny")
_MILLION = Decimal(1_000_000)


def usd_text(amount: Decimal) -> str:
    """A USD amount as the record stores it: a plain decimal string, never exponent notation
    (``Decimal("1.4E-7")`` → ``"0.00000014"``), trailing zeros dropped."""
    return format(amount.normalize(), "f")


@dataclass(frozen=True)
class ModelSpec:
    """One model of the policy: ``name`` (policy key), ``backend`` and its options.

    ``price_in``/``price_out``: USD per 1M input/output tokens. ``canary_of``/``canary_weight``:
    this model takes ``canary_weight`` (0–1) of the traffic routed to model ``canary_of``.
    ``shadow_of``: this model runs in the background on copies of public requests routed to
    ``shadow_of``. ``pinned_version``: the response model name the provider must report.
    """

    name: str
    backend: str
    options: dict[str, Any]
    price_in: Decimal = Decimal(0)
    price_out: Decimal = Decimal(0)
    canary_of: str | None = None
    canary_weight: float = 0.0
    shadow_of: str | None = None
    pinned_version: str | None = None

    @property
    def timeout_s(self) -> float:
        """Per-attempt timeout in seconds."""
        return float(self.options.get("timeout_s", 30.0))

    def cost_usd(self, tokens_in: int | None, tokens_out: int | None) -> Decimal:
        """USD cost of one call: ``tokens × price / 1M`` (unreported counts cost 0)."""
        return ((tokens_in or 0) * self.price_in + (tokens_out or 0) * self.price_out) / _MILLION


@dataclass(frozen=True)
class RetryPolicy:
    """Per candidate: ``max_attempts``; backoff ``uniform(0, min(max, base·2^(n-1)))`` seconds
    (full jitter) or the server's ``Retry-After``; ``deadline_s`` bounds the whole request."""

    max_attempts: int = 1
    backoff_base_s: float = 0.25
    backoff_max_s: float = 2.0
    retry_on: frozenset = frozenset({"timeout", "connection", 429, 500, 502, 503, 504})
    deadline_s: float = 120.0


@dataclass(frozen=True)
class BreakerPolicy:
    """Per backend: open after ``open_after_consecutive_failures`` failed attempts in a row; after
    ``open_s`` seconds let ``half_open_probes`` attempts through; a success closes it."""

    open_after_consecutive_failures: int = 5
    open_s: float = 30.0
    half_open_probes: int = 1


@dataclass(frozen=True)
class BudgetPolicy:
    """Daily (UTC) spend limit per client in USD; ``None`` means unlimited."""

    default_daily_usd: Decimal | None = None
    clients: dict[str, Decimal] = field(default_factory=dict)

    def limit_for(self, client_id: str) -> Decimal | None:
        return self.clients.get(client_id, self.default_daily_usd)


@dataclass(frozen=True)
class GatePolicy:
    """Agent gate thresholds: a decision per risk level, the decision when the analysis could not
    establish facts it needed or the function is unknown (``unknown_risk``), the largest native
    value in wei (``max_value_wei``; above it: ``over_max_value``), and address lists: an involved
    address on ``deny_addresses`` denies; with ``allow_addresses`` set, a destination outside it
    is ``review`` at least. The strictest reason decides (allow < review < deny)."""

    levels: dict[str, str] = field(default_factory=lambda: {"none": "allow", "low": "allow", "medium": "review",
                                                             "high": "deny", "critical": "deny"})
    unknown_risk: str = "review"
    max_value_wei: int | None = None
    over_max_value: str = "review"
    allow_addresses: frozenset[str] = frozenset()
    deny_addresses: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ChainPolicy:
    """``chain`` section: may a request name its own RPC node (``rpc_url``), may that node be on a
    private/loopback address, and the per-call timeout in seconds (see :mod:`auditinf.evm.chain_source`)."""

    allow_request_rpc_url: bool = False
    allow_private_hosts: bool = False
    timeout_s: float = 5.0


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy. ``sha256`` is over the file's exact bytes; ``prices_sha256``
    over the RFC 8785 canonical JSON of the price table ``{model: {input, output}}``."""

    id: str
    version: str
    sha256: str
    path: str
    models: dict[str, ModelSpec]
    routes: dict[str, dict[str, tuple[str, ...]]]
    retries: RetryPolicy
    private_clients: frozenset[str]
    private_addresses: frozenset[str]
    prices_sha256: str = ""
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    budgets: BudgetPolicy = field(default_factory=BudgetPolicy)
    gate: GatePolicy = field(default_factory=GatePolicy)
    # `lists` section: lowercase addresses the risk rules deny (known drainers) or trust (routers)
    deny_addresses: frozenset[str] = frozenset()
    trusted_addresses: frozenset[str] = frozenset()
    chain: ChainPolicy = field(default_factory=ChainPolicy)

    def candidates(self, kind: str, data_class: str) -> list[ModelSpec]:
        """Ordered model candidates for a request kind (explain|risk|methods) and data class."""
        return [self.models[name] for name in self.routes[kind][data_class]]

    def canaries(self, primary: str) -> list[ModelSpec]:
        """Models that take a weighted share of ``primary``'s traffic, in policy order."""
        return [m for m in self.models.values() if m.canary_of == primary]

    def shadows(self, primary: str) -> list[ModelSpec]:
        """Models that run in the background beside ``primary`` (public requests only)."""
        return [m for m in self.models.values() if m.shadow_of == primary]

    def identity(self) -> dict:
        """What the audit record stores about the policy."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256, "prices_sha256": self.prices_sha256}
