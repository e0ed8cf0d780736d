"""The agent gate: "may I send this transaction?" → ``allow`` | ``review`` | ``deny``, recorded.

The decision comes from the deterministic risk analysis and the policy's ``gate`` thresholds
only; the model's explanation is carried along but never changes it. Each reason names the
threshold that produced it; the strictest reason decides (allow < review < deny):

==========================  =============================================================
reason code                 decision
==========================  =============================================================
``risk_level``              ``gate.levels[risk level]`` (rules' max severity)
``unknown_risk``            ``gate.unknown_risk``: facts the rules needed were unknown, or
                            the called function is not known
``value_over_limit``        ``gate.over_max_value``: native value > ``max_value_wei``
``address_denied``          ``deny``: an involved address is on ``deny_addresses``
``destination_not_allowed`` ``review``: ``allow_addresses`` is set and ``to`` is not on it
==========================  =============================================================

Two records are written, sharing the request id: the ``risk`` record (analysis, model,
attempts) and the ``gate`` record (decision, reasons, a link to the risk record). An ``allow``
carries a signed checkpoint (C2SP tlog-checkpoint note) covering the gate record and the record's
RFC 6962 inclusion proof, so the sending tool can check the receipt offline before it sends.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .auth import client_fields
from .evm import parse_transaction
from .obs.context import current_request_id
from .policy import GATE_DECISIONS, GatePolicy

if TYPE_CHECKING:  # pragma: no cover
    from .service import Service

__all__ = ["decide", "gate"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}(?![0-9a-fA-F])")


def _involved(answer: dict[str, Any], body: dict[str, Any]) -> set[str]:
    """Lowercase addresses the transaction touches: ``from``, ``to`` and every address in the
    decoded call (arguments, nested calls)."""
    text = json.dumps([body.get("from"), body.get("to"), answer.get("decoded")])
    return {a.lower() for a in _ADDRESS.findall(text)}


def decide(gate: GatePolicy, answer: dict[str, Any], body: dict[str, Any],
           value_wei: int) -> tuple[str, list[dict[str, str]]]:
    """Decision and reasons for a risk ``answer`` (from :meth:`Service.risk`) of transaction
    ``body`` carrying ``value_wei`` of native currency.

    Returns ``(decision, [{code, decision, message}])``; reasons are listed strictest first."""
    level = answer["risk_level"]
    reasons = [{"code": "risk_level", "decision": gate.levels[level],
                "message": f"risk level {level} ({', '.join(f['code'] for f in answer['findings']) or 'no findings'})"}]
    decoded = answer.get("decoded") or {}
    if answer.get("unknown_facts") or decoded.get("kind") == "unknown_selector":
        what = "; ".join(answer.get("unknown_facts") or []) or "the called function is unknown"
        reasons.append({"code": "unknown_risk", "decision": gate.unknown_risk, "message": what})
    if gate.max_value_wei is not None and value_wei > gate.max_value_wei:
        reasons.append({"code": "value_over_limit", "decision": gate.over_max_value,
                        "message": f"native value {value_wei} wei exceeds the limit of {gate.max_value_wei} wei"})
    denied = sorted(_involved(answer, body) & gate.deny_addresses)
    if denied:
        reasons.append({"code": "address_denied", "decision": "deny",
                        "message": "involves denied address(es): " + ", ".join(denied)})
    to = (body.get("to") or "").lower()
    if gate.allow_addresses and to not in gate.allow_addresses:
        reasons.append({"code": "destination_not_allowed", "decision": "review",
                        "message": f"destination {to or '(contract creation)'} is not on the allow list"})
    reasons.sort(key=lambda r: -GATE_DECISIONS.index(r["decision"]))
    return reasons[0]["decision"], reasons


def gate(service: "Service", body: Any, client_id: str = "anonymous", request_id: str | None = None) -> dict:
    """Answer ``POST /v1/gate`` / ``auditinf gate FILE`` for transaction ``body`` (the ``/v1/risk``
    shape).

    Returns ``{request_id, decision, reasons, data_class, risk: {verdict, risk_level, findings, explanation,
    degraded, receipt}, receipt, checkpoint}``; ``checkpoint`` (allow only, else ``None``) is
    ``{origin, size, root_hash, note, leaf_index, leaf_hash, inclusion_proof}`` with hashes as
    64 hex digits. Raises what :meth:`Service.risk` raises (``InputError`` subclasses,
    ``BudgetExhausted``) and :class:`LedgerError`."""
    request_id = request_id or current_request_id()
    risk = service.risk(body, client_id, request_id=request_id)  # validates body; raises before any record
    decision, reasons = decide(service.policy.gate, risk, body, parse_transaction(body).value)
    private = risk["data_class"] != "public"
    receipt = service.ledger.append({
        "kind": "gate", "request_id": request_id, **client_fields(client_id), "data_class": risk["data_class"],
        "policy": service.policy.identity(), "decision": decision,
        # private: reason codes only (their messages name addresses and amounts)
        "reasons": [{"code": r["code"], "decision": r["decision"]} for r in reasons] if private else reasons,
        "risk_record": {"seq": risk["receipt"]["seq"], "leaf_hash": risk["receipt"]["leaf_hash"]},
    })
    checkpoint = None
    if decision == "allow":
        row, proof = service.ledger.covering_checkpoint(receipt.seq)
        checkpoint = {"origin": row.note.split("\n", 1)[0], "size": row.size, "root_hash": row.root_hash,
                      "note": row.note, "leaf_index": receipt.seq, "leaf_hash": receipt.leaf_hash,
                      "inclusion_proof": [p.hex() for p in proof]}
    return {
        "request_id": request_id, "decision": decision, "reasons": reasons, "data_class": risk["data_class"],
        "risk": {k: risk[k] for k in ("verdict", "risk_level", "findings", "explanation", "degraded", "receipt")},
        "receipt": receipt.to_dict(), "checkpoint": checkpoint,
    }
