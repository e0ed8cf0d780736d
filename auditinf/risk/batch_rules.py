"""Rules over what only nesting or the request shows: Universal Router commands, Safe MultiSend
DELEGATECALL entries, undecodable or truncated nesting, EIP-7702 authorisations, drainer-style
function names and the policy's deny list."""

from __future__ import annotations

import re

from ..evm.bytecode import selector_mutabilities
from ..evm.nested import ADDRESS_THIS, MSG_SENDER, Command, InnerCall
from ..evm.nested.universal_router import NOT_DECODED_BY_DESIGN
from ..evm.selectors import DRAINER_TAG
from ..evm.units import format_eth
from .approvals import permit2_allowance
from .context import RuleContext
from .findings import Finding, Severity
from .transfers import lookalike_findings

__all__ = ["payable_from_code_findings", "command_findings", "inner_call_findings", "nesting_findings", "authorization_findings",
           "misleading_name_findings", "deny_list_findings", "DRAINER_NAME"]

# Names that promise a reward, a fix or a connection: what drainers call payable functions
DRAINER_NAME = re.compile(r"claim|airdrop|security|reward|bonus|gift|verify|connect|unlock|restore|sync|validat|"
                          r"networkmerge|freemint", re.IGNORECASE)
_SWAPS = {"V3_SWAP_EXACT_IN", "V3_SWAP_EXACT_OUT", "V2_SWAP_EXACT_IN", "V2_SWAP_EXACT_OUT"}
_OUTPUTS = _SWAPS | {"SWEEP", "UNWRAP_WETH", "WRAP_ETH"}


def _to_other(ctx: RuleContext, recipient: str | None) -> bool:
    """True when ``recipient`` is neither the signer nor a router constant (msg.sender / router)."""
    if recipient is None or ctx.origin.sender is None:  # no sender given: who receives is not judged
        return False
    return recipient.lower() not in (MSG_SENDER, ADDRESS_THIS, ctx.origin.sender.lower()) and not (
        ctx.tx.to and recipient.lower() == ctx.tx.to.lower())


def _command(ctx: RuleContext, cmd: Command) -> list[Finding]:
    where = {"command": cmd.name, "path": cmd.path}
    if cmd.error:
        # a known command shown raw by design is low; an unknown command, an input that does not
        # decode or a sub-plan past the depth limit may hide anything (a permit, a transfer): high
        by_design = cmd.error == NOT_DECODED_BY_DESIGN and not cmd.name.startswith("UNKNOWN_")
        return [_at(Finding("router_command_not_decoded", Severity.LOW if by_design else Severity.HIGH,
                            f"Router command {cmd.path} {cmd.name} was not decoded: {cmd.error}.", where), cmd.path)]
    args = cmd.decoded or {}
    findings: list[Finding] = []
    if cmd.name in _OUTPUTS and _to_other(ctx, cmd.recipient):
        code = "swap_recipient_not_sender"
        findings.append(Finding(code, Severity.MEDIUM,
                                f"Router command {cmd.path} {cmd.name} sends its output to {ctx.label(cmd.recipient)}, "
                                f"not to the sender {ctx.origin.sender}.",
                                {**where, "recipient": cmd.recipient, "sender": ctx.origin.sender}))
        findings += lookalike_findings(ctx, cmd.recipient, "recipient")
    if cmd.name == "PERMIT2_PERMIT":
        d = args["details"]
        findings += permit2_allowance(ctx, d["token"], args["spender"], int(d["amount"]), int(d["expiration"]),
                                      "Permit2 permit (router)")
    if cmd.name == "PERMIT2_PERMIT_BATCH":
        for d in args["details"]:
            findings += permit2_allowance(ctx, d["token"], args["spender"], int(d["amount"]), int(d["expiration"]),
                                          "Permit2 permit batch (router)")
    if cmd.name in ("PERMIT2_TRANSFER_FROM", "TRANSFER") and _to_other(ctx, args.get("recipient")):
        findings += lookalike_findings(ctx, args["recipient"], "recipient")
    for action in cmd.actions:
        recipient = (action.get("decoded") or {}).get("recipient") or (action.get("decoded") or {}).get("to")
        if _to_other(ctx, recipient):
            findings.append(Finding("swap_recipient_not_sender", Severity.MEDIUM,
                                    f"V4 action {action['name']} in command {cmd.path} sends tokens to "
                                    f"{ctx.label(recipient)}, not to the sender {ctx.origin.sender}.",
                                    {**where, "action": action["name"], "recipient": recipient}))
    return [_at(f, cmd.path) for f in findings]


def _at(finding: Finding, path: str) -> Finding:
    if finding.path is not None:
        return finding
    return Finding(finding.code, finding.severity, finding.message, finding.evidence, path)


def command_findings(ctx: RuleContext) -> list[Finding]:
    """Findings of every command of a Universal Router plan, sub-plans included."""
    out: list[Finding] = []
    for top in ctx.call.commands:
        for cmd in top.walk():
            out += _command(ctx, cmd)
    return out


def inner_call_findings(ctx: RuleContext, inner: InnerCall) -> list[Finding]:
    """What the inner call itself shows, beyond its own call's rules: MultiSend DELEGATECALL entries,
    and calls that did not decode."""
    spec = inner.spec
    findings: list[Finding] = []
    if spec.via == "multiSend" and spec.operation == "delegatecall":
        library = ctx.has_role(spec.to, "safe_multisend")
        findings.append(Finding(
            "safe_delegatecall", Severity.MEDIUM if library else Severity.CRITICAL,
            f"A MultiSend entry DELEGATECALLs {ctx.label(spec.to)} from {spec.context}: that code runs with the "
            "Safe's own storage and can replace its owners, modules or implementation.",
            {"safe": spec.context, "target": spec.to, "operation": 1}))
    if inner.error is not None:
        findings.append(Finding("nested_call_not_decoded", Severity.MEDIUM,
                                f"Inner call to {ctx.label(spec.to)} did not decode ({inner.error['message']}): "
                                "what it does cannot be shown.", {"to": spec.to, **inner.error}))
    return [_at(f, inner.path) for f in findings]


def nesting_findings(ctx: RuleContext) -> list[Finding]:
    """Batches not (wholly) decoded: past the depth limit, malformed, or cut by the work budget.
    High: what is not shown may be an unlimited approval or a transfer of everything."""
    call = ctx.call
    findings = []
    if call.nested_error:
        findings.append(Finding("nested_call_not_decoded", Severity.HIGH,
                                f"Not every call inside {call.decoded.method} is decoded: {call.nested_error}.",
                                {"method": call.decoded.method, "error": call.nested_error}))
    if call.truncated and ctx.path is None:
        findings.append(Finding("nested_calls_truncated", Severity.HIGH,
                                "The batch holds more inner calls than are decoded; the rest is not shown.",
                                {"method": call.decoded.method}))
    return findings


def misleading_name_findings(ctx: RuleContext) -> list[Finding]:
    """A reward/security-sounding name on a contract whose ABI nobody vouches for."""
    call = ctx.call
    if call.match in ("client_abi", "address") or ctx.known_address(ctx.tx.to or ""):
        return []
    names = []
    if call.decoded is not None:
        names = [call.decoded.signature]
    names += [c["signature"] for c in call.method_candidates
              if DRAINER_TAG in c["tags"] or DRAINER_NAME.search(c["name"])]
    names = [n for n in dict.fromkeys(names) if DRAINER_NAME.search(n.split("(")[0])]
    if not names:
        return []
    value = ctx.tx.value
    return [Finding("misleading_function_name", Severity.HIGH if value > 0 else Severity.LOW,
                    f"The function is named {names[0]!r} (a name the contract's author chose, resolved from the "
                    f"selector on a contract no known ABI describes): it is not evidence of a "
                    f"claim, airdrop or security fix"
                    + (f"; {format_eth(value)} ETH goes to {ctx.tx.to} and nothing is known to come back."
                       if value else "."),
                    {"to": ctx.tx.to, "selector": call.selector, "names": names, "value_wei": str(value)})]


def authorization_findings(ctx: RuleContext) -> list[Finding]:
    """EIP-7702 ``authorizationList`` of a type-4 transaction: each entry makes an EOA run the
    delegate's code for every future call, until replaced."""
    findings = []
    for i, auth in enumerate(ctx.tx.authorizations):
        trusted = ctx.trusted(auth.address)
        any_chain = auth.chain_id == 0
        findings.append(Finding(
            "eip7702_authorization", Severity.HIGH if trusted else Severity.CRITICAL,
            f"Authorises {ctx.label(auth.address)} as the code of the signing account (EIP-7702): it can then move "
            "every asset of the account without further signatures"
            + (", on EVERY chain (chainId 0)." if any_chain else "."),
            {"index": i, "delegate": auth.address, "chain_id": str(auth.chain_id), "nonce": str(auth.nonce)}))
    return findings


def deny_list_findings(ctx: RuleContext, addresses: list[str]) -> list[Finding]:
    hits = sorted({a for a in addresses if a and a.lower() in ctx.lists.deny})
    return [Finding("denylisted_address", Severity.CRITICAL,
                    f"{a} is on the policy's deny list (a known drainer or scam address).", {"address": a})
            for a in hits]


def payable_from_code_findings(ctx: RuleContext) -> list[Finding]:
    """ETH sent with a call whose ABI is not the target's own: when chain facts give the target's
    code, evmole's view of the dispatcher says whether that function can take ETH at all."""
    tx, call = ctx.tx, ctx.call
    if tx.value == 0 or tx.to is None or call.selector is None or call.match in ("client_abi", "address"):
        return []
    if ctx.is_eoa(tx.to) is not False:
        return []
    mutabilities = selector_mutabilities(ctx.chain.code(tx.chain_id, tx.to))
    mutability = (mutabilities or {}).get(call.selector)
    if mutability is None or mutability == "payable":
        return []
    return [Finding("native_value_to_nonpayable", Severity.MEDIUM,
                    f"Sends {format_eth(tx.value)} ETH to {ctx.label(tx.to)} with function {call.selector}, which the "
                    f"deployed code implements as {mutability} (bytecode analysis): the transaction will revert.",
                    {"to": tx.to, "value_wei": str(tx.value), "selector": call.selector,
                     "state_mutability": mutability, "source": "bytecode (evmole)"})]
