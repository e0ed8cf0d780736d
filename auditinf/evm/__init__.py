"""Deterministic EVM analysis: hex parsing, ABI method extraction, calldata decoding, bytecode."""

from .abi import AbiFunction, method_entry, parse_abi
from .bytecode import methods_from_bytecode
from .calls import CallAnalysis, analyse_call
from .decode import UINT160_MAX, UINT256_MAX, DecodedCall, decode_with
from .hexdata import parse_hex, to_hex
from .registry import AbiRegistry, AbiSource, KnownAddress, default_registry
from .tx import Transaction, parse_address, parse_transaction

__all__ = [
    "AbiFunction", "method_entry", "parse_abi", "methods_from_bytecode", "CallAnalysis",
    "analyse_call", "UINT160_MAX", "UINT256_MAX", "DecodedCall", "decode_with", "parse_hex",
    "to_hex", "AbiRegistry", "AbiSource", "KnownAddress", "default_registry", "Transaction",
    "parse_address", "parse_transaction",
]
