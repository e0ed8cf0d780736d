"""Load a policy file, validate it (JSON Schema 2020-12 + invariants), and build :class:`Policy`.

Invariants beyond the schema, each refused at load with the JSON path of the fault:
- every route candidate names a model defined under ``models``;
- a route lists a candidate at most once (a repeated candidate would multiply attempts);
- a ``private`` route names only ``local`` or ``deterministic`` models — private data never
  leaves the host, whatever fails — and so do the canaries of the models it names;
- ``canary_of`` / ``shadow_of`` name another model that is itself neither a canary nor a shadow,
  and the canary weights of one model add up to at most 1.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..errors import PolicyError
from ..ledger.canonical import canonical_bytes
from .spec import (DATA_CLASSES, REQUEST_KINDS, BreakerPolicy, BudgetPolicy, ChainPolicy, GatePolicy, ModelSpec,
                   Policy, RetryPolicy)

__all__ = ["load_policy", "parse_policy", "price_table"]

_LOCAL_BACKENDS = ("local", "deterministic")
_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "policies" / "policy.schema.json"
_MODEL_FIELDS = ("backend", "price_usd_per_1m", "canary_of", "canary_weight", "shadow_of", "pinned_version")


def _json_path(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _schema() -> dict:
    return json.loads(_SCHEMA_FILE.read_text())


def _usd(value: Any) -> Decimal:
    """A schema-validated USD amount (decimal string or JSON number) as ``Decimal``."""
    return Decimal(str(value))


def _model(name: str, spec: dict) -> ModelSpec:
    price = spec.get("price_usd_per_1m", {})
    return ModelSpec(
        name, spec["backend"], {k: v for k, v in spec.items() if k not in _MODEL_FIELDS},
        price_in=_usd(price.get("input", 0)), price_out=_usd(price.get("output", 0)),
        canary_of=spec.get("canary_of"), canary_weight=float(spec.get("canary_weight", 0.0)),
        shadow_of=spec.get("shadow_of"), pinned_version=spec.get("pinned_version"))


def price_table(models: dict[str, ModelSpec]) -> dict[str, dict[str, str]]:
    """``{model: {"input": "1.00", "output": "2.00"}}`` — USD per 1M tokens as decimal strings."""
    return {name: {"input": str(m.price_in), "output": str(m.price_out)} for name, m in sorted(models.items())}


def _check_rollout(models: dict[str, ModelSpec], fail) -> None:
    weights: dict[str, float] = {}
    for name, m in models.items():
        for key in ("canary_of", "shadow_of"):
            target = getattr(m, key)
            if target is None:
                continue
            if target == name or target not in models:
                fail(f"$.models.{name}.{key}", f"must name another model, not {target!r}")
            if models[target].canary_of or models[target].shadow_of:
                fail(f"$.models.{name}.{key}", f"{target!r} is itself a canary or shadow")
        if m.canary_of:
            weights[m.canary_of] = weights.get(m.canary_of, 0.0) + m.canary_weight
            if weights[m.canary_of] > 1.0:
                fail(f"$.models.{name}.canary_weight", f"canary weights of {m.canary_of!r} add up to more than 1")


def _routes(doc: dict, models: dict[str, ModelSpec], fail) -> dict[str, dict[str, tuple[str, ...]]]:
    routes: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind in REQUEST_KINDS:
        routes[kind] = {}
        for data_class in DATA_CLASSES:
            names = doc["routes"][kind][data_class]
            where = f"$.routes.{kind}.{data_class}"
            for i, name in enumerate(names):
                if name not in models:
                    fail(f"{where}[{i}]", f"unknown model {name!r}")
                if names.index(name) != i:
                    fail(f"{where}[{i}]", f"candidate {name!r} is listed twice")
                if data_class != "private":
                    continue
                for m in (models[name], *(c for c in models.values() if c.canary_of == name)):
                    if m.backend not in _LOCAL_BACKENDS:
                        fail(f"{where}[{i}]", f"private route names {name!r} whose model {m.name!r} has backend "
                                              f"{m.backend!r}; private data may only go to local or deterministic models")
            routes[kind][data_class] = tuple(names)
    return routes


def parse_policy(raw: bytes, source: str = "<policy>") -> Policy:
    """Validate policy bytes (YAML or JSON) and build the :class:`Policy`.

    Raises :class:`PolicyError` (``invalid_policy``) with ``<source>: <json path>: <reason>``.
    """
    def fail(where: str, reason: str):
        raise PolicyError(f"{source}: {where}: {reason}")

    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        fail(_json_path(errors[0].absolute_path), errors[0].message)
    models = {name: _model(name, spec) for name, spec in doc["models"].items()}
    _check_rollout(models, fail)
    routes = _routes(doc, models, fail)
    r = doc["retries"]
    retries = RetryPolicy(
        max_attempts=r["max_attempts"],
        backoff_base_s=r.get("backoff_base_s", 0.25),
        backoff_max_s=r.get("backoff_max_s", 2.0),
        retry_on=frozenset(r.get("retry_on", RetryPolicy.retry_on)),
        deadline_s=r.get("deadline_s", 120.0),
    )
    budgets = doc.get("budgets", {})
    default_budget = budgets.get("default_daily_usd")
    gate = doc.get("gate", {})
    cls = doc["classification"]
    return Policy(
        id=doc["id"],
        version=str(doc["version"]),
        sha256=hashlib.sha256(raw).hexdigest(),
        path=source,
        models=models,
        routes=routes,
        retries=retries,
        private_clients=frozenset(cls.get("private_clients", [])),
        private_addresses=frozenset(a.lower() for a in cls.get("private_addresses", [])),
        prices_sha256=hashlib.sha256(canonical_bytes(price_table(models))).hexdigest(),
        breaker=BreakerPolicy(**doc.get("circuit_breaker", {})),
        budgets=BudgetPolicy(
            default_daily_usd=None if default_budget is None else _usd(default_budget),
            clients={c: _usd(v) for c, v in budgets.get("clients", {}).items()}),
        gate=GatePolicy(
            levels={**GatePolicy().levels, **gate.get("levels", {})},
            unknown_risk=gate.get("unknown_risk", "review"),
            max_value_wei=int(gate["max_value_wei"]) if gate.get("max_value_wei") is not None else None,
            over_max_value=gate.get("over_max_value", "review"),
            allow_addresses=frozenset(a.lower() for a in gate.get("allow_addresses", [])),
            deny_addresses=frozenset(a.lower() for a in gate.get("deny_addresses", []))),
        deny_addresses=frozenset(a.lower() for a in doc.get("lists", {}).get("deny", [])),
        trusted_addresses=frozenset(a.lower() for a in doc.get("lists", {}).get("trusted", [])),
        chain=ChainPolicy(**doc.get("chain", {})),
    )


def load_policy(path: str | Path) -> Policy:
    """Read, validate and return the policy at ``path`` (YAML or JSON).

    Raises :class:`PolicyError` (``invalid_policy``) with ``<file>: <json path>: <reason>``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror}") from exc
    return parse_policy(raw, str(path))
