"""Transfer rules: tokens sent to the token contract itself, zero-value ``transferFrom`` (address
poisoning), look-alike recipients, and swaps whose output goes to someone other than the sender."""

from __future__ import annotations

from .context import RuleContext
from .findings import Finding, Severity

__all__ = ["transfer", "transfer_from", "lookalike_findings", "lookalike_of", "v2_swap", "LOOKALIKE_CHARS"]

LOOKALIKE_CHARS = 4  # hex characters compared at each end (what wallets show: 0x7a25…4d3f)


def lookalike_of(address: str, counterparties: tuple[str, ...]) -> str | None:
    """The counterparty ``address`` imitates: same first and last :data:`LOOKALIKE_CHARS` hex
    characters (case-insensitive), different address. ``None`` if none."""
    a = address.lower()[2:]
    for known in counterparties:
        k = known.lower()[2:]
        if a != k and a[:LOOKALIKE_CHARS] == k[:LOOKALIKE_CHARS] and a[-LOOKALIKE_CHARS:] == k[-LOOKALIKE_CHARS:]:
            return known
    return None


def lookalike_findings(ctx: RuleContext, address: str, role: str) -> list[Finding]:
    """``address_poisoning_lookalike`` when ``address`` imitates a known counterparty or the
    signer's own address (poisoners also mimic the victim's own account)."""
    own = (ctx.origin.sender,) if ctx.origin.sender else ()
    known = lookalike_of(address, ctx.counterparties + own)
    if known is None:
        return []
    return [Finding("address_poisoning_lookalike", Severity.HIGH,
                    f"The {role} {address} imitates the known counterparty {known}: same first and last "
                    f"{LOOKALIKE_CHARS} hex characters, different address. Never copy an address from history.",
                    {role: address, "imitates": known})]


def _to_token(ctx: RuleContext, recipient: str) -> list[Finding]:
    if ctx.tx.to and recipient.lower() == ctx.tx.to.lower():
        return [Finding("transfer_to_token_contract", Severity.HIGH,
                        "Sends the tokens to the token contract itself, where they are usually lost forever.",
                        {"token": ctx.tx.to, "recipient": recipient})]
    return []


def transfer(ctx: RuleContext) -> list[Finding]:
    recipient = ctx.call.decoded.values[0]
    return _to_token(ctx, recipient) + lookalike_findings(ctx, recipient, "recipient")


def transfer_from(ctx: RuleContext) -> list[Finding]:
    """ERC-20 ``transferFrom(from, to, value)`` (ERC-721 shares the selector: ``value`` = token id)."""
    source, recipient, value = ctx.call.decoded.values
    findings = _to_token(ctx, recipient) + lookalike_findings(ctx, recipient, "recipient")
    if int(value) == 0 and not ctx.has_role(ctx.tx.to, "nft"):
        not_owner = ctx.tx.sender is None or source.lower() != ctx.tx.sender.lower()
        findings.append(Finding(
            "zero_value_transfer", Severity.HIGH if not_owner else Severity.MEDIUM,
            f"Moves 0 {ctx.token_symbol()} from {source} to {recipient}"
            + (f", sent by {ctx.tx.sender}, not by the owner {source}" if not_owner else "")
            + ": nothing moves; zero-value transfers plant a look-alike address in the owner's history "
            "(address poisoning).",
            {"from": source, "to": recipient, "sent_by": ctx.tx.sender, "token": ctx.tx.to}))
    return findings


def v2_swap(ctx: RuleContext) -> list[Finding]:
    """Uniswap V2 Router ``swap…(…, address[] path, address to, uint256 deadline)``: ``to`` is
    second to last."""
    recipient = ctx.call.decoded.values[-2]
    if ctx.tx.sender is None or recipient.lower() == ctx.tx.sender.lower():
        return []
    return [Finding("swap_recipient_not_sender", Severity.MEDIUM,
                    f"The swap output goes to {ctx.label(recipient)}, not to the sender {ctx.tx.sender}.",
                    {"recipient": recipient, "sender": ctx.tx.sender, "method": ctx.call.decoded.method})
            ] + lookalike_findings(ctx, recipient, "recipient")
