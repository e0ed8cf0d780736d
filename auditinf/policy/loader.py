"""Load a policy file, validate it (JSON Schema 2020-12 + invariants), and expose routes.

Invariants beyond the schema, each refused at load with the JSON path of the fault:
- every route candidate names a model defined under ``models``;
- a route lists a candidate at most once (a repeated candidate would multiply attempts);
- a ``private`` route names only ``local`` or ``deterministic`` models — private data never
  leaves the host, whatever fails.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from ..errors import PolicyError

__all__ = ["Policy", "ModelSpec", "RetryPolicy", "load_policy", "REQUEST_KINDS", "DATA_CLASSES"]

REQUEST_KINDS = ("explain", "risk", "methods")
DATA_CLASSES = ("public", "private")
_LOCAL_BACKENDS = ("local", "deterministic")
_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "policies" / "policy.schema.json"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the policy: ``name`` (policy key), ``backend`` and its options."""

    name: str
    backend: str
    options: dict[str, Any]

    @property
    def timeout_s(self) -> float:
        return float(self.options.get("timeout_s", 30.0))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_base_s: float = 0.25
    backoff_max_s: float = 2.0
    retry_on: frozenset = frozenset({"timeout", "connection", 429, 500, 502, 503, 504})
    deadline_s: float = 120.0


@dataclass(frozen=True)
class Policy:
    """A loaded, validated policy. ``sha256`` is over the file's exact bytes."""

    id: str
    version: str
    sha256: str
    path: str
    models: dict[str, ModelSpec]
    routes: dict[str, dict[str, tuple[str, ...]]]
    retries: RetryPolicy
    private_clients: frozenset[str]
    private_addresses: frozenset[str]

    def candidates(self, kind: str, data_class: str) -> list[ModelSpec]:
        """Ordered model candidates for a request kind (explain|risk|methods) and data class."""
        return [self.models[name] for name in self.routes[kind][data_class]]

    def identity(self) -> dict:
        """What the audit record stores about the policy."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


def _json_path(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _schema() -> dict:
    return json.loads(_SCHEMA_FILE.read_text())


def load_policy(path: str | Path) -> Policy:
    """Read, validate and return the policy at ``path`` (YAML or JSON).

    Raises :class:`PolicyError` (``invalid_policy``) with ``<file>: <json path>: <reason>``.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        doc = yaml.safe_load(raw)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read policy: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from exc
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise PolicyError(f"{path}: {_json_path(first.absolute_path)}: {first.message}")
    models = {name: ModelSpec(name, spec["backend"], {k: v for k, v in spec.items() if k != "backend"})
              for name, spec in doc["models"].items()}
    routes: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind, route in doc["routes"].items():
        routes[kind] = {}
        for data_class, names in route.items():
            where = f"$.routes.{kind}.{data_class}"
            for i, name in enumerate(names):
                if name not in models:
                    raise PolicyError(f"{path}: {where}[{i}]: unknown model {name!r}")
                if names.index(name) != i:
                    raise PolicyError(f"{path}: {where}[{i}]: candidate {name!r} is listed twice")
                if data_class == "private" and models[name].backend not in _LOCAL_BACKENDS:
                    raise PolicyError(
                        f"{path}: {where}[{i}]: private route names {name!r} with backend "
                        f"{models[name].backend!r}; private data may only go to local or deterministic models")
            routes[kind][data_class] = tuple(names)
    r = doc["retries"]
    retries = RetryPolicy(
        max_attempts=r["max_attempts"],
        backoff_base_s=r.get("backoff_base_s", 0.25),
        backoff_max_s=r.get("backoff_max_s", 2.0),
        retry_on=frozenset(r.get("retry_on", RetryPolicy.retry_on)),
        deadline_s=r.get("deadline_s", 120.0),
    )
    cls = doc["classification"]
    return Policy(
        id=doc["id"],
        version=str(doc["version"]),
        sha256=hashlib.sha256(raw).hexdigest(),
        path=str(path),
        models=models,
        routes=routes,
        retries=retries,
        private_clients=frozenset(cls.get("private_clients", [])),
        private_addresses=frozenset(a.lower() for a in cls.get("private_addresses", [])),
    )
