"""The bundled selector table: 4-byte selector → every known signature, ranked, never one silent pick.

Built from ``abi_samples/selectors.json`` (standards and drainer names, selectors computed here
with keccak-256 of the canonical signature per the Solidity ABI spec) together with every
function of the bundled ABIs. :meth:`SelectorTable.candidates` ranks the signatures sharing a
selector by how well the calldata fits them: strict decoding with no trailing bytes first, then
strict decoding with trailing bytes; signatures the calldata cannot be are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import eth_abi
from eth_abi.grammar import parse as parse_type
from eth_utils import keccak

from ..errors import BadCalldata
from ._bounds import check_bounds
from .registry import AbiRegistry, default_registry

__all__ = ["SelectorEntry", "SelectorTable", "selector_table", "DRAINER_TAG"]

DRAINER_TAG = "drainer_name"
_DECODE_ERRORS = (eth_abi.exceptions.DecodingError, OverflowError, UnicodeDecodeError, ValueError, BadCalldata)


@dataclass(frozen=True)
class SelectorEntry:
    signature: str
    name: str
    types: tuple[str, ...]
    source: str
    tags: frozenset[str] = frozenset()


def _split_types(signature: str) -> tuple[str, ...]:
    inner = signature[signature.index("(") + 1 : -1]
    if not inner:
        return ()
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return tuple(parts)


class SelectorTable:
    """Selectors of the bundled table file and bundled ABIs; order of first appearance is the rank
    among equally fitting candidates (standards before drainer names)."""

    def __init__(self, table_file: Path, registry: AbiRegistry) -> None:
        self._by_selector: dict[str, list[SelectorEntry]] = {}
        doc = json.loads(table_file.read_text())
        for group in doc["entries"]:
            tags = frozenset(group.get("tags", ()))
            for signature in group["signatures"]:
                self._add(signature, f"abi_samples/selectors.json: {group['standard']}", tags)
        for selector in registry.selectors():
            for source, fn in registry.functions_with_selector(selector):
                self._add(fn.signature, source.file or source.name, frozenset())

    def _add(self, signature: str, source: str, tags: frozenset[str]) -> None:
        selector = "0x" + keccak(text=signature)[:4].hex()
        entries = self._by_selector.setdefault(selector, [])
        if all(e.signature != signature for e in entries):
            entries.append(SelectorEntry(signature, signature.split("(")[0], _split_types(signature), source, tags))

    def __len__(self) -> int:
        return len(self._by_selector)

    def lookup(self, selector: str) -> list[SelectorEntry]:
        """Every signature with ``selector`` (``0x`` + 8 hex digits), in table order."""
        return list(self._by_selector.get(selector.lower(), ()))

    def candidates(self, data: bytes) -> list[dict]:
        """Ranked ``[{signature, name, source, tags, rank, trailing_bytes}]`` for calldata ``data``
        (selector ‖ arguments): only signatures whose argument types decode ``data`` strictly."""
        fits: list[tuple[int, int, SelectorEntry]] = []
        args = data[4:]
        for order, entry in enumerate(self.lookup("0x" + data[:4].hex())):
            try:
                extent = check_bounds([parse_type(t) for t in entry.types], args)
                eth_abi.decode(list(entry.types), args, strict=True)
            except _DECODE_ERRORS:
                continue
            fits.append((len(args) - extent, order, entry))
        fits.sort(key=lambda f: (f[0] > 0, f[1]))
        return [{"signature": e.signature, "name": e.name, "source": e.source, "tags": sorted(e.tags),
                 "rank": rank + 1, "trailing_bytes": trailing}
                for rank, (trailing, _, e) in enumerate(fits)]


@lru_cache(maxsize=4)
def selector_table(registry: AbiRegistry | None = None) -> SelectorTable:
    """The table over ``selectors.json`` beside ``registry``'s ABIs (default: the bundled
    registry), built once per registry."""
    registry = registry or default_registry()
    return SelectorTable(registry.samples_dir / "selectors.json", registry)
