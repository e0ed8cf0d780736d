"""One real-shaped request shared by the API-surface tests: an unlimited USDC approve (calldata
encoded here with eth-abi) to a spender the registry does not know."""

from __future__ import annotations

import eth_abi
from eth_utils import function_signature_to_4byte_selector

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
SPENDER = "0x2222222222222222222222222222222222222222"
SENDER = "0x1111111111111111111111111111111111111111"
APPROVE = "0x" + (function_signature_to_4byte_selector("approve(address,uint256)")
                  + eth_abi.encode(["address", "uint256"], [SPENDER, 2**256 - 1])).hex()


def tx(**over) -> dict:
    """The approve as a transaction request body; keyword arguments override its fields."""
    return {"chain_id": 1, "from": SENDER, "to": USDC, "value": "0", "data": APPROVE, **over}
