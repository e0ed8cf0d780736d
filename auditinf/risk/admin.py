"""Admin-power rules: ownership (OpenZeppelin Ownable), proxy upgrades (EIP-1967 / EIP-1822 UUPS,
OpenZeppelin ProxyAdmin / TransparentUpgradeableProxy) and Safe configuration (safe-smart-account
v1.3.0 ``ModuleManager`` / ``GuardManager`` / ``OwnerManager`` / ``FallbackManager``)."""

from __future__ import annotations

from typing import Callable

from .context import RuleContext
from .findings import Finding, Severity

__all__ = ["fixed", "safe_exec", "safe_threshold", "ADMIN_RULES"]

Rule = Callable[[RuleContext], list[Finding]]


def fixed(code: str, severity: Severity, message: str) -> Rule:
    """A rule that always fires; ``message`` may use ``{contract}`` and ``{arg}`` (the first argument)."""
    def rule(ctx: RuleContext) -> list[Finding]:
        values = ctx.call.decoded.values
        first = values[0] if values else None
        evidence = {"contract": ctx.tx.to, **ctx.call.decoded.args}
        return [Finding(code, severity, message.format(contract=ctx.label(ctx.tx.to), arg=first), evidence)]
    return rule


def safe_exec(ctx: RuleContext) -> list[Finding]:
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


def safe_threshold(ctx: RuleContext) -> list[Finding]:
    threshold = int(ctx.call.decoded.values[-1])
    return [Finding("safe_threshold_change", Severity.HIGH if threshold <= 1 else Severity.MEDIUM,
                    f"Sets the Safe {ctx.label(ctx.tx.to)} to need {threshold} signature(s)"
                    + (": one key alone will control it." if threshold <= 1 else "."),
                    {"safe": ctx.tx.to, "threshold": str(threshold), "method": ctx.call.decoded.method})]


_UPGRADE = "Replaces the implementation of proxy {contract} with {arg}: all of its logic changes."
ADMIN_RULES: dict[str, Rule] = {
    "transferOwnership(address)": fixed(
        "ownership_transfer", Severity.HIGH, "Hands ownership of {contract} to {arg}: the new owner gets every "
        "admin power of the contract."),
    "renounceOwnership()": fixed(
        "ownership_renounce", Severity.HIGH, "Gives up ownership of {contract} for good: no admin action will be "
        "possible afterwards."),
    "upgradeTo(address)": fixed("proxy_upgrade", Severity.HIGH, _UPGRADE),
    "upgradeToAndCall(address,bytes)": fixed(
        "proxy_upgrade", Severity.HIGH, "Replaces the implementation of proxy {contract} with {arg} "
        "and immediately calls it."),
    "upgrade(address,address)": fixed(
        "proxy_upgrade", Severity.HIGH, "ProxyAdmin {contract} replaces the implementation of proxy {arg}."),
    "upgradeAndCall(address,address,bytes)": fixed(
        "proxy_upgrade", Severity.HIGH, "ProxyAdmin {contract} replaces the implementation of proxy {arg} and "
        "calls it."),
    "changeAdmin(address)": fixed(
        "proxy_admin_change", Severity.HIGH, "Hands the admin (upgrade power) of proxy {contract} to {arg}."),
    "changeProxyAdmin(address,address)": fixed(
        "proxy_admin_change", Severity.HIGH, "ProxyAdmin {contract} hands the admin of proxy {arg} to another "
        "address."),
    "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)": safe_exec,
    "enableModule(address)": fixed(
        "safe_module_enabled", Severity.HIGH, "Enables module {arg} on Safe {contract}: a module can move every "
        "asset of the Safe WITHOUT the owners' signatures."),
    "setGuard(address)": fixed(
        "safe_guard_changed", Severity.HIGH, "Sets the transaction guard of Safe {contract} to {arg}: a guard can "
        "block every future transaction (0x0…0 removes the current guard)."),
    "setFallbackHandler(address)": fixed(
        "safe_fallback_handler_changed", Severity.HIGH, "Sets the fallback handler of Safe {contract} to {arg}: it "
        "answers every unknown call and signature check (EIP-1271) for the Safe."),
    "addOwnerWithThreshold(address,uint256)": fixed(
        "safe_owner_change", Severity.HIGH, "Adds {arg} as an owner of Safe {contract}."),
    "removeOwner(address,address,uint256)": fixed(
        "safe_owner_change", Severity.HIGH, "Removes an owner of Safe {contract}."),
    "swapOwner(address,address,address)": fixed(
        "safe_owner_change", Severity.HIGH, "Replaces an owner of Safe {contract} with a new one."),
    "changeThreshold(uint256)": safe_threshold,
}
