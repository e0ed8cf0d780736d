"""Chain context for the service: which node a request reads, which addresses it asks about, and
the RPC tool calls its record keeps (see :mod:`auditinf.evm.chain_source`, :mod:`auditinf.evm.context`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .evm.calls import CallAnalysis
from .evm.chain import ChainFacts
from .evm.chain_source import facts_for_request
from .evm.context import request_context
from .evm.tx import Transaction
from .evm.typed import Reading

if TYPE_CHECKING:
    from .evm.signing import SigningRequest
    from .service import Service

__all__ = ["chain_for", "transaction_chain_context", "signing_chain_context", "rpc_tool_calls", "chain_provenance"]

# ERC-20 calls (EIP-20; increase/decreaseAllowance from OpenZeppelin): index of the spender/recipient
# argument and of the amount
_TOKEN_CALLS = {"approve(address,uint256)": ("spender", 0, 1), "transfer(address,uint256)": ("recipient", 0, 1),
                "transferFrom(address,address,uint256)": ("recipient", 1, 2),
                "increaseAllowance(address,uint256)": ("spender", 0, 1),
                "decreaseAllowance(address,uint256)": ("spender", 0, 1),
                "setApprovalForAll(address,bool)": ("operator", 0, None)}


def chain_for(service: Service, body: dict) -> ChainFacts:
    """The chain facts this request reads: its ``rpc_url`` (if the policy allows), the operator's
    ``AUDITINF_RPC_URL``, or the service's configured facts."""
    return facts_for_request(body, default=service.chain, settings_url=service.settings.rpc_url,
                             chain_policy=service.policy.chain)


def transaction_chain_context(chain: ChainFacts, tx: Transaction, call: CallAnalysis
                              ) -> tuple[dict[str, Any], list[str]]:
    """Context of ``to`` (a token when the call is an ERC-20 one, with the amount formatted) and of
    the spender/recipient/operator the call names."""
    if tx.to is None:
        return {}, []
    decoded = call.decoded
    shape = _TOKEN_CALLS.get(decoded.signature) if decoded is not None else None
    if shape is None:
        return request_context(chain, tx.chain_id, [("to", tx.to, False, None)])
    role, at, amount_at = shape
    amount = int(decoded.values[amount_at]) if amount_at is not None else None
    return request_context(chain, tx.chain_id, [("to", tx.to, amount_at is not None, amount),
                                                (role, decoded.values[at], False, None)])


def signing_chain_context(chain: ChainFacts, chain_id: int, request: SigningRequest, reading: Reading | None
                          ) -> tuple[dict[str, Any], list[str]]:
    """Context of the typed data's verifying contract and of each token and spender it grants."""
    if request.typed is None or reading is None:
        return {}, []
    roles: list[tuple[str, str, bool, int | None]] = []
    if request.typed.verifying_contract:
        roles.append(("verifying_contract", request.typed.verifying_contract, False, None))
    for i, grant in enumerate(reading.grants):
        roles.append((f"grants[{i}].token", grant.token, True, grant.amount))
        roles.append((f"grants[{i}].spender", grant.spender, False, None))
    return request_context(chain, chain_id, roles)


def rpc_tool_calls(chain: ChainFacts, private: bool) -> list[dict[str, Any]]:
    """The RPC calls to record; a private record keeps method, block and result hash, not params."""
    calls = list(getattr(chain, "tool_calls", []))
    if private:
        return [{k: v for k, v in c.items() if k != "params"} for c in calls]
    return calls


def chain_provenance(chain: ChainFacts, consulted: list[dict]) -> dict[str, Any]:
    """The record's chain-facts provenance (a private record seals its whole provenance in the vault)."""
    return {"input": "chain_facts", "source": chain.source, "consulted": consulted}
