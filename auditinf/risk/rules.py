"""Deterministic pre-signing risk rules over a decoded transaction.

Each rule has a stable code (the finding's ``code``) and a fixed severity policy:

| code                        | severity                        | pattern                                        |
|-----------------------------|---------------------------------|------------------------------------------------|
| unlimited_approval          | high (medium: trusted spender)  | approve/increaseAllowance of ≥ 2^255 or 2^256−1 |
| token_approval              | medium (low: trusted spender)   | any non-zero ERC-20 approve / increaseAllowance|
| nft_approval                | medium                          | ERC-721 approve(to, tokenId) on a known NFT    |
| approval_for_all            | high (medium: known marketplace)| setApprovalForAll(operator, true)              |
| operator_unknown            | high                            | … and the operator is no known marketplace     |
| spender_is_eoa              | high                            | spender/operator has no code (chain facts)     |
| transfer_to_token_contract  | high                            | transfer(to = the token itself): tokens lost   |
| ownership_transfer          | high                            | transferOwnership(newOwner)                    |
| ownership_renounce          | high                            | renounceOwnership()                            |
| proxy_upgrade               | high                            | upgradeTo / upgradeToAndCall (EIP-1967 / UUPS) |
| safe_delegatecall           | critical (medium: MultiSend)    | Safe execTransaction with operation = 1        |
| native_value_unknown_call   | high                            | ETH sent with calldata no ABI explains         |
| native_value_to_token       | high                            | plain ETH to a token contract (no payable path)|
| native_value_to_nonpayable  | medium                          | ETH sent with a call the ABI says is not payable|
| unknown_selector            | medium                          | calldata with an unknown selector, no value    |
| contract_creation           | medium                          | deploys code that is not analysed              |
| trailing_calldata           | low                             | bytes after the ABI-encoded arguments          |

Selectors are matched through the decoded canonical signature (see the Solidity ABI spec).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..evm.calls import CallAnalysis
from ..evm.chain import ChainFacts, NoChainFacts
from ..evm.registry import AbiRegistry
from ..evm.tx import Transaction
from ..evm.units import format_eth, format_units
from .findings import Finding, Severity

__all__ = ["RuleContext", "evaluate", "UNLIMITED_THRESHOLD"]

# Amounts at or above 2^255 are "unlimited" in practice (some dapps approve 2^255 or 2^256−2).
UNLIMITED_THRESHOLD = 2**255


@dataclass
class RuleContext:
    """Everything a rule may read, plus what it learned (facts consulted / unknown)."""

    tx: Transaction
    call: CallAnalysis
    registry: AbiRegistry
    chain: ChainFacts = field(default_factory=NoChainFacts)
    facts_consulted: list[dict] = field(default_factory=list)
    facts_unknown: list[str] = field(default_factory=list)

    def has_role(self, address: str, role: str) -> bool:
        known = self.registry.known(self.tx.chain_id, address)
        return bool(known and role in known.roles)

    def label(self, address: str) -> str:
        known = self.registry.known(self.tx.chain_id, address)
        return f"{address} ({known.label})" if known else address

    def is_eoa(self, address: str) -> bool | None:
        """True/False from chain facts, None (and noted as unknown) when no fact is available."""
        code = self.chain.code(self.tx.chain_id, address)
        if code is None:
            self.facts_unknown.append(f"whether {address} is a contract (eth_getCode)")
            return None
        self.facts_consulted.append({"fact": "eth_getCode", "address": address, "source": self.chain.source,
                                     "has_code": bool(code)})
        return not code

    def token_symbol(self) -> str:
        known = self.registry.known(self.tx.chain_id, self.tx.to)
        return known.symbol if known and known.symbol else "tokens"

    def token_amount(self, amount: int) -> str:
        known = self.registry.known(self.tx.chain_id, self.tx.to)
        if amount >= UNLIMITED_THRESHOLD:
            return "unlimited"
        if known and known.decimals is not None and known.symbol:
            return f"{format_units(amount, known.decimals)} {known.symbol}"
        return f"{amount} base units"


Rule = Callable[[RuleContext], list[Finding]]


def _spender_findings(ctx: RuleContext, spender: str, role: str) -> list[Finding]:
    if ctx.is_eoa(spender):
        return [Finding("spender_is_eoa", Severity.HIGH,
                        f"The {role} {spender} is an externally owned account (no code): approvals are "
                        "normally granted to contracts, a personal address is typical of drainers.",
                        {role: spender})]
    return []


def _erc20_allowance(ctx: RuleContext, spender: str, amount: int, method: str) -> list[Finding]:
    token = ctx.tx.to
    trusted = ctx.has_role(spender, "trusted_spender")
    evidence = {"token": ctx.label(token), "spender": spender, "amount": str(amount), "method": method}
    findings: list[Finding] = []
    if amount >= UNLIMITED_THRESHOLD:
        findings.append(Finding(
            "unlimited_approval", Severity.MEDIUM if trusted else Severity.HIGH,
            f"Grants {ctx.label(spender)} an UNLIMITED allowance: it can move ALL of the sender's "
            f"{ctx.token_symbol()} at any time, now or later, until the approval is revoked.", evidence))
    findings.append(Finding(
        "token_approval", Severity.LOW if trusted else Severity.MEDIUM,
        f"{method} lets {ctx.label(spender)} spend {ctx.token_amount(amount)} of token {ctx.label(token)}.",
        evidence))
    return findings + _spender_findings(ctx, spender, "spender")


def _approve(ctx: RuleContext) -> list[Finding]:
    spender, amount = ctx.call.decoded.values
    amount = int(amount)
    if ctx.has_role(ctx.tx.to, "nft"):
        return [Finding("nft_approval", Severity.MEDIUM,
                        f"Lets {spender} transfer NFT #{amount} of {ctx.label(ctx.tx.to)}.",
                        {"collection": ctx.tx.to, "approved": spender, "token_id": str(amount)})]
    if amount == 0:
        return []  # a revocation
    return _erc20_allowance(ctx, spender, amount, "approve")


def _increase_allowance(ctx: RuleContext) -> list[Finding]:
    spender, added = ctx.call.decoded.values
    return _erc20_allowance(ctx, spender, int(added), "increaseAllowance")


def _set_approval_for_all(ctx: RuleContext) -> list[Finding]:
    operator, approved = ctx.call.decoded.values
    if not approved:
        return []
    known_market = ctx.has_role(operator, "marketplace_operator")
    evidence = {"collection": ctx.label(ctx.tx.to), "operator": operator}
    findings = [Finding(
        "approval_for_all", Severity.MEDIUM if known_market else Severity.HIGH,
        f"Lets {ctx.label(operator)} transfer EVERY token of {ctx.label(ctx.tx.to)} the sender owns, now and "
        "in future, until revoked.", evidence)]
    if not known_market:
        findings.append(Finding("operator_unknown", Severity.HIGH,
                                f"The operator {operator} is not a known marketplace or conduit.", evidence))
    return findings + _spender_findings(ctx, operator, "operator")


def _transfer(ctx: RuleContext) -> list[Finding]:
    to = ctx.call.decoded.values[0]
    if ctx.tx.to and to.lower() == ctx.tx.to.lower():
        return [Finding("transfer_to_token_contract", Severity.HIGH,
                        "Sends the tokens to the token contract itself, where they are usually lost forever.",
                        {"token": ctx.tx.to, "recipient": to})]
    return []


def _fixed(code: str, severity: Severity, message: str) -> Rule:
    """A rule that always fires; ``message`` may use ``{contract}`` and ``{arg}`` (the first argument)."""
    def rule(ctx: RuleContext) -> list[Finding]:
        values = ctx.call.decoded.values
        first = values[0] if values else None
        evidence = {"contract": ctx.tx.to, **ctx.call.decoded.args}
        return [Finding(code, severity, message.format(contract=ctx.label(ctx.tx.to), arg=first), evidence)]
    return rule


def _safe_exec(ctx: RuleContext) -> list[Finding]:
    values = ctx.call.decoded.values  # positional: ABI names may differ
    target, operation = values[0], int(values[3])
    if operation != 1:
        return []
    multisend = ctx.has_role(target, "safe_multisend")
    return [Finding(
        "safe_delegatecall", Severity.MEDIUM if multisend else Severity.CRITICAL,
        f"The Safe will DELEGATECALL {ctx.label(target)}: that code runs with the Safe's own storage and "
        "can replace its owners, modules or implementation"
        + (" (a known Safe MultiSend library)." if multisend else "; this is how the 2025 Bybit Safe was taken."),
        {"safe": ctx.tx.to, "target": target, "operation": 1})]


_BY_SIGNATURE: dict[str, Rule] = {
    "approve(address,uint256)": _approve,
    "increaseAllowance(address,uint256)": _increase_allowance,
    "setApprovalForAll(address,bool)": _set_approval_for_all,
    "transfer(address,uint256)": _transfer,
    "transferOwnership(address)": _fixed(
        "ownership_transfer", Severity.HIGH, "Hands ownership of {contract} to {arg}: the new owner gets every "
        "admin power of the contract."),
    "renounceOwnership()": _fixed(
        "ownership_renounce", Severity.HIGH, "Gives up ownership of {contract} for good: no admin action will be "
        "possible afterwards."),
    "upgradeTo(address)": _fixed(
        "proxy_upgrade", Severity.HIGH, "Replaces the implementation of proxy {contract} with {arg}: "
        "all of its logic changes."),
    "upgradeToAndCall(address,bytes)": _fixed(
        "proxy_upgrade", Severity.HIGH, "Replaces the implementation of proxy {contract} with {arg} "
        "and immediately calls it."),
    "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)": _safe_exec,
}


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


def evaluate(ctx: RuleContext) -> list[Finding]:
    """Run every rule; findings sorted by severity (highest first), then code."""
    findings = _shape_rules(ctx)
    if ctx.call.decoded is not None:
        rule = _BY_SIGNATURE.get(ctx.call.decoded.signature)
        if rule:
            findings += rule(ctx)
    return sorted(findings, key=lambda f: (-f.severity, f.code))
