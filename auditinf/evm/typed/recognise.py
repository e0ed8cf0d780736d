"""What a typed-data signature grants: recognise well-known EIP-712 shapes and read them.

A shape is recognised only when the primary type *and* every struct it uses carry exactly the
field types and names of the standard (the type hash covers both, so a contract that checks the
standard's signature accepts nothing else):

| standard                         | primary type                | source                           |
|----------------------------------|-----------------------------|----------------------------------|
| ``eip2612_permit``               | Permit(owner,spender,value,nonce,deadline) | EIP-2612          |
| ``dai_permit``                   | Permit(holder,spender,nonce,expiry,allowed) | DAI (allowed ⇒ unlimited) |
| ``permit2_single``/``_batch``    | PermitSingle / PermitBatch  | Permit2 AllowanceTransfer        |
| ``permit2_transfer``/``_batch_transfer`` | PermitTransferFrom / PermitBatchTransferFrom | Permit2 SignatureTransfer |
| ``permit2_witness_transfer``/``_batch_witness_transfer`` | Permit(Batch)WitnessTransferFrom | … with a witness |
| ``seaport_order``                | OrderComponents             | Seaport 1.5/1.6                  |
| ``safe_tx``                      | SafeTx                      | Safe (``baseGas`` or legacy ``dataGas``) |

Anything else is read generically: every field listed with its path and type (:func:`field_listing`).
Amounts are ints in token base units; times are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .schema import TypedData

__all__ = ["Grant", "Reading", "read_typed_data", "field_listing", "amount_text", "time_text", "YEAR_9999"]

YEAR_9999 = 253402300799  # 9999-12-31T23:59:59Z, the last second ISO 8601 years can show

_DETAILS = {"PermitDetails": ("address token", "uint160 amount", "uint48 expiration", "uint48 nonce")}
_PERMS = {"TokenPermissions": ("address token", "uint256 amount")}
_TRANSFER = ("TokenPermissions permitted", "address spender", "uint256 nonce", "uint256 deadline")
_BATCH_TRANSFER = ("TokenPermissions[] permitted", "address spender", "uint256 nonce", "uint256 deadline")
_SAFE = ("address to", "uint256 value", "bytes data", "uint8 operation", "uint256 safeTxGas", "uint256 {gas}",
         "uint256 gasPrice", "address gasToken", "address refundReceiver", "uint256 nonce")
_OFFER = ("uint8 itemType", "address token", "uint256 identifierOrCriteria", "uint256 startAmount",
          "uint256 endAmount")

# standard → (recognised_as, primary type, {type: fields}, witness field expected after the fields)
_SHAPES: list[tuple[str, str, str, dict[str, tuple[str, ...]], bool]] = [
    ("eip2612_permit", "EIP-2612 permit", "Permit",
     {"Permit": ("address owner", "address spender", "uint256 value", "uint256 nonce", "uint256 deadline")}, False),
    ("dai_permit", "DAI permit (allowed=true is unlimited)", "Permit",
     {"Permit": ("address holder", "address spender", "uint256 nonce", "uint256 expiry", "bool allowed")}, False),
    ("permit2_single", "Permit2 PermitSingle (AllowanceTransfer.permit)", "PermitSingle",
     {"PermitSingle": ("PermitDetails details", "address spender", "uint256 sigDeadline"), **_DETAILS}, False),
    ("permit2_batch", "Permit2 PermitBatch (AllowanceTransfer.permit)", "PermitBatch",
     {"PermitBatch": ("PermitDetails[] details", "address spender", "uint256 sigDeadline"), **_DETAILS}, False),
    ("permit2_transfer", "Permit2 PermitTransferFrom (SignatureTransfer)", "PermitTransferFrom",
     {"PermitTransferFrom": _TRANSFER, **_PERMS}, False),
    ("permit2_batch_transfer", "Permit2 PermitBatchTransferFrom (SignatureTransfer)", "PermitBatchTransferFrom",
     {"PermitBatchTransferFrom": _BATCH_TRANSFER, **_PERMS}, False),
    ("permit2_witness_transfer", "Permit2 PermitWitnessTransferFrom (SignatureTransfer)",
     "PermitWitnessTransferFrom", {"PermitWitnessTransferFrom": _TRANSFER, **_PERMS}, True),
    ("permit2_batch_witness_transfer", "Permit2 PermitBatchWitnessTransferFrom (SignatureTransfer)",
     "PermitBatchWitnessTransferFrom", {"PermitBatchWitnessTransferFrom": _BATCH_TRANSFER, **_PERMS}, True),
    ("seaport_order", "Seaport OrderComponents (listing/offer signature)", "OrderComponents",
     {"OrderComponents": ("address offerer", "address zone", "OfferItem[] offer",
                          "ConsiderationItem[] consideration", "uint8 orderType", "uint256 startTime",
                          "uint256 endTime", "bytes32 zoneHash", "uint256 salt", "bytes32 conduitKey",
                          "uint256 counter"),
      "OfferItem": _OFFER, "ConsiderationItem": _OFFER + ("address recipient",)}, False),
    ("safe_tx", "Safe SafeTx (multisig transaction)", "SafeTx",
     {"SafeTx": tuple(f.format(gas="baseGas") for f in _SAFE)}, False),
    ("safe_tx", "Safe SafeTx (multisig transaction, pre-1.0 dataGas)", "SafeTx",
     {"SafeTx": tuple(f.format(gas="dataGas") for f in _SAFE)}, False),
]
_SEAPORT_ITEM_TYPES = {0: "NATIVE", 1: "ERC20", 2: "ERC721", 3: "ERC1155", 4: "ERC721_WITH_CRITERIA",
                       5: "ERC1155_WITH_CRITERIA"}


@dataclass(frozen=True)
class Grant:
    """A right to move the signer's tokens that the signature gives ``spender``.

    ``kind``: ``allowance`` (EIP-2612/DAI/Permit2 AllowanceTransfer: spend until revoked or
    expired) or ``transfer`` (Permit2 SignatureTransfer: one pull of up to ``amount``).
    ``amount_bits``: width of the amount type (its maximum, 2^bits−1, means unlimited).
    ``expires``: Unix seconds after which the grant is void (``None``: never).
    """

    token: str
    spender: str
    amount: int
    amount_bits: int
    kind: str
    expires: int | None
    expires_field: str | None

    @property
    def unlimited(self) -> bool:
        """At or above half the type's range: 2^255 for uint256 (dapps use 2^255 and 2^256−2),
        2^159 for Permit2's uint160 (a 2^256−1 threshold would miss it)."""
        return self.amount >= 2 ** (self.amount_bits - 1)


@dataclass
class Reading:
    """The standard a typed message follows and what it grants."""

    standard: str | None
    recognised_as: str
    grants: list[Grant] = field(default_factory=list)
    deadlines: list[tuple[str, int, int]] = field(default_factory=list)  # (path, Unix s, type bits)
    owner: str | None = None  # the account whose tokens are granted, when the message names it
    summary: dict[str, Any] = field(default_factory=dict)
    display: dict[str, str] = field(default_factory=dict)


def _shape_matches(typed: TypedData, primary: str, shape: dict[str, tuple[str, ...]], witness: bool) -> bool:
    if typed.primary_type != primary:
        return False
    for name, fields in shape.items():
        have = tuple(f"{f['type']} {f['name']}" for f in typed.types.get(name, ()))
        if name == primary and witness:
            if len(have) != len(fields) + 1 or have[:-1] != fields or not have[-1].endswith(" witness"):
                return False
        elif have != fields:
            return False
    return True


def amount_text(amount: int, bits: int, decimals: int | None = None, symbol: str | None = None) -> str:
    """``unlimited (2^bits-1)`` at the maximum, ``unlimited`` from 2^(bits−1), else exact units."""
    if amount == 2**bits - 1:
        return f"unlimited (2^{bits}-1)"
    if amount >= 2 ** (bits - 1):
        return "unlimited"
    if decimals is not None and symbol:
        whole, frac = divmod(amount, 10**decimals)
        text = f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)
        return f"{text} {symbol}"
    return f"{amount} base units"


def time_text(seconds: int, bits: int) -> str:
    """A Unix time as ISO 8601 UTC; the type's maximum or anything past year 9999 reads as never."""
    if seconds == 2**bits - 1:
        return f"never / 9999-12-31 or later (max uint{bits})"
    if seconds > YEAR_9999:
        return "never / 9999-12-31 or later"
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def field_listing(typed: TypedData) -> list[dict[str, Any]]:
    """Every leaf of the message, in declaration order: ``[{"path", "type", "value"}]``."""
    out: list[dict[str, Any]] = []

    def walk(kind: str, value: Any, path: str) -> None:
        if kind.endswith("]"):
            element = kind[: kind.rindex("[")]
            for i, item in enumerate(value):
                walk(element, item, f"{path}[{i}]")
        elif kind in typed.types:
            for f in typed.types[kind]:
                walk(f["type"], value[f["name"]], f"{path}.{f['name']}" if path else f["name"])
        else:
            out.append({"path": path, "type": kind, "value": value})

    walk(typed.primary_type, typed.message, "")
    return out


def _permit2_details(reading: Reading, details: list[tuple[str, dict]], spender: str, deadline: int) -> None:
    for path, d in details:
        reading.grants.append(Grant(d["token"], spender, int(d["amount"]), 160, "allowance",
                                    int(d["expiration"]), f"{path}.expiration"))
        reading.deadlines.append((f"{path}.expiration", int(d["expiration"]), 48))
        reading.display[f"{path}.amount"] = amount_text(int(d["amount"]), 160)
        reading.display[f"{path}.expiration"] = time_text(int(d["expiration"]), 48)
    reading.deadlines.append(("sigDeadline", deadline, 256))
    reading.display["sigDeadline"] = time_text(deadline, 256)


def _permit2_transfers(reading: Reading, permitted: list[tuple[str, dict]], spender: str, deadline: int) -> None:
    for path, p in permitted:
        reading.grants.append(Grant(p["token"], spender, int(p["amount"]), 256, "transfer", deadline, "deadline"))
        reading.display[f"{path}.amount"] = amount_text(int(p["amount"]), 256)
    reading.deadlines.append(("deadline", deadline, 256))
    reading.display["deadline"] = time_text(deadline, 256)


def _read_known(standard: str, typed: TypedData, reading: Reading) -> None:
    msg, contract = typed.message, typed.verifying_contract
    if standard == "eip2612_permit":
        value, deadline = int(msg["value"]), int(msg["deadline"])
        reading.owner = msg["owner"]
        if contract:
            reading.grants.append(Grant(contract, msg["spender"], value, 256, "allowance", None, None))
        reading.deadlines.append(("deadline", deadline, 256))
        reading.summary = {"token": contract, "owner": msg["owner"], "spender": msg["spender"],
                           "value": msg["value"], "deadline": msg["deadline"]}
        reading.display.update(value=amount_text(value, 256), deadline=time_text(deadline, 256))
    elif standard == "dai_permit":
        expiry, allowed = int(msg["expiry"]), msg["allowed"]
        reading.owner = msg["holder"]
        if contract and allowed:  # DAI: allowed=true sets allowance to 2^256−1; false revokes
            reading.grants.append(Grant(contract, msg["spender"], 2**256 - 1, 256, "allowance", None, None))
        # expiry 0 means the signature never expires (DAI's permit checks expiry == 0 || now <= expiry)
        reading.deadlines.append(("expiry", 2**256 - 1 if expiry == 0 else expiry, 256))
        reading.summary = {"token": contract, "holder": msg["holder"], "spender": msg["spender"],
                           "allowed": allowed, "expiry": msg["expiry"]}
        reading.display.update(allowed="unlimited (2^256-1)" if allowed else "revoke (allowance set to 0)",
                               expiry="never (expiry 0)" if expiry == 0 else time_text(expiry, 256))
    elif standard in ("permit2_single", "permit2_batch"):
        details = msg["details"]
        pairs = [("details", details)] if standard == "permit2_single" else \
            [(f"details[{i}]", d) for i, d in enumerate(details)]
        _permit2_details(reading, pairs, msg["spender"], int(msg["sigDeadline"]))
        reading.summary = {"spender": msg["spender"], "sig_deadline": msg["sigDeadline"],
                           "tokens": [d["token"] for _, d in pairs]}
        if standard == "permit2_single":
            reading.summary.update(token=details["token"], amount=details["amount"],
                                   expiration=details["expiration"])
    elif standard.startswith("permit2_") and "transfer" in standard:
        permitted = msg["permitted"]
        pairs = [("permitted", permitted)] if isinstance(permitted, dict) else \
            [(f"permitted[{i}]", p) for i, p in enumerate(permitted)]
        _permit2_transfers(reading, pairs, msg["spender"], int(msg["deadline"]))
        reading.summary = {"spender": msg["spender"], "deadline": msg["deadline"], "nonce": msg["nonce"],
                           "tokens": [p["token"] for _, p in pairs]}
        if "witness" in msg:
            reading.summary["witness_type"] = typed.types[typed.primary_type][-1]["type"]
    elif standard == "seaport_order":
        _read_seaport(typed, reading)
    elif standard == "safe_tx":
        reading.summary = {"safe": contract, "to": msg["to"], "value": msg["value"],
                           "operation": "delegatecall" if int(msg["operation"]) == 1 else "call",
                           "data_bytes": (len(msg["data"]) - 2) // 2, "nonce": msg["nonce"]}


def _seaport_item(item: dict) -> dict[str, Any]:
    return {"item_type": _SEAPORT_ITEM_TYPES.get(int(item["itemType"]), f"unknown({item['itemType']})"),
            "token": item["token"], "identifier": item["identifierOrCriteria"],
            "start_amount": item["startAmount"], "end_amount": item["endAmount"],
            **({"recipient": item["recipient"]} if "recipient" in item else {})}


def _read_seaport(typed: TypedData, reading: Reading) -> None:
    msg = typed.message
    offerer = msg["offerer"]
    reading.owner = offerer
    end = int(msg["endTime"])
    reading.deadlines.append(("endTime", end, 256))
    reading.display["endTime"] = time_text(end, 256)
    to_offerer = [c for c in msg["consideration"] if c["recipient"] == offerer]
    reading.summary = {"offerer": offerer, "zone": msg["zone"], "offer": [_seaport_item(o) for o in msg["offer"]],
                       "consideration": [_seaport_item(c) for c in msg["consideration"]],
                       "consideration_to_offerer": [_seaport_item(c) for c in to_offerer],
                       "start_time": msg["startTime"], "end_time": msg["endTime"]}


def read_typed_data(typed: TypedData) -> Reading:
    """Recognise ``typed`` and read what it grants (see the module docstring)."""
    for standard, label, primary, shape, witness in _SHAPES:
        if _shape_matches(typed, primary, shape, witness):
            reading = Reading(standard, label)
            _read_known(standard, typed, reading)
            return reading
    return Reading(None, f"unrecognised typed data ({typed.primary_type})")
