"""``POST /v1/gate`` — may an agent send this transaction? (see :mod:`auditinf.gate`).

Body: the ``/v1/risk`` transaction shape. Answer :class:`GateAnswer`: ``decision`` (allow |
review | deny) with ``reasons``, the risk summary, the gate record's receipt and, for ``allow``,
a signed checkpoint with the record's inclusion proof. Errors as for ``/v1/risk`` (422 typed
input errors, 401/403 as every request endpoint (:mod:`.auth`), 402 ``budget_exhausted``,
503 ``queue_full``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ..gate import gate
from ..obs.context import current_request
from .admission import admit
from .auth import AUTH_RESPONSES, Client
from .deps import Body, request_kind
from .models import TransactionRequest

__all__ = ["router", "GateAnswer"]


class GateReason(BaseModel):
    code: str = Field(description="risk_level | unknown_risk | value_over_limit | address_denied | "
                                  "destination_not_allowed")
    decision: str = Field(description="what this reason alone decides: allow | review | deny")
    message: str


class GateCheckpoint(BaseModel):
    origin: str
    size: int = Field(description="records covered by the checkpoint")
    root_hash: str = Field(description="RFC 6962 root, 64 hex digits")
    note: str = Field(description="the C2SP signed note, byte for byte")
    leaf_index: int = Field(description="the gate record's seq")
    leaf_hash: str
    inclusion_proof: list[str] = Field(description="RFC 6962 audit path, leaf to root, 64 hex digits each")


class GateAnswer(BaseModel):
    request_id: str
    decision: str = Field(description="allow | review | deny")
    reasons: list[GateReason]
    data_class: str = Field(description="public | private: the data class the policy gave the request")
    risk: dict[str, Any] = Field(description="verdict, risk_level, findings, explanation, degraded, receipt")
    receipt: dict[str, Any] = Field(description="the gate record's receipt {seq, leaf_hash, signature, kid}")
    checkpoint: GateCheckpoint | None = Field(description="allow only: a checkpoint covering the gate record")


router = APIRouter(prefix="/v1", tags=["agent gate"])


@router.post("/gate", response_model=GateAnswer, responses={**AUTH_RESPONSES, 402: {"description": "budget_exhausted"},
                                                             422: {"description": "typed input error"}},
             dependencies=[request_kind("gate")],
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": TransactionRequest.model_json_schema()}}}})
def post_gate(request: Request, client: Client, body: Body) -> dict:
    """Decide allow | review | deny for a transaction an agent wants to send; recorded before it returns."""
    service = request.app.state.service
    admit(service, "risk", getattr(request.app.state, "metrics", None))  # 503 queue_full before any work
    answer = gate(service, body, client.client_id)
    ctx = current_request()
    if ctx is not None:  # metrics label: the gate's data class (its risk request's)
        ctx.data_class = answer["data_class"]
    return answer
