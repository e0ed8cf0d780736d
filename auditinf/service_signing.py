"""``explain``/``risk`` for signing requests (``eth_signTypedData_v4``, ``personal_sign``, ``eth_sign``).

The same four steps as for a transaction (see :mod:`auditinf.service`): refuse secrets, analyse
deterministically (validate, hash with eth-account, recognise, rules), let the policy's model
explain, commit the record, answer. The answer has the transaction answer's fields; ``decoded``
describes what would be signed (see :meth:`SigningRequest.decoded`) and the record carries it
whole, hashes included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .evm.signing import parse_signing_request, secret_scan_view
from .policy import data_class
from .risk import risk_level, verdict
from .risk.context import PolicyLists
from .risk.typed_rules import SigningContext, evaluate_signing
from .service_chain import chain_for, chain_provenance, signing_chain_context

if TYPE_CHECKING:
    from .service import Service

__all__ = ["analyse_signing"]


def _private_flag(body: dict) -> bool:
    from .service import _private_flag as flag  # one definition of the flag's validation
    return flag(body)



def analyse_signing(service: Service, kind: str, body: dict, client_id: str, request_id: str) -> dict:
    """Answer ``explain``/``risk`` for a signing request ``{method, params, chain_id?, private?}``.

    Returns the answer ``{request_id, verdict, risk_level, findings, decoded, unknown_facts,
    explanation, model, attempts, degraded, input_commitment, receipt, …}``. Raises
    :class:`~auditinf.errors.InputError` subclasses (``unsupported_method``,
    ``invalid_typed_data``, ``invalid_address``, ``secret_in_request``, …).
    """
    service._guard(kind, secret_scan_view(body), client_id)
    private_flag = _private_flag(body)
    request = parse_signing_request(body)
    reading = request.reading
    chain = chain_for(service, body)
    ctx = SigningContext(request=request, reading=reading, registry=service.registry, chain=chain,
                         lists=PolicyLists(service.policy.deny_addresses, service.policy.trusted_addresses))
    findings = evaluate_signing(ctx)
    level, decision = risk_level(findings), verdict(findings)
    typed = request.typed
    addresses = [request.signer] + ([typed.verifying_contract] if typed and typed.verifying_contract else [])
    dclass = data_class(service.policy, private_flag=private_flag, client_id=client_id, addresses=addresses)
    decoded = request.decoded(reading)
    findings_json = [f.to_dict() for f in findings]
    chain_context, context_unknown = signing_chain_context(chain, ctx.chain_id, request, reading)
    unknown = ctx.facts_unknown  # facts the rules needed (the gate reviews when any is unknown)
    facts: dict[str, Any] = {"kind": kind, "chain_id": ctx.chain_id, "signer": request.signer, "signing": decoded,
                             "findings": findings_json, "verdict": decision, "risk_level": level,
                             "unknown_facts": unknown, "chain_context": chain_context,
                             "unknown_context_facts": context_unknown}
    normalised = {"signing_request": request.to_dict()}
    provenance = [{"input": "signing_request", "source": "client"},
                  chain_provenance(chain, ctx.facts_consulted)]
    return service._answer_analysis(
        kind=kind, client_id=client_id, dclass=dclass, request_id=request_id, chain=chain, facts=facts,
        normalised=normalised, provenance=provenance, findings=findings, findings_json=findings_json,
        decoded=decoded, decision=decision, level=level, unknown=unknown, chain_context=chain_context,
        context_unknown=context_unknown, extra={"analysed_at": ctx.now})
