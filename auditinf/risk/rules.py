"""Deterministic pre-signing risk rules over a decoded transaction and every call nested in it.

Each rule has a stable code (the finding's ``code``) and a fixed severity policy. Findings of an
inner call or router command carry its ``path`` (``0.2.1``). Selectors are matched through the
decoded canonical signature (Solidity ABI spec), never by name.

| code                          | severity                          | pattern                                            |
|-------------------------------|-----------------------------------|----------------------------------------------------|
| unlimited_approval            | high (medium: trusted spender)    | approve/increaseAllowance ≥ 2^255; Permit2 = 2^160−1 |
| large_approval                | high (medium: trusted spender)    | allowance ≥ 2^96 base units but not unlimited      |
| token_approval                | medium (low: trusted spender)     | any non-zero ERC-20 / Permit2 allowance            |
| spender_is_eoa                | high                              | spender/operator has no code (chain facts)         |
| spender_unknown               | medium                            | spender not trusted, not known, not shown to be an EOA |
| far_expiration                | medium                            | Permit2 allowance valid > 1 year (as typed_rules)  |
| nft_approval                  | medium                            | ERC-721 approve(to, tokenId) on a known NFT        |
| approval_for_all              | high (medium: known marketplace)  | setApprovalForAll(operator, true)                  |
| operator_unknown              | high                              | … and the operator is no known marketplace         |
| transfer_to_token_contract    | high                              | transfer/transferFrom to the token itself          |
| zero_value_transfer           | high (medium: sent by the owner)  | transferFrom(from, to, 0): address poisoning       |
| address_poisoning_lookalike   | high                              | recipient shares first/last 4 hex chars with a known counterparty |
| swap_recipient_not_sender     | medium                            | swap / sweep / unwrap output to someone else       |
| ownership_transfer            | high                              | transferOwnership(newOwner)                        |
| ownership_renounce            | high                              | renounceOwnership()                                |
| proxy_upgrade                 | high                              | upgradeTo / upgradeToAndCall / ProxyAdmin upgrade  |
| proxy_admin_change            | high                              | changeAdmin / changeProxyAdmin                     |
| safe_delegatecall             | critical (medium: MultiSend)      | Safe execTransaction or MultiSend entry, operation 1 |
| safe_module_enabled           | high                              | Safe enableModule                                  |
| safe_guard_changed            | high                              | Safe setGuard                                      |
| safe_fallback_handler_changed | high                              | Safe setFallbackHandler                            |
| safe_owner_change             | high                              | Safe add/remove/swap owner                         |
| safe_threshold_change         | medium (high: threshold ≤ 1)      | Safe changeThreshold                               |
| native_value_unknown_call     | high                              | ETH sent with calldata no ABI explains             |
| misleading_function_name      | high with ETH (low without)       | claim/securityUpdate/… name on an unverified target |
| native_value_to_token         | high                              | plain ETH to a token contract (no payable path)    |
| native_value_to_nonpayable    | medium                            | ETH sent with a call the target's ABI, or its deployed code (evmole, chain facts), says is not payable |
| eip7702_authorization         | critical (high: trusted delegate) | type-4 authorizationList entry (EIP-7702)          |
| denylisted_address            | critical                          | an address on the policy's deny list is involved   |
| nested_call_not_decoded       | high (medium: one inner call)     | a batch past the depth limit or malformed; an inner call that does not decode |
| nested_calls_truncated        | high                              | more inner calls than the decoding budget          |
| router_command_not_decoded    | high (low: known, shown raw)      | unknown / undecodable / too deep router command; low for a known command without a parameter layout |
| unknown_selector              | medium                            | calldata with an unknown selector, no value        |
| contract_creation             | medium                            | deploys code that is not analysed                  |
| trailing_calldata             | low                               | bytes after the ABI-encoded arguments              |
| noncanonical_calldata         | high                              | an approval decoded only as ABI coder v1 reads it (dirty address/bool bits) |
"""

from __future__ import annotations

from typing import Callable

from ..evm.units import format_eth
from . import approvals, transfers
from .admin import ADMIN_RULES
from .batch_rules import (authorization_findings, command_findings, deny_list_findings, inner_call_findings,
                          misleading_name_findings, nesting_findings, payable_from_code_findings)
from .context import UNLIMITED_THRESHOLD, PolicyLists, RuleContext
from .findings import Finding, Severity

__all__ = ["RuleContext", "PolicyLists", "evaluate", "UNLIMITED_THRESHOLD", "RULES_BY_SIGNATURE"]

Rule = Callable[[RuleContext], list[Finding]]
_V2_SWAPS = [
    "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
    "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
    "swapExactETHForTokens(uint256,address[],address,uint256)",
    "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
    "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
    "swapETHForExactTokens(uint256,address[],address,uint256)",
    "swapExactTokensForTokensSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
    "swapExactETHForTokensSupportingFeeOnTransferTokens(uint256,address[],address,uint256)",
    "swapExactTokensForETHSupportingFeeOnTransferTokens(uint256,uint256,address[],address,uint256)",
]
RULES_BY_SIGNATURE: dict[str, Rule] = {
    "approve(address,uint256)": approvals.approve,
    "increaseAllowance(address,uint256)": approvals.increase_allowance,
    "setApprovalForAll(address,bool)": approvals.set_approval_for_all,
    "approve(address,address,uint160,uint48)": approvals.permit2_approve,
    "permit(address,((address,uint160,uint48,uint48),address,uint256),bytes)": approvals.permit2_permit,
    "permit(address,((address,uint160,uint48,uint48)[],address,uint256),bytes)": approvals.permit2_permit,
    "transfer(address,uint256)": transfers.transfer,
    "transferFrom(address,address,uint256)": transfers.transfer_from,
    **{signature: transfers.v2_swap for signature in _V2_SWAPS},
    **ADMIN_RULES,
}
"""Canonical signature → rule over that call's ABI-ordered values."""


def _shape_rules(ctx: RuleContext) -> list[Finding]:
    call, tx = ctx.call, ctx.tx
    if call.kind == "contract_creation":
        return [Finding("contract_creation", Severity.MEDIUM,
                        "Deploys a new contract; its code is not analysed here.", {"init_code_bytes": len(tx.data)})]
    if call.kind == "native_transfer" and tx.value > 0 and ctx.has_role(tx.to, "token") \
            and not ctx.has_role(tx.to, "accepts_eth"):
        return [Finding("native_value_to_token", Severity.HIGH,
                        f"Sends {format_eth(tx.value)} ETH straight to the token contract {ctx.label(tx.to)}, which has "
                        "no payable path: the transaction reverts, or the ETH is stuck for good.",
                        {"to": tx.to, "value_wei": str(tx.value)})]
    if call.kind == "unknown_selector":
        if tx.value > 0:
            return [Finding(
                "native_value_unknown_call", Severity.HIGH,
                f"Sends {format_eth(tx.value)} ETH to {ctx.label(tx.to)} with a call "
                f"({call.selector}) that no known ABI explains: nothing is known to come back. Drainers name "
                "such functions 'claim' or 'securityUpdate'.",
                {"to": tx.to, "value_wei": str(tx.value), "selector": call.selector})]
        return [Finding("unknown_selector", Severity.MEDIUM,
                        f"Calls an unknown function {call.selector} on {ctx.label(tx.to)}: what it does cannot be "
                        "shown.", {"to": tx.to, "selector": call.selector})]
    # only an ABI known to be this contract's (client-given or bundled for the address) is authoritative
    if call.decoded is not None and tx.value > 0 and call.decoded.state_mutability != "payable" \
            and call.match in ("client_abi", "address"):
        return [Finding("native_value_to_nonpayable", Severity.MEDIUM,
                        f"Sends {format_eth(tx.value)} ETH with {call.decoded.signature}, which is not payable: the "
                        "transaction will revert and only the gas is spent. A crafted or broken request.",
                        {"to": tx.to, "value_wei": str(tx.value), "signature": call.decoded.signature})]
    if call.decoded is not None and call.decoded.trailing_bytes:
        return [Finding("trailing_calldata", Severity.LOW,
                        f"{(len(call.decoded.trailing_bytes) - 2) // 2} unexpected byte(s) follow the arguments; "
                        "the contract ignores them but they can carry hidden data.",
                        {"trailing_bytes": call.decoded.trailing_bytes})]
    return []


def _noncanonical(ctx: RuleContext) -> list[Finding]:
    call = ctx.call
    if not call.noncanonical:
        return []
    return [Finding("noncanonical_calldata", Severity.HIGH,
                    f"The {call.decoded.method} calldata is not canonical ABI ({'; '.join(call.noncanonical)}): "
                    "strict decoders reject it, but contracts built with Solidity's ABI coder v1 (older tokens "
                    "such as USDT) still execute it as decoded here. Crafted calldata like this hides approvals "
                    "from scanners.", {"signature": call.decoded.signature, "cleaned": list(call.noncanonical)})]


def _addresses(ctx: RuleContext) -> list[str]:
    """Every address the call touches: target, and address-typed arguments at the top level."""
    out = [ctx.tx.to] if ctx.tx.to else []
    decoded = ctx.call.decoded
    if decoded is not None:
        out += [v for v, t in zip(decoded.values, decoded.types.values()) if t == "address"]
    for top in ctx.call.commands:
        for cmd in top.walk():
            out += [v for v in (cmd.decoded or {}).values() if isinstance(v, str) and len(v) == 42]
    return out


def _call_findings(ctx: RuleContext) -> list[Finding]:
    findings = _shape_rules(ctx) + misleading_name_findings(ctx)
    if not any(f.code == "native_value_to_nonpayable" for f in findings):
        findings += payable_from_code_findings(ctx)
    decoded = ctx.call.decoded
    if decoded is not None:
        rule = RULES_BY_SIGNATURE.get(decoded.signature)
        if rule:
            findings += rule(ctx)
        findings += _noncanonical(ctx)
        findings += nesting_findings(ctx) + command_findings(ctx)
    findings += deny_list_findings(ctx, _addresses(ctx))
    if ctx.path is not None:
        findings = [f if f.path is not None else Finding(f.code, f.severity, f"[call {ctx.path}] {f.message}",
                                                         f.evidence, ctx.path) for f in findings]
    return findings


def _walk(ctx: RuleContext) -> list[Finding]:
    findings = _call_findings(ctx)
    for inner in ctx.call.inner:
        findings += inner_call_findings(ctx, inner)
        if inner.call is not None:
            findings += _walk(ctx.inner(inner.transaction(ctx.tx.chain_id), inner.call, inner.path))
        else:
            findings += [Finding(f.code, f.severity, f.message, f.evidence, inner.path)
                         for f in deny_list_findings(ctx, [inner.spec.to])]
    return findings


def evaluate(ctx: RuleContext) -> list[Finding]:
    """Run every rule on the transaction and on every inner call and router command.

    Returns findings sorted by severity (highest first), then path (the transaction first), then
    code. Facts consulted or unknown are appended to ``ctx.facts_consulted`` / ``ctx.facts_unknown``.
    """
    findings = _walk(ctx) + authorization_findings(ctx)
    return sorted(findings, key=lambda f: (-f.severity, f.path or "", f.code))
