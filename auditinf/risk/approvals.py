"""Allowance rules: ERC-20 ``approve`` / ``increaseAllowance`` (EIP-20, OpenZeppelin), ERC-721 /
ERC-1155 ``approve`` / ``setApprovalForAll`` (EIP-721, EIP-1155), Permit2 ``approve`` / ``permit``
(Uniswap Permit2 ``IAllowanceTransfer``: uint160 amounts, uint48 expirations)."""

from __future__ import annotations

from typing import Any

from ..evm.decode import UINT160_MAX
from .context import UNLIMITED_THRESHOLD, RuleContext
from .typed_rules import FAR_EXPIRATION_S
from .findings import Finding, Severity

__all__ = ["spender_findings", "approve", "increase_allowance", "set_approval_for_all", "permit2_approve",
           "permit2_permit", "permit2_allowance", "LARGE_APPROVAL", "UINT48_MAX"]

UINT48_MAX = 2**48 - 1
# "large": beyond 2^96 base units (79 billion tokens at 18 decimals) — more than any real balance
LARGE_APPROVAL = 2**96


def spender_findings(ctx: RuleContext, spender: str, role: str) -> list[Finding]:
    """``spender_is_eoa`` (chain facts say no code) or ``spender_unknown`` (neither trusted nor
    known); nothing for trusted spenders. Unknown facts are noted, never guessed."""
    if ctx.trusted(spender) or ctx.has_role(spender, "marketplace_operator"):
        return []
    eoa = ctx.is_eoa(spender)
    if eoa:
        return [Finding("spender_is_eoa", Severity.HIGH,
                        f"The {role} {spender} is an externally owned account (no code): approvals are "
                        "normally granted to contracts, a personal address is typical of drainers.",
                        {role: spender})]
    return [Finding("spender_unknown", Severity.MEDIUM,
                    f"The {role} {spender} is no known router, marketplace or protocol"
                    + (" (whether it is a contract is unknown)." if eoa is None else " (a contract)."),
                    {role: spender, "has_code": None if eoa is None else True})]


def _allowance(ctx: RuleContext, token: str, spender: str, amount: int, method: str, *, unlimited: bool,
               extra: dict[str, Any] | None = None) -> list[Finding]:
    trusted = ctx.trusted(spender)
    evidence = {"token": ctx.label(token), "spender": spender, "amount": str(amount), "method": method,
                **(extra or {})}
    findings: list[Finding] = []
    if unlimited:
        findings.append(Finding(
            "unlimited_approval", Severity.MEDIUM if trusted else Severity.HIGH,
            f"Grants {ctx.label(spender)} an UNLIMITED allowance: it can move ALL of the sender's "
            f"{ctx.token_symbol(token)} at any time, now or later, until the approval is revoked.", evidence))
    elif amount >= LARGE_APPROVAL:
        findings.append(Finding(
            "large_approval", Severity.MEDIUM if trusted else Severity.HIGH,
            f"Grants {ctx.label(spender)} an allowance of {amount} base units, more than any real balance: "
            "in effect unlimited.", evidence))
    shown = "unlimited" if unlimited else ctx.token_amount(amount, token)
    findings.append(Finding(
        "token_approval", Severity.LOW if trusted else Severity.MEDIUM,
        f"{method} lets {ctx.label(spender)} spend {shown} of token {ctx.label(token)}.", evidence))
    return findings + spender_findings(ctx, spender, "spender")


def approve(ctx: RuleContext) -> list[Finding]:
    spender, amount = ctx.call.decoded.values
    amount = int(amount)
    if ctx.has_role(ctx.tx.to, "nft"):
        return [Finding("nft_approval", Severity.MEDIUM,
                        f"Lets {spender} transfer NFT #{amount} of {ctx.label(ctx.tx.to)}.",
                        {"collection": ctx.tx.to, "approved": spender, "token_id": str(amount)})]
    if amount == 0:
        return []  # a revocation
    return _allowance(ctx, ctx.tx.to, spender, amount, "approve", unlimited=amount >= UNLIMITED_THRESHOLD)


def increase_allowance(ctx: RuleContext) -> list[Finding]:
    spender, added = ctx.call.decoded.values
    return _allowance(ctx, ctx.tx.to, spender, int(added), "increaseAllowance",
                      unlimited=int(added) >= UNLIMITED_THRESHOLD)


def set_approval_for_all(ctx: RuleContext) -> list[Finding]:
    operator, approved = ctx.call.decoded.values
    if not approved:
        return []
    known_market = ctx.has_role(operator, "marketplace_operator") or ctx.trusted(operator)
    evidence = {"collection": ctx.label(ctx.tx.to), "operator": operator}
    findings = [Finding(
        "approval_for_all", Severity.MEDIUM if known_market else Severity.HIGH,
        f"Lets {ctx.label(operator)} transfer EVERY token of {ctx.label(ctx.tx.to)} the sender owns, now and "
        "in future, until revoked.", evidence)]
    if not known_market:
        findings.append(Finding("operator_unknown", Severity.HIGH,
                                f"The operator {operator} is not a known marketplace or conduit.", evidence))
        eoa = ctx.is_eoa(operator)
        if eoa:
            findings.append(Finding("spender_is_eoa", Severity.HIGH,
                                    f"The operator {operator} is an externally owned account (no code): approvals "
                                    "are normally granted to contracts, a personal address is typical of drainers.",
                                    {"operator": operator}))
    return findings


def permit2_allowance(ctx: RuleContext, token: str, spender: str, amount: int, expiration: int,
                      method: str) -> list[Finding]:
    """Findings for one Permit2 allowance (``PermitDetails`` / ``approve``): uint160 max is
    unlimited; an expiration (unix seconds) more than a year after ``ctx.now`` is far (the same
    threshold as the typed-data rule ``far_expiration``); 0 means "this block" in ``approve``."""
    if amount == 0:
        return []
    extra = {"expiration": str(expiration), "via": "Permit2"}
    findings = _allowance(ctx, token, spender, amount, method, unlimited=amount >= UINT160_MAX, extra=extra)
    if expiration > ctx.now + FAR_EXPIRATION_S:
        never = expiration >= UINT48_MAX
        findings.append(Finding("far_expiration", Severity.MEDIUM,
                                f"The Permit2 allowance for {ctx.label(spender)} "
                                + ("never expires (expiration 2^48-1)." if never else
                                   f"stays valid for more than a year (until unix time {expiration})."),
                                {"spender": spender, "token": token, "expiration": str(expiration), "now": ctx.now}))
    return findings


def permit2_approve(ctx: RuleContext) -> list[Finding]:
    """Permit2 ``approve(address token, address spender, uint160 amount, uint48 expiration)``."""
    token, spender, amount, expiration = ctx.call.decoded.values
    return permit2_allowance(ctx, token, spender, int(amount), int(expiration), "Permit2 approve")


def permit2_permit(ctx: RuleContext) -> list[Finding]:
    """Permit2 ``permit(owner, PermitSingle | PermitBatch, signature)`` submitted on chain."""
    _owner, permit, _sig = ctx.call.decoded.values
    details = permit["details"] if isinstance(permit["details"], list) else [permit["details"]]
    spender = permit["spender"]
    findings: list[Finding] = []
    for d in details:
        token, amount, expiration, _nonce = d.values()
        findings += permit2_allowance(ctx, token, spender, int(amount), int(expiration), "Permit2 permit")
    return findings
