"""SafeTx typed data analysed as the transaction it authorises.

A SafeTx signature (Safe's EIP-712 multisig transaction, safe-smart-account v1.3.0
``GnosisSafe.sol``) lets anyone call ``execTransaction`` on the Safe (``domain.verifyingContract``)
with the signed fields once enough owners have signed. So the message is analysed as exactly that
call: its ``execTransaction`` calldata is ABI-encoded here and goes through the transaction path
(:func:`~auditinf.evm.analyse_call`, then :func:`~auditinf.risk.rules.evaluate`) — the same
decoding, nesting (MultiSend, Multicall, router plans) and rules — so wrapping a call in a SafeTx
never lowers its risk. Findings of the Safe's own call carry no path; the call it runs is path ``0``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import eth_abi
from eth_utils import function_signature_to_4byte_selector

from ..evm.calls import analyse_call
from ..evm.tx import Transaction
from .findings import Finding
from .rules import RuleContext, evaluate

if TYPE_CHECKING:  # pragma: no cover
    from .typed_rules import SigningContext

__all__ = ["safe_tx_findings", "EXEC_TRANSACTION"]

EXEC_TRANSACTION = "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]
_SELECTOR = function_signature_to_4byte_selector(EXEC_TRANSACTION)


def exec_transaction(ctx: "SigningContext") -> Transaction | None:
    """The ``execTransaction`` call the SafeTx authorises, sent by the signer to the Safe (value 0;
    the signatures argument left empty: no rule reads it). ``None`` without a verifying contract."""
    typed = ctx.request.typed
    safe = typed.verifying_contract if typed is not None else None
    if safe is None:
        return None
    m = typed.native["message"]
    gas = m["baseGas"] if "baseGas" in m else m["dataGas"]  # pre-1.0 Safes name it dataGas
    args = [m["to"], m["value"], m["data"], m["operation"], m["safeTxGas"], gas, m["gasPrice"], m["gasToken"],
            m["refundReceiver"], b""]
    return Transaction(chain_id=ctx.chain_id, sender=ctx.request.signer, to=safe, value=0,
                       data=_SELECTOR + eth_abi.encode(_TYPES, args))


def safe_tx_findings(ctx: "SigningContext") -> list[Finding]:
    """Findings of the transaction path for the SafeTx's ``execTransaction`` (see module doc);
    chain facts it consulted or could not learn are added to ``ctx``'s lists."""
    tx = exec_transaction(ctx)
    if tx is None:
        ctx.facts_unknown.append("the Safe's address (domain.verifyingContract), to analyse the SafeTx")
        return []
    rule_ctx = RuleContext(tx=tx, call=analyse_call(tx, ctx.registry), registry=ctx.registry, chain=ctx.chain,
                           lists=ctx.lists, now=ctx.now)
    findings = evaluate(rule_ctx)
    ctx.facts_consulted.extend(f for f in rule_ctx.facts_consulted if f not in ctx.facts_consulted)
    ctx.facts_unknown.extend(f for f in rule_ctx.facts_unknown if f not in ctx.facts_unknown)
    return findings
