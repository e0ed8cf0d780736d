"""The bundled ABIs and known addresses under ``abi_samples/``, indexed for decoding.

Each ABI file is ``{"name", "source", "addresses": {chain_id: [address]}, "abi": [...]}``; its
sha256 is the provenance the audit record stores. ``known_addresses.json`` names tokens
(symbol, decimals), routers, marketplace operators and Safe libraries per chain.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from .abi import AbiFunction, parse_abi

__all__ = ["AbiSource", "KnownAddress", "AbiRegistry", "default_registry", "default_samples_dir"]


@dataclass(frozen=True)
class AbiSource:
    """Where an ABI came from: ``kind`` is ``client`` or ``bundled`` (then file + sha256)."""

    kind: str
    name: str
    file: str | None = None
    sha256: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class KnownAddress:
    label: str
    roles: frozenset[str]
    symbol: str | None = None
    decimals: int | None = None


class AbiRegistry:
    """Bundled ABIs by (chain id, address) and by selector; known addresses by chain id."""

    def __init__(self, samples_dir: Path) -> None:
        self.samples_dir = samples_dir
        self._by_address: dict[tuple[int, str], tuple[AbiSource, list[AbiFunction]]] = {}
        self._by_selector: dict[str, list[tuple[AbiSource, AbiFunction]]] = {}
        self._known: dict[tuple[int, str], KnownAddress] = {}
        self._named: dict[str, AbiFunction] = {}
        self._renamed: dict[tuple[str, int], AbiFunction] = {}  # bundled functions only: bounded
        for path in sorted((samples_dir / "abis").glob("*.json")):
            raw = path.read_bytes()
            doc = json.loads(raw)
            source = AbiSource(
                kind="bundled",
                name=doc.get("name", path.stem),
                file=f"abi_samples/abis/{path.name}",
                sha256=hashlib.sha256(raw).hexdigest(),
            )
            functions = parse_abi(doc["abi"])
            for chain, addresses in doc.get("addresses", {}).items():
                for address in addresses:
                    self._by_address[(int(chain), address.lower())] = (source, functions)
            for fn in functions:
                if all(p.get("name") for p in fn.inputs):
                    self._named.setdefault(fn.signature, fn)
                entries = self._by_selector.setdefault(fn.selector, [])
                if all(known.signature != fn.signature for _, known in entries):
                    entries.append((source, fn))
        known_file = samples_dir / "known_addresses.json"
        if known_file.exists():
            for chain, entries in json.loads(known_file.read_text())["chains"].items():
                for address, info in entries.items():
                    self._known[(int(chain), address.lower())] = KnownAddress(
                        label=info["label"],
                        roles=frozenset(info.get("roles", ())),
                        symbol=info.get("symbol"),
                        decimals=info.get("decimals"),
                    )

    def functions_at(self, chain_id: int, address: str | None) -> tuple[AbiSource, list[AbiFunction]] | None:
        """The bundled ABI deployed at ``address`` on ``chain_id``, if any."""
        if address is None:
            return None
        return self._by_address.get((chain_id, address.lower()))

    def functions_with_selector(self, selector: str) -> list[tuple[AbiSource, AbiFunction]]:
        """Every bundled function with ``selector``, one per distinct signature (collisions kept)."""
        return list(self._by_selector.get(selector, ()))

    def named(self, fn: AbiFunction) -> AbiFunction:
        """``fn``, or a bundled function with the same signature whose parameters all have names
        when ``fn`` leaves some unnamed (WETH9's ``balanceOf(address)`` → ERC-20's ``account``)."""
        if all(p.get("name") for p in fn.inputs):
            return fn
        key = (fn.signature, id(fn))
        if key not in self._renamed:
            named = self._named.get(fn.signature)
            self._renamed[key] = replace(fn, inputs=named.inputs) if named else fn
        return self._renamed[key]

    def known(self, chain_id: int, address: str | None) -> KnownAddress | None:
        """What the bundle knows of ``address`` on ``chain_id`` (label, roles, token metadata)."""
        if address is None:
            return None
        return self._known.get((chain_id, address.lower()))

    def selectors(self) -> list[str]:
        """Every selector of the bundled ABIs."""
        return list(self._by_selector)

    @property
    def selector_count(self) -> int:
        return len(self._by_selector)


def default_samples_dir() -> Path:
    """``AUDITINF_ABI_SAMPLES`` or ``abi_samples/`` beside the package (a source checkout)."""
    env = os.environ.get("AUDITINF_ABI_SAMPLES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "abi_samples"


@lru_cache(maxsize=4)
def _registry_for(path: str) -> AbiRegistry:
    return AbiRegistry(Path(path))


def default_registry() -> AbiRegistry:
    """The process-wide registry over :func:`default_samples_dir` (loaded once)."""
    return _registry_for(str(default_samples_dir()))
