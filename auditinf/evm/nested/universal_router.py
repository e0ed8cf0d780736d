"""Uniswap Universal Router ``execute(bytes commands, bytes[] inputs[, uint256 deadline])``.

Each byte of ``commands`` is one command: bit 7 (``FLAG_ALLOW_REVERT`` 0x80) lets it revert
without reverting the transaction, the low six bits (``COMMAND_TYPE_MASK`` 0x3f) pick the
command, and ``inputs[i]`` is that command's ABI-encoded parameters. Command ids and parameter
layouts follow ``contracts/libraries/Commands.sol`` and ``contracts/base/Dispatcher.sol`` of
github.com/Uniswap/universal-router — v1.2 (deployed at 0x3fC91A3a…7FAD) and v2.0 (0x66a9893c…A8Af).
0x00–0x0f and 0x21 (EXECUTE_SUB_PLAN) are the same in both; 0x10–0x20 differ (v1.2: NFT
marketplaces, v2: V4_SWAP and position-manager calls), so the table follows the router's address
and says which one it assumed for an unknown address. Recipient constants (``Constants.sol`` /
``ActionConstants.sol``): address(1) = ``msg.sender``, address(2) = the router itself.

V4_SWAP's ``actions`` bytes follow v4-periphery ``libraries/Actions.sol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import BadCalldata
from ..abi import AbiFunction, parse_abi
from ..decode import decode_with
from ..hexdata import checksum_address
from .model import Budget, hex_bytes

__all__ = ["Command", "decode_plan", "router_table", "MSG_SENDER", "ADDRESS_THIS", "decode_v3_path",
           "NOT_DECODED_BY_DESIGN"]

FLAG_ALLOW_REVERT = 0x80
COMMAND_TYPE_MASK = 0x3F
NOT_DECODED_BY_DESIGN = "parameters of this command are not decoded"
"""``Command.error`` of a known command whose parameter layout is not in the table (shown raw)."""
MSG_SENDER = "0x0000000000000000000000000000000000000001"
ADDRESS_THIS = "0x0000000000000000000000000000000000000002"

_A, _U, _B, _BOOL = "address", "uint256", "bytes", "bool"
_DETAILS = {"name": "details", "type": "tuple", "components": [
    {"name": "token", "type": _A}, {"name": "amount", "type": "uint160"},
    {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}]}


def _p(*specs: tuple[str, str] | dict) -> list[dict]:
    return [s if isinstance(s, dict) else {"name": s[0], "type": s[1]} for s in specs]


_SWAP_IN = _p(("recipient", _A), ("amountIn", _U), ("amountOutMin", _U))
_SWAP_OUT = _p(("recipient", _A), ("amountOut", _U), ("amountInMax", _U))
_PLAN = _p(("commands", _B), ("inputs", "bytes[]"))

# command id → (name, parameters); None = parameters not decoded (shown as raw input)
_COMMON: dict[int, tuple[str, list[dict] | None]] = {
    0x00: ("V3_SWAP_EXACT_IN", _SWAP_IN + _p(("path", _B), ("payerIsUser", _BOOL))),
    0x01: ("V3_SWAP_EXACT_OUT", _SWAP_OUT + _p(("path", _B), ("payerIsUser", _BOOL))),
    0x02: ("PERMIT2_TRANSFER_FROM", _p(("token", _A), ("recipient", _A), ("amount", "uint160"))),
    0x03: ("PERMIT2_PERMIT_BATCH", _p({"name": "permitBatch", "type": "tuple", "components": [
        dict(_DETAILS, type="tuple[]"), {"name": "spender", "type": _A}, {"name": "sigDeadline", "type": _U}]},
        ("signature", _B))),
    # v2.0 narrows SWEEP's amountMin to uint160; uint256 decodes both encodings
    0x04: ("SWEEP", _p(("token", _A), ("recipient", _A), ("amountMin", _U))),
    0x05: ("TRANSFER", _p(("token", _A), ("recipient", _A), ("value", _U))),
    0x06: ("PAY_PORTION", _p(("token", _A), ("recipient", _A), ("bips", _U))),
    0x08: ("V2_SWAP_EXACT_IN", _SWAP_IN + _p(("path", "address[]"), ("payerIsUser", _BOOL))),
    0x09: ("V2_SWAP_EXACT_OUT", _SWAP_OUT + _p(("path", "address[]"), ("payerIsUser", _BOOL))),
    # PermitSingle is a static struct: abi.encode(PermitSingle, bytes) inlines its fields
    0x0A: ("PERMIT2_PERMIT", _p(_DETAILS, ("spender", _A), ("sigDeadline", _U), ("signature", _B))),
    0x0B: ("WRAP_ETH", _p(("recipient", _A), ("amountMin", _U))),
    0x0C: ("UNWRAP_WETH", _p(("recipient", _A), ("amountMin", _U))),
    0x0D: ("PERMIT2_TRANSFER_FROM_BATCH", _p({"name": "batchDetails", "type": "tuple[]", "components": _p(
        ("from", _A), ("to", _A), ("amount", "uint160"), ("token", _A))})),
    0x0E: ("BALANCE_CHECK_ERC20", _p(("owner", _A), ("token", _A), ("minBalance", _U))),
    0x21: ("EXECUTE_SUB_PLAN", _PLAN),
}
_V1_2 = {
    0x10: ("SEAPORT_V1_5", None), 0x11: ("LOOKS_RARE_V2", None), 0x12: ("NFTX", None),
    0x13: ("CRYPTOPUNKS", None), 0x15: ("OWNER_CHECK_721", None), 0x16: ("OWNER_CHECK_1155", None),
    0x17: ("SWEEP_ERC721", None), 0x18: ("X2Y2_721", None), 0x19: ("SUDOSWAP", None), 0x1A: ("NFT20", None),
    0x1B: ("X2Y2_1155", None), 0x1C: ("FOUNDATION", None), 0x1D: ("SWEEP_ERC1155", None),
    0x1E: ("ELEMENT_MARKET", None), 0x20: ("SEAPORT_V1_4", None),
    0x22: ("APPROVE_ERC20", _p(("token", _A), ("spender", _U))),
}
_V2_0 = {
    0x10: ("V4_SWAP", _p(("actions", _B), ("params", "bytes[]"))),
    0x11: ("V3_POSITION_MANAGER_PERMIT", None), 0x12: ("V3_POSITION_MANAGER_CALL", None),
    0x13: ("V4_INITIALIZE_POOL", _p({"name": "poolKey", "type": "tuple", "components": _p(
        ("currency0", _A), ("currency1", _A), ("fee", "uint24"), ("tickSpacing", "int24"), ("hooks", _A))},
        ("sqrtPriceX96", "uint160"))),
    0x14: ("V4_POSITION_MANAGER_CALL", None),
}
_ROUTERS = {  # (chain id, lowercase address) → table version
    (1, "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad"): "v1.2",
    (1, "0xef1c6e67703c7bd7107eed8303fbe6ec2554bf6b"): "v1.2",
    (1, "0x66a9893cc07d91d95644aedd05d03f95e1dba8af"): "v2.0",
}
_V4_ACTIONS = {
    0x00: "INCREASE_LIQUIDITY", 0x01: "DECREASE_LIQUIDITY", 0x02: "MINT_POSITION", 0x03: "BURN_POSITION",
    0x04: "INCREASE_LIQUIDITY_FROM_DELTAS", 0x05: "MINT_POSITION_FROM_DELTAS", 0x06: "SWAP_EXACT_IN_SINGLE",
    0x07: "SWAP_EXACT_IN", 0x08: "SWAP_EXACT_OUT_SINGLE", 0x09: "SWAP_EXACT_OUT", 0x0A: "DONATE",
    0x0B: "SETTLE", 0x0C: "SETTLE_ALL", 0x0D: "SETTLE_PAIR", 0x0E: "TAKE", 0x0F: "TAKE_ALL",
    0x10: "TAKE_PORTION", 0x11: "TAKE_PAIR", 0x12: "CLOSE_CURRENCY", 0x13: "CLEAR_OR_TAKE", 0x14: "SWEEP",
    0x15: "WRAP", 0x16: "UNWRAP", 0x17: "MINT_6909", 0x18: "BURN_6909",
}
# V4 actions whose parameters name a recipient (v4-periphery V4Router / DeltaResolver)
_V4_PARAMS = {
    "TAKE": _p(("currency", _A), ("recipient", _A), ("amount", _U)),
    "TAKE_PORTION": _p(("currency", _A), ("recipient", _A), ("bips", _U)),
    "SWEEP": _p(("currency", _A), ("to", _A)),
}


_LAYOUTS: dict[int, AbiFunction] = {}


def _decode_params(name: str, params: list[dict], data: bytes) -> tuple[dict, tuple]:
    """Decode ``data`` as the ABI tuple ``params`` through :func:`decode_with` (same strictness and
    bounds as calldata); the pseudo-function per parameter list is built once."""
    fn = _LAYOUTS.get(id(params))
    if fn is None:
        fn = _LAYOUTS[id(params)] = parse_abi([{"type": "function", "name": name, "inputs": params}])[0]
    decoded = decode_with(fn, b"\x00\x00\x00\x00" + data)
    return decoded.args, decoded.values


def router_table(chain_id: int, address: str | None) -> tuple[str, dict[int, tuple[str, list[dict] | None]], bool]:
    """``(version, command table, known)`` for the router at ``address``; unknown routers get v2.0."""
    version = _ROUTERS.get((chain_id, (address or "").lower()))
    known = version is not None
    version = version or "v2.0"
    return version, {**_COMMON, **(_V1_2 if version == "v1.2" else _V2_0)}, known


def decode_v3_path(path: bytes) -> list[Any]:
    """Uniswap v3 path ``token (20) ‖ (fee (3) ‖ token (20))*`` → ``[token, fee, token, …]``
    (fee in hundredths of a bip: 500 = 0.05 %). Raises :class:`BadCalldata` on a bad length."""
    if len(path) < 43 or (len(path) - 20) % 23:
        raise BadCalldata(f"V3 path of {len(path)} bytes is not token(20) ‖ (fee(3) ‖ token(20))+", field="data")
    out: list[Any] = [checksum_address(path[:20])]
    for pos in range(20, len(path), 23):
        out += [int.from_bytes(path[pos : pos + 3], "big"), checksum_address(path[pos + 3 : pos + 23])]
    return out


@dataclass(frozen=True)
class Command:
    """One decoded router command. ``decoded`` maps parameter name → JSON-safe value (``path`` of a
    V3 swap as ``[token, fee, token, …]``); ``sub_plan`` holds EXECUTE_SUB_PLAN's commands,
    ``actions`` V4_SWAP's actions; ``error`` says why the input did not decode."""

    index: int
    path: str
    byte: int
    name: str
    allow_revert: bool
    decoded: dict[str, Any] | None = None
    error: str | None = None
    sub_plan: tuple["Command", ...] = ()
    actions: tuple[dict, ...] = ()
    input_bytes: int = 0

    @property
    def recipient(self) -> str | None:
        return (self.decoded or {}).get("recipient")

    def walk(self):
        """This command and every command of its sub-plans, depth first."""
        yield self
        for sub in self.sub_plan:
            yield from sub.walk()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "path": self.path, "byte": f"0x{self.byte:02x}",
                               "name": self.name, "allow_revert": self.allow_revert, "decoded": self.decoded}
        if self.error:
            out["error"] = self.error
        if self.sub_plan:
            out["sub_plan"] = [c.to_dict() for c in self.sub_plan]
        if self.actions:
            out["actions"] = list(self.actions)
        return out


def _v4_actions(args: dict) -> tuple[dict, ...]:
    actions = hex_bytes(args["actions"], "V4 actions")
    params = args["params"]
    if len(actions) != len(params):
        raise BadCalldata(f"V4_SWAP has {len(actions)} actions but {len(params)} params", field="data")
    out = []
    for i, (action, param) in enumerate(zip(actions, params)):
        name = _V4_ACTIONS.get(action, f"UNKNOWN_0x{action:02x}")
        entry: dict[str, Any] = {"index": i, "byte": f"0x{action:02x}", "name": name}
        if name in _V4_PARAMS:
            entry["decoded"] = _decode_params(name, _V4_PARAMS[name], hex_bytes(param, "V4 params"))[0]
        else:
            entry["params_bytes"] = (len(param) - 2) // 2
        out.append(entry)
    return tuple(out)


def _one(index: int, prefix: str, byte: int, data: bytes, table: dict, budget: Budget, depth: int,
         max_depth: int) -> Command:
    path = f"{prefix}{index}"
    kind = byte & COMMAND_TYPE_MASK
    name, params = table.get(kind, (f"UNKNOWN_0x{kind:02x}", None))
    base = dict(index=index, path=path, byte=byte, name=name, allow_revert=bool(byte & FLAG_ALLOW_REVERT),
                input_bytes=len(data))
    if params is None:
        return Command(**base, error=NOT_DECODED_BY_DESIGN)
    try:
        args, _ = _decode_params(name, params, data)
        if name == "PERMIT2_PERMIT_BATCH":  # flatten like PERMIT2_PERMIT: details, spender, sigDeadline
            args = {**args["permitBatch"], "signature": args["signature"]}
        if name in ("V3_SWAP_EXACT_IN", "V3_SWAP_EXACT_OUT"):
            args = {**args, "path": decode_v3_path(hex_bytes(args["path"], "V3 path"))}
        if name == "V4_SWAP":
            return Command(**base, decoded=args, actions=_v4_actions(args))
        if name == "EXECUTE_SUB_PLAN":
            if depth >= max_depth:
                return Command(**base, decoded=args, error=f"sub-plan nested deeper than {max_depth} levels "
                                                           "is not decoded")
            sub = decode_plan(hex_bytes(args["commands"], "sub-plan commands"),
                              [hex_bytes(x, "sub-plan input") for x in args["inputs"]],
                              table, budget, depth + 1, max_depth, prefix=f"{path}.")
            return Command(**base, decoded=args, sub_plan=sub)
    except BadCalldata as exc:
        return Command(**base, error=exc.message)
    return Command(**base, decoded=args)


def decode_plan(commands: bytes, inputs: list[bytes], table: dict, budget: Budget, depth: int, max_depth: int,
                prefix: str = "") -> tuple[Command, ...]:
    """Decode a command list. Raises :class:`BadCalldata` when ``commands`` and ``inputs`` differ in
    length (the router reverts with ``LengthMismatch``). Commands beyond the budget are left out
    (``budget.truncated`` is then set)."""
    if len(commands) != len(inputs):
        raise BadCalldata(f"Universal Router plan has {len(commands)} commands but {len(inputs)} inputs "
                          "(the router reverts: LengthMismatch)", field="data")
    out = []
    for index, (byte, data) in enumerate(zip(commands, inputs)):
        if not budget.take(len(data)):
            break
        out.append(_one(index, prefix, byte, data, table, budget, depth, max_depth))
    return tuple(out)
