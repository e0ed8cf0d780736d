"""EIP-712 hashes of validated typed data, computed by eth-account (never re-implemented here).

- domain separator = ``hashStruct(eip712Domain)`` (EIP-712 "Definition of domainSeparator");
- struct hash = ``hashStruct(message)`` of the primary type;
- digest = ``keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))`` (EIP-712 §
  "Specification of the eth_signTypedData JSON RPC", EIP-191 version 0x01): what the wallet signs.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data

from ...errors import BadTypedData
from .schema import TypedData

__all__ = ["TypedDataHashes", "hash_typed_data", "personal_message_digest"]


@dataclass(frozen=True)
class TypedDataHashes:
    domain_separator: str  # 0x + 32 bytes hex
    struct_hash: str
    digest: str

    def to_dict(self) -> dict[str, str]:
        return {"domain_separator": self.domain_separator, "struct_hash": self.struct_hash, "digest": self.digest}


def hash_typed_data(typed: TypedData) -> TypedDataHashes:
    """The three EIP-712 hashes of ``typed`` (0x hex). Raises ``invalid_typed_data`` if eth-account
    refuses data the validator accepted (it should not happen; it is never a 500)."""
    try:
        signable = encode_typed_data(full_message=typed.native)
        digest = _hash_eip191_message(signable)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadTypedData(f"typed data cannot be hashed: {type(exc).__name__}", field="typed_data") from exc
    return TypedDataHashes("0x" + bytes(signable.header).hex(), "0x" + bytes(signable.body).hex(),
                           "0x" + bytes(digest).hex())


def personal_message_digest(message: bytes) -> str:
    """EIP-191 version 0x45 digest of ``personal_sign``: keccak256("\\x19Ethereum Signed Message:\\n"
    ‖ len ‖ message), via eth-account's ``encode_defunct``."""
    return "0x" + bytes(_hash_eip191_message(encode_defunct(primitive=message))).hex()
