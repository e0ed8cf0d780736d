"""Signing-request rules: a positive and a negative case each, typed data built in the test and
hashed with eth-account (the digest the wallet would sign is checked against eth-account's own)."""

from __future__ import annotations

import pytest

from auditinf.evm import default_registry
from auditinf.evm.chain import StaticChainFacts
from auditinf.evm.signing import parse_signing_request
from auditinf.risk import risk_level, verdict
from auditinf.risk.typed_rules import SigningContext, evaluate_signing

from .typed_builders import (DRAINER, MULTISEND, NOW, ROUTER, SIGNER, SOON, U48, U160, U256, USDC, USDT, WBTC, WETH,
                             dai_permit, eip2612, eth_account_digest, mail, permit2_batch, permit2_single,
                             permit2_transfer, request, safe_tx, seaport_order)

CONTRACT_CODE = "0x6080"


def run(body: dict, codes: dict[str, str] | None = None):
    req = parse_signing_request(body)
    if req.typed is not None:  # the digest shown is the one eth-account signs
        assert req.decoded()["digest"] == eth_account_digest(body["params"][1])
    chain = StaticChainFacts(1, codes or {}, source="test") if codes is not None else None
    ctx = SigningContext(request=req, reading=req.reading, registry=default_registry(), now=NOW,
                         **({"chain": chain} if chain else {}))
    findings = evaluate_signing(ctx)
    return {f.code: f for f in findings}, ctx, findings


def codes(body: dict, chain: dict[str, str] | None = None) -> dict:
    return run(body, chain)[0]


EOA = {DRAINER: "0x"}
CONTRACT = {DRAINER: CONTRACT_CODE}


def test_unlimited_permit2_amount_uint160():
    assert codes(request(permit2_single(amount=U160)))["unlimited_approval"].severity == 3
    assert "unlimited_approval" not in codes(request(permit2_single(amount=10**6)))


def test_unlimited_eip2612_and_dai_allowed():
    assert "unlimited_approval" in codes(request(eip2612(value=U256)))
    assert "unlimited_approval" not in codes(request(eip2612(value=10**6)))
    assert "unlimited_approval" in codes(request(dai_permit(allowed=True)))
    assert "unlimited_approval" not in codes(request(dai_permit(allowed=False)))


def test_unlimited_to_trusted_spender_is_medium():
    found = codes(request(permit2_single(spender=ROUTER)))
    assert found["unlimited_approval"].severity == 2 and "spender_unknown" not in found


def test_spender_is_eoa_from_chain_facts():
    assert "spender_is_eoa" in codes(request(eip2612()), EOA)
    assert "spender_is_eoa" not in codes(request(eip2612()), CONTRACT)
    found, ctx, _ = run(request(eip2612()))
    assert "spender_is_eoa" not in found
    assert f"whether {DRAINER} is a contract (eth_getCode)" in ctx.facts_unknown


def test_spender_unknown():
    assert "spender_unknown" in codes(request(permit2_single(spender=DRAINER)), CONTRACT)
    assert "spender_unknown" not in codes(request(permit2_single(spender=ROUTER)))


def test_far_expiration():
    found = codes(request(permit2_single(expiration=U48)))
    assert found["far_expiration"].evidence["display"]["details.expiration"].startswith("never")
    assert "far_expiration" not in codes(request(permit2_single(expiration=SOON, sig_deadline=SOON)))
    assert "far_expiration" in codes(request(dai_permit(expiry=0)))  # DAI: expiry 0 never expires
    assert "far_expiration" not in codes(request(eip2612(deadline=NOW + 3600)))


def test_permit_kinds():
    assert codes(request(eip2612(value=5)))["permit_signature"].severity == 2
    assert "permit2_allowance" in codes(request(permit2_single()))
    assert codes(request(permit2_transfer()))["permit2_transfer"].severity == 3
    assert codes(request(permit2_transfer(spender=ROUTER)))["permit2_transfer"].severity == 1
    assert "permit2_transfer" in codes(request(permit2_transfer(witness=True)))
    assert not {"permit_signature", "permit2_allowance", "permit2_transfer"} & set(codes(request(mail())))


def test_permit2_batch_many_tokens():
    found = codes(request(permit2_batch([USDC, USDT, WETH, WBTC])))
    assert found["permit2_batch_many_tokens"].evidence["count"] == 4
    assert "permit2_batch_many_tokens" not in codes(request(permit2_batch([USDC, USDT])))


def test_owner_not_signer():
    assert "owner_not_signer" in codes(request(eip2612(owner=DRAINER)))
    assert "owner_not_signer" not in codes(request(eip2612(owner=SIGNER)))


def test_seaport_zero_and_dust_consideration():
    zero = codes(request(seaport_order(0)))
    assert zero["seaport_zero_consideration"].severity == 4
    assert "seaport_dust_consideration" in codes(request(seaport_order(10**9)))  # 1 gwei for a BAYC
    fair = codes(request(seaport_order(30 * 10**18)))
    assert not {"seaport_zero_consideration", "seaport_dust_consideration"} & set(fair)
    usdc_dust = codes(request(seaport_order(50, item_type=1, token=USDC)))  # 0.00005 USDC
    assert "seaport_dust_consideration" in usdc_dust
    assert "seaport_dust_consideration" not in codes(request(seaport_order(10**9, item_type=1, token=USDC)))
    _, ctx, _ = run(request(seaport_order(5, item_type=1, token=DRAINER)))
    assert any("decimals of token" in fact for fact in ctx.facts_unknown)


def test_safe_delegatecall():
    assert codes(request(safe_tx(1)))["safe_delegatecall"].severity == 4
    assert codes(request(safe_tx(1, to=MULTISEND)))["safe_delegatecall"].severity == 2
    assert "safe_delegatecall" not in codes(request(safe_tx(0)))


def test_blind_signing():
    found, _, findings = run({"method": "eth_sign", "params": [SIGNER, "0x" + "ab" * 32]})
    assert found["blind_signing"].severity == 3 and risk_level(findings) == "high"
    binary = codes({"method": "personal_sign", "params": ["0x00ff10", SIGNER]})
    assert "blind_signing" in binary
    assert "blind_signing" not in codes({"method": "personal_sign", "params": ["0x48656c6c6f0a", SIGNER]})


def test_chain_id_mismatch():
    found = codes(request(eip2612(chain_id=1), chain_id=137))
    assert found["chain_id_mismatch"].evidence == {"request_chain_id": "137", "domain_chain_id": "1"}
    assert "chain_id_mismatch" not in codes(request(eip2612(chain_id=1), chain_id=1))
    _, ctx, _ = run(request(eip2612(), chain_id=None))
    assert any("active chain id" in fact for fact in ctx.facts_unknown)


def test_unrecognised_typed_data():
    found, _, findings = run(request(mail()))
    assert set(found) == {"unrecognised_typed_data"} and verdict(findings) == "benign"
    assert "unrecognised_typed_data" not in codes(request(eip2612()))


@pytest.mark.parametrize("body,level", [
    (request(permit2_single(), chain_id=1), "high"),
    (request(seaport_order(0)), "critical"),
    (request(permit2_single(amount=10**6, expiration=SOON, spender=ROUTER, sig_deadline=SOON)), "medium"),
])
def test_risk_levels(body, level):
    assert risk_level(run(body)[2]) == level
