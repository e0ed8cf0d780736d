"""A transaction as a wallet submits it for analysis (``eth_sendTransaction`` params shape).

A type-4 (EIP-7702 set-code) request may carry ``authorizationList``: ``[{chainId, address,
nonce, yParity?, r?, s?}]`` (the JSON-RPC field names); each entry makes the signing account run
``address``'s code. Only chainId, address and nonce are kept (the signature parts are not needed
to judge the risk and are not stored).

``value`` is in wei: a decimal string (``"1250000000000000000"``), a ``0x`` hex quantity
(``"0x1158e460913d0000"``, as JSON-RPC sends it) or a JSON integer. ``data`` is ``0x`` hex
calldata; ``"0x"`` (or absent) is a plain native transfer. ``to`` absent means contract creation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_utils import is_checksum_address

from ..errors import InputError
from .hexdata import checksum_address, parse_hex

__all__ = ["Transaction", "Authorization", "parse_transaction", "parse_counterparties", "parse_address", "MAX_CALLDATA_BYTES"]

MAX_CALLDATA_BYTES = 128 * 1024
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
# 2^128 wei ≈ 3.4e20 ETH, far beyond any balance: larger values are not amounts (a 32-byte key
# pasted as a number looks like one), and are refused rather than recorded.
_MAX_WEI = 2**128 - 1
_MAX_CHAIN_ID = 2**53 - 1
_MAX_AUTHORIZATIONS = 64


@dataclass(frozen=True)
class Authorization:
    """One EIP-7702 authorisation tuple: ``chain_id`` 0 means valid on every chain. ``chain_id`` is
    a uint256 (EIP-7702), so :meth:`to_dict` gives it as a decimal string like ``nonce``."""

    chain_id: int
    address: str
    nonce: int

    def to_dict(self) -> dict:
        return {"chainId": str(self.chain_id), "address": self.address, "nonce": str(self.nonce)}


@dataclass(frozen=True)
class Transaction:
    chain_id: int
    sender: str | None
    to: str | None
    value: int  # wei
    data: bytes
    authorizations: tuple[Authorization, ...] = ()

    def to_dict(self) -> dict:
        """JSON form with ``value`` as a decimal wei string (``authorizationList`` when present)."""
        out = {
            "chain_id": self.chain_id,
            "from": self.sender,
            "to": self.to,
            "value": str(self.value),
            "data": "0x" + self.data.hex(),
        }
        if self.authorizations:
            out["authorizationList"] = [a.to_dict() for a in self.authorizations]
        return out


def _quantity(value: Any, field: str, limit: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"0[xX][0-9a-fA-F]{1,64}|[0-9]{1,78}", value):
        number = int(value, 0) if value[:2].lower() == "0x" else int(value)
    else:
        raise InputError(f"{field} must be an integer or 0x quantity", code="invalid_authorization", field=field)
    if not 0 <= number <= limit:
        raise InputError(f"{field} is out of range", code="invalid_authorization", field=field)
    return number


def _authorizations(raw: Any) -> tuple[Authorization, ...]:
    """EIP-7702 ``authorizationList``: chain id ≤ 2^256−1, nonce ≤ 2^64−1 (the EIP's bounds)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > _MAX_AUTHORIZATIONS:
        raise InputError(f"authorizationList must be a list of at most {_MAX_AUTHORIZATIONS} entries",
                         code="invalid_authorization", field="authorizationList")
    out = []
    for i, item in enumerate(raw):
        where = f"authorizationList[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where} must be an object", code="invalid_authorization", field=where)
        out.append(Authorization(chain_id=_quantity(item.get("chainId"), f"{where}.chainId", 2**256 - 1),
                                 address=parse_address(item.get("address"), f"{where}.address"),
                                 nonce=_quantity(item.get("nonce"), f"{where}.nonce", 2**64 - 1)))
    return tuple(out)


def parse_address(value: Any, field: str) -> str:
    """EIP-55 checksummed address; raises ``invalid_address`` for bad length/hex or a bad checksum.

    All-lowercase and all-uppercase hex carry no checksum and are accepted (EIP-55).
    """
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise InputError(f"{field} must be a 0x-prefixed 20-byte hex address", code="invalid_address", field=field)
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise InputError(f"{field} has an invalid EIP-55 checksum", code="invalid_address", field=field)
    return checksum_address(value)


def _parse_wei(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InputError("value must be wei as a decimal string or 0x quantity", code="invalid_value", field="value")
    if isinstance(value, int):
        wei = value
    elif isinstance(value, str) and re.fullmatch(r"0[xX][0-9a-fA-F]{1,32}", value):
        wei = int(value, 16)
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,39}", value):
        wei = int(value)
    else:
        raise InputError("value must be wei as a decimal string or 0x quantity", code="invalid_value", field="value")
    if not 0 <= wei <= _MAX_WEI:
        raise InputError("value is outside 0..2^128-1 wei (more ETH than exists)", code="invalid_value",
                         field="value")
    return wei


def parse_transaction(body: dict) -> Transaction:
    """Validate a transaction object; raises :class:`InputError` subclasses with the field named.

    Codes: ``invalid_address``, ``invalid_value``, ``invalid_chain_id``, ``invalid_hex``,
    ``odd_length_hex``, ``request_too_large`` (calldata over 128 KiB), ``invalid_authorization``.
    """
    chain_id = body.get("chain_id", 1)
    if isinstance(chain_id, str) and re.fullmatch(r"0x[0-9a-fA-F]{1,14}", chain_id):
        chain_id = int(chain_id, 16)
    elif isinstance(chain_id, str) and re.fullmatch(r"[0-9]{1,16}", chain_id):
        chain_id = int(chain_id, 10)
    # EIP-155 chain ids; capped at 2^53−1 so that records stay RFC 8785 (I-JSON) numbers
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or not 0 < chain_id <= _MAX_CHAIN_ID:
        raise InputError("chain_id must be an integer from 1 to 2^53-1", code="invalid_chain_id", field="chain_id")
    data = body.get("data")
    if data is not None and not isinstance(data, str):
        raise InputError("data must be a 0x hex string", code="invalid_hex", field="data")
    sender = body.get("from")
    to = body.get("to")
    return Transaction(
        chain_id=chain_id,
        sender=parse_address(sender, "from") if sender is not None else None,
        to=parse_address(to, "to") if to is not None else None,
        value=_parse_wei(body.get("value")),
        data=parse_hex(data if data is not None else "0x", field="data", max_bytes=MAX_CALLDATA_BYTES),
        authorizations=_authorizations(body.get("authorizationList")),
    )


def parse_counterparties(raw: Any) -> tuple[str, ...]:
    """``known_counterparties``: addresses the signer deals with (its recent recipients, its own
    accounts), checked for look-alikes. At most 1,000; raises ``invalid_address``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > 1000:
        raise InputError("known_counterparties must be a list of at most 1000 addresses", code="invalid_address",
                         field="known_counterparties")
    out = []
    for i, address in enumerate(raw):  # history entries: format checked, checksum not required
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise InputError(f"known_counterparties[{i}] must be a 0x-prefixed 20-byte hex address",
                             code="invalid_address", field=f"known_counterparties[{i}]")
        out.append(checksum_address(address))
    return tuple(out)
