"""Risk rules for signing requests: EIP-712 typed data, ``personal_sign`` and ``eth_sign``.

| code                        | severity                          | pattern                                        |
|-----------------------------|-----------------------------------|------------------------------------------------|
| blind_signing               | high                              | eth_sign of raw bytes; personal_sign of non-text bytes |
| chain_id_mismatch           | high                              | request chain_id ≠ typed-data domain.chainId   |
| permit_signature            | medium                            | EIP-2612 / DAI permit: an off-chain approval   |
| permit2_allowance           | medium                            | Permit2 PermitSingle / PermitBatch             |
| permit2_transfer            | high (low: trusted spender)       | Permit2 SignatureTransfer: a one-shot pull     |
| unlimited_approval          | high (medium: trusted spender)    | a granted amount ≥ half its type's range       |
| spender_is_eoa              | high                              | the spender has no code (chain facts)          |
| spender_unknown             | medium                            | the spender is no known router/marketplace     |
| far_expiration              | medium                            | expiration/deadline more than a year away      |
| permit2_batch_many_tokens   | high                              | one Permit2 batch over ≥ 3 tokens              |
| owner_not_signer            | medium                            | permit owner / Seaport offerer ≠ the signer    |
| seaport_zero_consideration  | critical                          | an offer for nothing back to the offerer       |
| seaport_dust_consideration  | high                              | … for a near-zero amount back                  |
| (transaction rules)         | as for the transaction            | SafeTx: its execTransaction, analysed as on chain (safe_delegatecall, unlimited_approval, safe_module_enabled, …) |
| unrecognised_typed_data     | low                               | no known standard: every field is listed       |
| typed_data_unused_types     | low                               | declared types the message never uses (not signed) |

Near-zero: under 10^-4 of a unit (native ETH, or an ERC-20 whose decimals are known); an ERC-20
of unknown decimals is reported as an unknown fact instead. Times are Unix seconds compared with
the analysis time ``now``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..evm.chain import ChainFacts, NoChainFacts
from ..evm.registry import AbiRegistry
from ..evm.signing import SigningRequest, message_text
from ..evm.typed import Reading, amount_text, time_text
from .context import PolicyLists
from .findings import Finding, Severity

__all__ = ["SigningContext", "evaluate_signing", "FAR_EXPIRATION_S", "MANY_TOKENS"]

FAR_EXPIRATION_S = 365 * 24 * 3600
MANY_TOKENS = 3
_KNOWN_SPENDER_ROLES = ("trusted_spender", "router", "marketplace_operator")


@dataclass
class SigningContext:
    """What the signing rules read, and the chain facts they consulted or could not learn."""

    request: SigningRequest
    reading: Reading | None
    registry: AbiRegistry
    chain: ChainFacts = field(default_factory=NoChainFacts)
    lists: PolicyLists = field(default_factory=PolicyLists)  # the policy's deny/trusted lists
    now: int = field(default_factory=lambda: int(time.time()))
    facts_consulted: list[dict] = field(default_factory=list)
    facts_unknown: list[str] = field(default_factory=list)

    @property
    def chain_id(self) -> int:
        """The chain the signature is for: the domain's chainId, else the request's, else 1."""
        typed = self.request.typed
        return (typed.chain_id if typed and typed.chain_id else None) or self.request.chain_id or 1

    def has_role(self, address: str | None, *roles: str) -> bool:
        known = self.registry.known(self.chain_id, address) if address else None
        return bool(known and known.roles.intersection(roles))

    def label(self, address: str) -> str:
        known = self.registry.known(self.chain_id, address)
        return f"{address} ({known.label})" if known else address

    def token_text(self, token: str, amount: int, bits: int) -> str:
        known = self.registry.known(self.chain_id, token)
        return amount_text(amount, bits, known.decimals if known else None, known.symbol if known else None)

    def is_eoa(self, address: str) -> bool | None:
        """True/False from chain facts; ``None`` (noted as unknown) when no fact is available."""
        code = self.chain.code(self.chain_id, address)
        if code is None:
            self.facts_unknown.append(f"whether {address} is a contract (eth_getCode)")
            return None
        self.facts_consulted.append({"fact": "eth_getCode", "address": address, "source": self.chain.source,
                                     "has_code": bool(code)})
        return not code


def _blind(ctx: SigningContext) -> list[Finding]:
    req = ctx.request
    if req.raw is not None:
        shape = "a 32-byte hash" if len(req.raw) == 32 else f"{len(req.raw)} raw bytes"
        return [Finding("blind_signing", Severity.HIGH,
                        f"eth_sign asks for a signature over {shape} that cannot be shown: it may be the hash of a "
                        "transaction or permit that moves everything the account holds. Wallets have dropped "
                        "eth_sign for this reason.", {"method": req.method, "bytes": len(req.raw)})]
    if req.message is not None and message_text(req.message) is None:
        return [Finding("blind_signing", Severity.HIGH,
                        "personal_sign asks for a signature over binary data that is not readable text: what it "
                        "authorises cannot be shown.", {"method": req.method, "bytes": len(req.message)})]
    return []


def _chain_mismatch(ctx: SigningContext) -> list[Finding]:
    typed = ctx.request.typed
    if typed is None or typed.chain_id is None:
        return []
    if ctx.request.chain_id is None:
        ctx.facts_unknown.append("the wallet's active chain id (request chain_id), to compare with domain.chainId")
        return []
    if ctx.request.chain_id != typed.chain_id:
        return [Finding("chain_id_mismatch", Severity.HIGH,
                        f"The typed data is for chain {typed.chain_id} but the wallet is on chain "
                        f"{ctx.request.chain_id}: the signature would be used on another network than the one shown.",
                        # uint256 domain chainId: decimal strings (RFC 8785 records refuse ints ≥ 2^53)
                        {"request_chain_id": str(ctx.request.chain_id), "domain_chain_id": str(typed.chain_id)})]
    return []


def _kind(ctx: SigningContext, reading: Reading) -> list[Finding]:
    std = reading.standard or ""
    contract = ctx.request.typed.verifying_contract if ctx.request.typed else None
    if std in ("eip2612_permit", "dai_permit"):
        amounts = "; ".join(f"{ctx.token_text(g.token, g.amount, g.amount_bits)} to {g.spender}" for g in reading.grants)
        return [Finding("permit_signature", Severity.MEDIUM,
                        f"An off-chain approval ({reading.recognised_as}) on token {ctx.label(contract or '?')}"
                        f"{' (' + amounts + ')' if amounts else ''}: anyone holding the signature can submit it to set "
                        "the spender's allowance, with no transaction from the signer.",
                        {"standard": std, "token": contract})]
    if std in ("permit2_single", "permit2_batch"):
        return [Finding("permit2_allowance", Severity.MEDIUM,
                        "A Permit2 allowance signature: it lets the spender pull the listed tokens the signer has "
                        "approved to Permit2, with no gas and no on-chain trace until used.",
                        {"standard": std, "verifying_contract": contract})]
    if std.startswith("permit2_") and "transfer" in std:
        spender = ctx.request.typed.message["spender"]
        trusted = ctx.has_role(spender, *_KNOWN_SPENDER_ROLES)
        return [Finding("permit2_transfer", Severity.LOW if trusted else Severity.HIGH,
                        f"A Permit2 one-shot transfer signature: {ctx.label(spender)} can pull the listed tokens "
                        "from the signer as soon as it holds the signature.",
                        {"standard": std, "spender": spender})]
    return []


def _grants(ctx: SigningContext, reading: Reading) -> list[Finding]:
    findings: list[Finding] = []
    spenders: list[str] = []
    for grant in reading.grants:
        trusted = ctx.has_role(grant.spender, *_KNOWN_SPENDER_ROLES)
        if grant.unlimited:
            findings.append(Finding(
                "unlimited_approval", Severity.MEDIUM if trusted else Severity.HIGH,
                f"Grants {ctx.label(grant.spender)} an UNLIMITED amount "
                f"({ctx.token_text(grant.token, grant.amount, grant.amount_bits)})"
                f" of {ctx.label(grant.token)}: it can move ALL of the signer's balance of it.",
                {"token": grant.token, "spender": grant.spender, "amount": str(grant.amount), "kind": grant.kind}))
        if grant.spender not in spenders:
            spenders.append(grant.spender)
    for spender in spenders:
        if ctx.is_eoa(spender):
            findings.append(Finding("spender_is_eoa", Severity.HIGH,
                                    f"The spender {spender} is an externally owned account (no code): permits are "
                                    "normally granted to contracts; a personal address is typical of drainers.",
                                    {"spender": spender}))
        if not ctx.has_role(spender, *_KNOWN_SPENDER_ROLES):
            findings.append(Finding("spender_unknown", Severity.MEDIUM,
                                    f"The spender {spender} is not a known router, marketplace or Permit2 contract.",
                                    {"spender": spender}))
    return findings


def _far_expiration(ctx: SigningContext, reading: Reading) -> list[Finding]:
    far = [(path, value, bits) for path, value, bits in reading.deadlines if value > ctx.now + FAR_EXPIRATION_S]
    if not far:
        return []
    shown = {path: time_text(value, bits) for path, value, bits in far}
    return [Finding("far_expiration", Severity.MEDIUM,
                    "The signature or the permission it grants stays valid for more than a year ("
                    + "; ".join(f"{p}: {t}" for p, t in shown.items()) + "): it can be used long after today.",
                    {"fields": {p: str(v) for p, v, _ in far}, "display": shown, "now": ctx.now})]


def _batch(ctx: SigningContext, reading: Reading) -> list[Finding]:
    tokens = {g.token for g in reading.grants}
    if reading.standard and "batch" in reading.standard and len(tokens) >= MANY_TOKENS:
        return [Finding("permit2_batch_many_tokens", Severity.HIGH,
                        f"One signature covers {len(tokens)} different tokens: drainers batch every token a wallet "
                        "holds into a single Permit2 signature.", {"tokens": sorted(tokens), "count": len(tokens)})]
    return []


def _owner(ctx: SigningContext, reading: Reading) -> list[Finding]:
    if reading.owner and reading.owner != ctx.request.signer:
        return [Finding("owner_not_signer", Severity.MEDIUM,
                        f"The message names {reading.owner} as the owner, but {ctx.request.signer} is asked to sign: "
                        "the signature will not be valid for that owner, so the request is malformed or misleading.",
                        {"owner": reading.owner, "signer": ctx.request.signer})]
    return []


def _dust_limit(ctx: SigningContext, item: dict) -> int | None:
    if item["item_type"] == "NATIVE":
        return 10**14  # 0.0001 ETH
    if item["item_type"] == "ERC20":
        known = ctx.registry.known(ctx.chain_id, item["token"])
        if known is None or known.decimals is None:
            ctx.facts_unknown.append(f"decimals of token {item['token']} (to judge the consideration amount)")
            return None
        return 10 ** max(known.decimals - 4, 0)
    return None  # NFTs back to the offerer are never dust


def _seaport(ctx: SigningContext, reading: Reading) -> list[Finding]:
    if reading.standard != "seaport_order":
        return []
    offer, back = reading.summary["offer"], reading.summary["consideration_to_offerer"]
    if not offer:
        return []
    evidence = {"offerer": reading.summary["offerer"], "offer_items": len(offer), "consideration_to_offerer": back}
    if all(int(c["start_amount"]) == 0 and int(c["end_amount"]) == 0 for c in back):
        return [Finding("seaport_zero_consideration", Severity.CRITICAL,
                        f"The order gives away {len(offer)} item(s) and pays the offerer NOTHING back: a signed "
                        "zero-price listing anyone can fill (Seaport order farming).", evidence)]
    limits = [_dust_limit(ctx, c) for c in back]
    if all(limit is not None and max(int(c["start_amount"]), int(c["end_amount"])) < limit
           for c, limit in zip(back, limits)):
        return [Finding("seaport_dust_consideration", Severity.HIGH,
                        f"The order gives away {len(offer)} item(s) for a near-zero amount back to the offerer.",
                        evidence)]
    return []


def _safe(ctx: SigningContext, reading: Reading) -> list[Finding]:
    """A SafeTx is analysed as the ``execTransaction`` it authorises (:mod:`.safe_tx`): the same
    findings as that transaction, the inner call's at path ``0``."""
    if reading.standard != "safe_tx":
        return []
    from .safe_tx import safe_tx_findings  # safe_tx → rules → approvals → typed_rules: resolved at call time
    return safe_tx_findings(ctx)


def _unrecognised(ctx: SigningContext, reading: Reading) -> list[Finding]:
    if reading.standard is None:
        return [Finding("unrecognised_typed_data", Severity.LOW,
                        f"The typed data ({ctx.request.typed.primary_type}) follows no standard known here: read "
                        "every field before signing.", {"primary_type": ctx.request.typed.primary_type})]
    return []


def _unused_types(ctx: SigningContext, reading: Reading) -> list[Finding]:
    unused = list(ctx.request.typed.unused_types) if ctx.request.typed else []
    if not unused:
        return []
    return [Finding("typed_data_unused_types", Severity.LOW,
                    f"The typed data declares {len(unused)} type(s) that {ctx.request.typed.primary_type} never uses "
                    f"({', '.join(unused[:8])}): they are not part of what is signed (wallets ignore them).",
                    {"unused_types": unused})]


_TYPED_RULES = (_kind, _grants, _far_expiration, _batch, _owner, _seaport, _safe, _unrecognised, _unused_types)


def evaluate_signing(ctx: SigningContext) -> list[Finding]:
    """Run every signing rule; findings sorted by severity (highest first), then code."""
    findings = _blind(ctx) + _chain_mismatch(ctx)
    if ctx.reading is not None:
        for rule in _TYPED_RULES:
            findings += rule(ctx, ctx.reading)
    return sorted(findings, key=lambda f: (-f.severity, f.code))
