"""EIP-712 typed data: strict validation, hashes (eth-account), recognition of standard shapes."""

from .hashing import TypedDataHashes, hash_typed_data, personal_message_digest
from .recognise import Grant, Reading, amount_text, field_listing, read_typed_data, time_text
from .schema import TypedData, parse_typed_data

__all__ = ["TypedData", "parse_typed_data", "TypedDataHashes", "hash_typed_data", "personal_message_digest",
           "Grant", "Reading", "read_typed_data", "field_listing", "amount_text", "time_text"]
