"""Runtime bytecode → methods, when no ABI is known (evmole).

evmole recovers selectors, argument types and state mutability from the dispatcher and the
function bodies. Names are resolved from the bundled ABIs and the bundled selector table
(:mod:`.selectors`) by selector: a name is given only when exactly one known signature has this
selector and evmole's argument types; every signature with the selector is listed in
``candidates``, those matching the argument types first (never a silent pick).
"""

from __future__ import annotations

from functools import lru_cache

import evmole

from ..errors import BadBytecode
from .hexdata import parse_hex
from .registry import AbiRegistry
from .selectors import selector_table

__all__ = ["methods_from_bytecode", "selector_mutabilities", "MAX_BYTECODE_BYTES"]

# EIP-170 caps deployed code at 24,576 bytes; EIP-7907 proposes 48 KiB. Twice EIP-170 plus slack
# keeps evmole's work (and the record) bounded for crafted dispatchers with thousands of entries.
MAX_BYTECODE_BYTES = 64 * 1024
MAX_METHODS = 1000
_PUSH1, _PUSH4, _PUSH32 = 0x60, 0x63, 0x7F


def _push4_count(code: bytes) -> int:
    """PUSH4 instructions in a linear sweep (push data skipped): an upper bound on dispatch entries."""
    count = pos = 0
    while pos < len(code):
        op = code[pos]
        count += op == _PUSH4
        pos += 1 + (op - _PUSH1 + 1 if _PUSH1 <= op <= _PUSH32 else 0)
    return count


def methods_from_bytecode(code_hex: str, registry: AbiRegistry) -> list[dict]:
    """List the public functions of runtime bytecode.

    Returns ``[{selector, arguments, signature, name, candidates, state_mutability}]`` sorted by
    selector; ``arguments`` is evmole's canonical type list (``"address,uint256"``), ``signature``
    and ``name`` are set when the bundled ABIs know exactly one signature with this selector
    and the same argument types. Raises :class:`BadBytecode` for empty or non-hex code.
    """
    code = parse_hex(code_hex, field="bytecode", max_bytes=MAX_BYTECODE_BYTES)
    if not code:
        raise BadBytecode("bytecode is empty (an EOA or a destroyed contract has no methods)", field="bytecode")
    if _push4_count(code) > 2 * MAX_METHODS:  # refuse crafted dispatchers before the costly analysis
        raise BadBytecode(f"bytecode holds more than {2 * MAX_METHODS} PUSH4 constants; not a real contract",
                          field="bytecode")
    try:
        info = evmole.contract_info(code, selectors=True, arguments=True, state_mutability=True)
    except Exception as exc:  # evmole raises plain Exceptions from Rust on malformed input
        raise BadBytecode(f"bytecode could not be analysed: {exc}", field="bytecode") from exc
    functions = info.functions or []
    if len(functions) > MAX_METHODS:
        raise BadBytecode(f"bytecode dispatches {len(functions)} selectors, more than {MAX_METHODS}", field="bytecode")
    table = selector_table(registry)
    methods = []
    for fn in sorted(functions, key=lambda f: f.selector):
        selector = "0x" + fn.selector
        known = table.lookup(selector)
        matching = [e for e in known if ",".join(e.types) == fn.arguments]
        chosen = matching[0] if len(matching) == 1 else None
        ranked = matching + [e for e in known if e not in matching]
        methods.append({
            "selector": selector,
            "arguments": fn.arguments,
            "state_mutability": fn.state_mutability,
            "name": chosen.name if chosen else None,
            "signature": chosen.signature if chosen else None,
            "candidates": [e.signature for e in ranked],
        })
    return methods


@lru_cache(maxsize=256)
def selector_mutabilities(code: bytes) -> dict[str, str] | None:
    """``{"0x…selector": state_mutability}`` of deployed ``code`` per evmole, or ``None`` when the
    code is too large, dispatches implausibly many selectors or cannot be analysed (cached by code)."""
    if not code or len(code) > MAX_BYTECODE_BYTES or _push4_count(code) > 2 * MAX_METHODS:
        return None
    try:
        info = evmole.contract_info(code, selectors=True, state_mutability=True)
    except Exception:  # evmole raises plain Exceptions from Rust on malformed input
        return None
    return {"0x" + fn.selector: fn.state_mutability for fn in info.functions or []}
