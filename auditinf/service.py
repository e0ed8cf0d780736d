"""One function per request kind: analyse deterministically, ask the policy's model, record, answer.

Every answer is built in four steps, in this order:

1. refuse secrets (the refusal itself is recorded, without the secret);
2. deterministic analysis — decode, rules → findings, verdict, risk level;
3. the policy's route for (request kind, data class) writes the explanation; the model's text
   cannot change the verdict, risk level or findings;
4. the audit record is committed to the ledger; only then is the answer (with its receipt) returned.

Every record names its client: ``client_id`` and ``client_auth`` — ``token`` when the request's
bearer token authenticated that id, ``declared`` otherwise (:func:`auditinf.auth.client_fields`).

Private requests keep only salted commitments of their input, analysis and output in the record;
what opens them (salt ‖ content) is sealed in the vault under the client's data key, in the same
transaction (:mod:`auditinf.ledger.vault`): ``auditinf disclose`` reveals it, ``auditinf shred``
destroys it. The input commitment's salt is also returned to the caller.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib.metadata import version
from typing import Any, Callable

import rfc8785

from .auth import client_fields
from .config import Settings
from .errors import BudgetExhausted, InputError
from .evm import (AbiRegistry, analyse_call, default_registry, method_entry, methods_from_bytecode,
                  parse_abi, parse_transaction)
from .evm.chain import ChainFacts, NoChainFacts
from .evm.hexdata import parse_hex
from .evm.proxy import proxy_report
from .evm.returns import return_values
from .evm.signing import is_signing_request
from .evm.tx import MAX_CALLDATA_BYTES, parse_counterparties
from .evm.units import format_eth
from .inference import Backend, HostedBackend, RouteResult, build_prompt, make_backend, route
from .inference.breaker import Breakers
from .inference.rollout import ShadowRunner, route_candidates, shadow_job
from .ledger import Ledger, canonical_bytes, commit
from .ledger.vault import PendingSeal, Vault
from .obs.context import current_request_id, current_stream, notify_analysis
from .policy import ModelSpec, Policy, data_class, find_secret, load_policy, secret_refusal, usd_text
from .policy.budget import BudgetTracker
from .risk import RuleContext, evaluate, risk_level, verdict
from .risk.context import PolicyLists
from .risk.findings import findings_by_path
from .service_chain import chain_for, chain_provenance, rpc_tool_calls, transaction_chain_context

__all__ = ["Service"]

_SENSITIVE = ("approve", "increaseAllowance", "setApprovalForAll", "transferOwnership", "renounceOwnership",
              "upgradeTo", "upgradeToAndCall", "permit", "execTransaction", "multicall", "transferFrom")
_ZERO_ADDRESS = "0x" + "00" * 20


@lru_cache(maxsize=1)
def _tools() -> tuple[dict[str, str], ...]:
    """Decoder/analyser identities for the record (package metadata read once per process)."""
    return ({"tool": "abi_decoder", "package": "eth-abi", "version": version("eth-abi")},
            {"tool": "bytecode_analyser", "package": "evmole", "version": version("evmole")})


def _digest(obj: Any) -> str:
    """``sha256:<hex>`` fingerprint of client JSON (sorted keys, compact). Not RFC 8785: client ABIs
    may carry numbers JCS refuses (e.g. ``"gas": 2^64``), and a fingerprint must never fail."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def check_recordable(**parts: Any) -> None:
    """Raise ``unrecordable_value`` (422) when a part of the record-to-be is not RFC 8785
    canonicalisable (an integer beyond ±(2^53−1), a non-finite float). Called before any model
    is asked, so a request that could not be recorded never reaches a model or the budget."""
    for name, part in parts.items():
        try:
            canonical_bytes(part)
        except rfc8785.CanonicalizationError as exc:
            raise InputError(f"the request holds a value its audit record cannot carry ({name}: "
                             f"{type(exc).__name__}); give large integers as decimal strings",
                             code="unrecordable_value", field=name) from exc


def _private_flag(body: dict) -> bool:
    flag = body.get("private", False)
    if not isinstance(flag, bool):
        raise InputError("private must be true or false", code="invalid_request", field="private")
    return flag


class Service:
    """The auditinf service: owns the policy, the ABI registry, the backends and the ledger."""

    def __init__(self, settings: Settings, ledger: Ledger, *, policy: Policy | None = None,
                 registry: AbiRegistry | None = None, chain: ChainFacts | None = None,
                 vault: Vault | None = None) -> None:
        self.settings = settings
        self.ledger = ledger
        self.policy = policy or load_policy(settings.policy)
        self.registry = registry or default_registry()
        self.chain = chain or NoChainFacts()
        self._backends: dict[str, tuple[ModelSpec, Backend]] = {}
        self._vault = vault
        self.breakers = Breakers()  # per backend, kept across policy reloads
        self.shadows = ShadowRunner()
        self.budget = BudgetTracker()
        self.budget.seed(ledger)

    @property
    def vault(self) -> Vault:
        """The vault beside the ledger; its KEK (``Settings.data_kek_file``) is created on first use."""
        if self._vault is None:
            self._vault = Vault(self.ledger.engine, self.settings.data_kek_file, create=True)
        return self._vault

    # -- helpers -------------------------------------------------------------------------------
    def backend(self, name: str) -> Backend:
        """The backend of policy model ``name``, rebuilt when a policy reload changed its spec (the
        replaced backend's kept-alive connections are closed; calls still running finish first)."""
        spec = self.policy.models[name]
        cached = self._backends.get(name)
        if cached is None or cached[0] != spec:
            replaced = cached[1] if cached is not None else None
            cached = self._backends[name] = (spec, make_backend(spec, self.settings))
            if isinstance(replaced, HostedBackend):
                replaced.close()
        return cached[1]

    def _route(self, kind: str, dclass: str, facts: dict, level: str, *, client_id: str,
               request_id: str) -> tuple[RouteResult, Callable[[], None] | None]:
        """Budget check (402, recorded), rollout, then the router. Returns the result and the shadow
        job to run once the primary's record is committed (``None`` when there is none)."""
        policy = self.policy
        try:
            self.budget.check(policy.budgets, client_id)
        except BudgetExhausted as error:
            self.ledger.append({"kind": "refusal", "request_kind": kind, "request_id": request_id,
                                **client_fields(client_id), "data_class": dclass, "policy": policy.identity(),
                                "refusal": {"code": error.code, "spent_usd": usd_text(self.budget.spent(client_id))}})
            raise
        candidates = route_candidates(policy, kind, dclass, request_id, self.backend)
        prompt = build_prompt(kind, facts)
        notify_analysis(facts, dclass)  # a streaming request sends the rules' analysis before any model runs
        result = route(prompt, candidates=candidates, data_class=dclass, policy=policy, risk_level=level,
                       breakers=self.breakers, stream=current_stream())
        return result, shadow_job(policy, result, dclass, prompt, level, backend_of=self.backend,
                                  breakers=self.breakers, append=self.ledger.append,
                                  link={"request_kind": kind, "request_id": request_id, **client_fields(client_id)})

    def _guard(self, kind: str, body: Any, client_id: str) -> dict:
        """Refuse (and record, without the secret) a request carrying signing material; then
        require a JSON object."""
        hit = find_secret({"X-Client-Id": client_id})
        if hit:
            client_id = "[redacted]"  # the header itself is the secret
        hit = hit or find_secret(body)
        if hit:
            error = secret_refusal(hit)
            self.ledger.append({
                "kind": "refusal", "request_kind": kind, "request_id": current_request_id(), **client_fields(client_id),
                "data_class": "secret", "policy": self.policy.identity(),
                "refusal": {"code": error.code, "field": error.field},
            })
            raise error
        if not isinstance(body, dict):
            raise InputError("request body must be a JSON object", code="invalid_request")
        return body

    def _conclude(self, *, kind: str, client_id: str, dclass: str, normalised: dict, provenance: list[dict] | dict,
                  analysis: dict, result: RouteResult, seal: PendingSeal | None, request_id: str,
                  shadow: Callable[[], None] | None = None, rpc_calls: list[dict] | None = None) -> dict:
        """Commit the audit record, then return the answer fields every request kind shares.

        With ``seal`` (private requests) the input, its provenance (the ABI file matched, the
        addresses whose chain facts were consulted) and the output are kept only as commitments,
        their openings sealed in the vault in the record's transaction; public inputs are stored
        in clear and the input commitment's salt is only returned to the caller.
        """
        private = seal is not None
        content = canonical_bytes(normalised)
        explanation = result.answer.content
        attempts = [a.to_dict() for a in result.attempts]
        output = {"explanation": explanation}
        if seal is not None:
            commitment = seal.commit("input", "auditinf/input/v1", content)
            salt = seal.salt_of("input")
            output = {"commitment": seal.commit("output", "auditinf/output/v1", canonical_bytes(output))}
            provenance = {"commitment": seal.commit("input.provenance", "auditinf/provenance/v1",
                                                    canonical_bytes(provenance))}
        else:
            commitment, salt = commit("auditinf/input/v1", content)
        receipt = self.ledger.append({
            "kind": kind, "request_id": request_id, **client_fields(client_id), "data_class": dclass,
            "policy": self.policy.identity(),
            "input": {"commitment": commitment, "provenance": provenance, **({} if private else {"clear": normalised})},
            "analysis": analysis,
            "model": result.model,
            "attempts": attempts,
            "degraded": result.degraded,
            **({"warnings": result.warnings} if result.warnings else {}),
            **({"stream_interrupted": True} if result.stream_interrupted else {}),  # model failed mid-stream
            "cost_usd": usd_text(result.cost_usd),
            "output": output,
            "tool_calls": [*_tools(), *(rpc_calls or [])],
        }, attach=self.vault.writer(seal) if seal is not None else None)
        self.budget.add(client_id, result.cost_usd)
        if shadow is not None:
            self.shadows.submit(shadow)
        return {
            "request_id": request_id, "kind": kind, "data_class": dclass,
            "explanation": explanation["summary"],
            "explanation_detail": {"key_points": explanation["key_points"], "risk_notes": explanation["risk_notes"]},
            "model": result.model, "attempts": attempts, "degraded": result.degraded,
            "input_commitment": {"commitment": commitment, "salt": salt.hex()},
            "receipt": receipt.to_dict(),
        }

    # -- request kinds -------------------------------------------------------------------------
    def analyse_transaction(self, kind: str, body: Any, client_id: str = "anonymous",
                            request_id: str | None = None) -> dict:
        """Answer an ``explain`` or ``risk`` request for one transaction.

        ``body``: ``{chain_id, from?, to?, value (wei), data (hex), abi?, private?}``. Returns the
        answer ``{request_id, verdict, risk_level, findings, decoded, explanation, model, attempts,
        degraded, receipt, …}``. Raises :class:`InputError` subclasses (``invalid_hex``,
        ``calldata_too_short``, ``abi_decode_error``, ``secret_in_request``, …) for bad input and
        :class:`BudgetExhausted` (402) when the client's daily budget is spent. ``request_id``
        (default: a new UUID) also picks the canary bucket. A signing request (``{method, params}``)
        is answered by :func:`~auditinf.service_signing.analyse_signing`.
        """
        request_id = request_id or current_request_id()
        if is_signing_request(body):
            from .service_signing import analyse_signing
            return analyse_signing(self, kind, body, client_id, request_id)
        body = self._guard(kind, body, client_id)
        private_flag = _private_flag(body)
        tx = parse_transaction(body)
        # parsed up front: a bad ABI is an error even when the calldata does not need it
        client_functions = parse_abi(body["abi"]) if body.get("abi") is not None else None
        call = analyse_call(tx, self.registry, client_functions)
        chain = chain_for(self, body)
        ctx = RuleContext(tx=tx, call=call, registry=self.registry, chain=chain,
                          lists=PolicyLists(self.policy.deny_addresses, self.policy.trusted_addresses),
                          counterparties=parse_counterparties(body.get("known_counterparties")))
        findings = evaluate(ctx)
        level, decision = risk_level(findings), verdict(findings)
        dclass = data_class(self.policy, private_flag=private_flag, client_id=client_id, addresses=[tx.sender, tx.to])
        known = self.registry.known(tx.chain_id, tx.to)
        findings_json = [f.to_dict() for f in findings]
        decoded = call.to_dict(findings_by_path(findings_json))
        chain_context, context_unknown = transaction_chain_context(chain, tx, call)
        unknown = ctx.facts_unknown  # facts the rules needed (the gate reviews when any is unknown)
        facts = {"kind": kind, "chain_id": tx.chain_id, "from": tx.sender, "to": tx.to,
                 "to_label": known.label if known else None, "value_wei": str(tx.value), "value_eth": format_eth(tx.value),
                 "call": decoded, "findings": findings_json, "verdict": decision,
                 "risk_level": level, "unknown_facts": unknown, "chain_context": chain_context,
                 "unknown_context_facts": context_unknown}
        normalised = {"transaction": tx.to_dict(),
                      "abi_sha256": _digest(body["abi"]) if body.get("abi") is not None else None}
        provenance = [{"input": "transaction", "source": "client"}]
        if call.source is not None:
            provenance.append({"input": "abi", **call.source.to_dict(), "match": call.match})
        provenance.append(chain_provenance(chain, ctx.facts_consulted))
        return self._answer_analysis(
            kind=kind, client_id=client_id, dclass=dclass, request_id=request_id, chain=chain, facts=facts,
            normalised=normalised, provenance=provenance, findings=findings, findings_json=findings_json,
            decoded=decoded, decision=decision, level=level, unknown=unknown, chain_context=chain_context,
            context_unknown=context_unknown)

    def _answer_analysis(self, *, kind: str, client_id: str, dclass: str, request_id: str, chain: ChainFacts,
                         facts: dict, normalised: dict, provenance: list[dict], findings: list, findings_json: list[dict],
                         decoded: dict, decision: str, level: str, unknown: list[str], chain_context: dict,
                         context_unknown: list[str], extra: dict[str, Any] | None = None) -> dict:
        """The tail every analysed request (transaction or signing request) shares.

        Checks that the record can be written (RFC 8785) *before* any model call (422
        ``unrecordable_value`` otherwise), seals a private request's decoded call, findings' evidence
        and chain context in the vault, routes to the policy's model, commits the record, and
        returns the answer with the rules' verdict, risk level and findings (never the model's).
        ``extra`` adds members to the record's ``analysis`` object.
        """
        check_recordable(input=normalised, provenance=provenance, decoded=decoded, findings=findings_json,
                         facts_unknown=unknown, chain_context=chain_context, context_facts_unknown=context_unknown)
        seal = PendingSeal(client_id) if dclass != "public" else None
        analysis = {
            "verdict": decision, "risk_level": level, **(extra or {}),
            "findings": [{"code": f.code, "severity": str(f.severity)} for f in findings] if seal else findings_json,
            "decoded": {"commitment": seal.commit("analysis.decoded", "auditinf/decoded/v1", canonical_bytes(decoded))}
            if seal else decoded,
            "facts_unknown": [] if seal else unknown,
            "chain_context": {} if seal else chain_context,
            "context_facts_unknown": [] if seal else context_unknown,
        }
        result, shadow = self._route(kind, dclass, facts, level, client_id=client_id, request_id=request_id)
        answer = self._conclude(kind=kind, client_id=client_id, dclass=dclass, normalised=normalised,
                                provenance=provenance, analysis=analysis, result=result, seal=seal,
                                request_id=request_id, shadow=shadow, rpc_calls=rpc_tool_calls(chain, seal is not None))
        return {**answer, "verdict": decision, "risk_level": level, "findings": findings_json, "decoded": decoded,
                "unknown_facts": unknown, "chain_context": chain_context, "unknown_context_facts": context_unknown}

    def explain(self, body: Any, client_id: str = "anonymous", request_id: str | None = None) -> dict:
        """``POST /v1/explain``: what the transaction does (see :meth:`analyse_transaction`)."""
        return self.analyse_transaction("explain", body, client_id, request_id)

    def risk(self, body: Any, client_id: str = "anonymous", request_id: str | None = None) -> dict:
        """``POST /v1/risk``: pre-signing risk summary (see :meth:`analyse_transaction`)."""
        return self.analyse_transaction("risk", body, client_id, request_id)

    def methods(self, body: Any, client_id: str = "anonymous", request_id: str | None = None) -> dict:
        """ABI method extraction from ``abi`` (JSON ABI) or ``bytecode`` (runtime code, via evmole).

        ``body``: ``{abi | bytecode, data?, to?, chain_id?, private?}``; with ``data`` (calldata)
        and an ABI the call is decoded too (``decoded``). Returns ``{source, methods, decoded?,
        explanation, model, attempts, degraded, receipt}``. Raises ``invalid_request`` unless
        exactly one of ``abi``/``bytecode`` is given; ``invalid_abi``/``invalid_bytecode``;
        ``budget_exhausted`` (402).
        """
        request_id = request_id or current_request_id()
        body = self._guard("methods", body, client_id)
        private_flag = _private_flag(body)
        has_abi, has_code = body.get("abi") is not None, body.get("bytecode") is not None
        if has_abi == has_code:
            raise InputError("give exactly one of 'abi' or 'bytecode'", code="invalid_request", field="abi")
        decoded = decoded_return = proxy = None
        to = body.get("to")
        # validates chain_id, to and data whatever their use below
        tx = parse_transaction({"chain_id": body.get("chain_id", 1), "to": _ZERO_ADDRESS if to is None else to,
                                "data": body.get("data")})
        to = tx.to if to is not None else None
        if has_abi:
            functions = parse_abi(body["abi"])
            methods = [method_entry(fn) for fn in functions]
            source = "abi"
            if body.get("data") is not None:
                call = analyse_call(tx, self.registry, functions)
                decoded = call.to_dict()
                if body.get("return_data") is not None and call.decoded is not None:
                    decoded_return = return_values(call, parse_hex(body["return_data"], field="return_data",
                                                                   max_bytes=MAX_CALLDATA_BYTES))
        else:
            if body.get("data") is not None:
                raise InputError("'data' is decoded against 'abi'; it cannot be used with 'bytecode'",
                                 code="invalid_request", field="data")
            methods = methods_from_bytecode(body["bytecode"], self.registry)
            source = "bytecode"
            proxy = proxy_report(body["bytecode"], self.registry, self.chain, tx.chain_id, to)
        signatures = [m["signature"] or f"{m['selector']}({m.get('arguments') or ''})" for m in methods]
        facts = {"kind": "methods", "source": source, "count": len(methods),
                 "state_changing": sum(m["state_mutability"] in ("nonpayable", "payable") for m in methods),
                 "payable": sum(m["state_mutability"] == "payable" for m in methods),
                 "methods": signatures[:40],
                 "sensitive": [s for s in signatures if s.split("(")[0] in _SENSITIVE]}
        dclass = data_class(self.policy, private_flag=private_flag, client_id=client_id, addresses=[to])
        normalised = {"source": source, "input_sha256": _digest(body["abi"] if has_abi else body["bytecode"])}
        check_recordable(input=normalised, methods=methods, decoded=decoded, proxy=proxy)
        seal = PendingSeal(client_id) if dclass != "public" else None
        analysis = {"methods": methods, "decoded": decoded, **({"proxy": proxy} if proxy else {})}
        if seal is not None:
            analysis = {"methods": {"commitment": seal.commit("analysis.methods", "auditinf/methods/v1",
                                                              canonical_bytes(methods))},
                        "decoded": None if decoded is None else
                        {"commitment": seal.commit("analysis.decoded", "auditinf/decoded/v1", canonical_bytes(decoded))}}
        result, shadow = self._route("methods", dclass, facts, "none", client_id=client_id,
                                     request_id=request_id)
        answer = self._conclude(kind="methods", client_id=client_id, dclass=dclass, normalised=normalised,
                                provenance=[{"input": source, "source": "client"}], analysis=analysis, result=result,
                                seal=seal, request_id=request_id, shadow=shadow)
        answer.update(source=source, methods=methods)
        if decoded is not None:
            answer["decoded"] = decoded
        if decoded_return is not None:
            answer["decoded_return"] = decoded_return
        if proxy is not None:
            answer["proxy"] = proxy
        return answer
