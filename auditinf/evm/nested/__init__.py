"""Nested calls: batches (Multicall, Multicall3, Safe execTransaction / multiSend) and Uniswap
Universal Router command plans, decoded recursively with paths like ``0.2.1``."""

from .batches import PartialBatch, parse_multisend, split_multisend
from .model import MAX_INNER_CALLS, MAX_NESTING_DEPTH, Budget, Frame, InnerSpec
from .tree import InnerCall, expand
from .universal_router import ADDRESS_THIS, MSG_SENDER, Command, decode_v3_path

__all__ = ["parse_multisend", "split_multisend", "PartialBatch", "MAX_INNER_CALLS", "MAX_NESTING_DEPTH", "Budget",
           "Frame", "InnerSpec", "InnerCall", "expand", "ADDRESS_THIS", "MSG_SENDER", "Command", "decode_v3_path"]
