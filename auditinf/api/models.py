"""Request and answer shapes for the OpenAPI document (the service validates bodies itself,
so that secrets are caught before any schema error could echo them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TransactionRequest", "SigningRequestBody", "MethodsRequest", "Answer", "MethodsAnswer",
           "StoredRecord", "PublicKey"]

_HEX = r"^(0x)?([0-9a-fA-F]{2})*$"
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class TransactionRequest(BaseModel):
    """A transaction to explain or risk-score (``eth_sendTransaction`` params shape)."""

    model_config = ConfigDict(populate_by_name=True)

    chain_id: int = Field(1, description="EIP-155 chain id", examples=[1])
    from_: str | None = Field(None, alias="from", pattern=_ADDRESS, description="sender address")
    to: str | None = Field(None, pattern=_ADDRESS, description="target; absent for contract creation")
    value: str | int = Field("0", description="wei, as a decimal string or 0x quantity")
    data: str = Field("0x", pattern=_HEX, description="calldata, 0x hex")
    abi: list[dict[str, Any]] | None = Field(None, description="optional JSON ABI of `to`")
    private: bool = Field(False, description="true: only local models may see this request")
    rpc_url: str | None = Field(None, description="JSON-RPC node for chain facts (only if the policy's "
                                "chain.allow_request_rpc_url is true; http(s), public hosts only)")
    known_counterparties: list[str] | None = Field(
        None, description="addresses the signer deals with (recent recipients): recipients imitating one are flagged")
    authorizationList: list[dict[str, Any]] | None = Field(
        None, description="EIP-7702 authorisations of a type-4 transaction: [{chainId, address, nonce, …}]")


class SigningRequestBody(BaseModel):
    """What a wallet is asked to sign, in the JSON-RPC shape (see :mod:`auditinf.evm.signing`)."""

    method: Literal["eth_signTypedData_v4", "personal_sign", "eth_sign"]
    params: list[Any] = Field(min_length=2, max_length=2, description="eth_signTypedData_v4: [signer, typed data "
                              "(object or JSON string)]; personal_sign: [message (0x hex or text), signer]; "
                              "eth_sign: [signer, 0x data]")
    chain_id: int | str | None = Field(None, description="the wallet's active chain (EIP-155), compared with the "
                                       "typed data's domain.chainId")
    private: bool = False
    rpc_url: str | None = None


class MethodsRequest(BaseModel):
    """ABI method extraction: exactly one of ``abi`` or ``bytecode``."""

    abi: list[dict[str, Any]] | None = None
    bytecode: str | None = Field(None, pattern=_HEX, description="runtime bytecode, 0x hex")
    data: str | None = Field(None, pattern=_HEX, description="optional calldata to decode with `abi`")
    return_data: str | None = Field(None, pattern=_HEX, description="optional return data of that call to decode")
    to: str | None = Field(None, pattern=_ADDRESS)
    chain_id: int = 1
    private: bool = False


class Receipt(BaseModel):
    seq: int
    leaf_hash: str
    signature: str = Field(description="base64 Ed25519 signature over the record body")
    kid: str


class _Answered(BaseModel):
    request_id: str
    kind: str
    data_class: str
    explanation: str
    explanation_detail: dict[str, list[str]]
    model: dict[str, Any]
    attempts: list[dict[str, Any]]
    degraded: bool
    input_commitment: dict[str, str]
    receipt: Receipt


class Answer(_Answered):
    verdict: str = Field(description="benign | warning | malicious (from the rules only)")
    risk_level: str = Field(description="none | low | medium | high | critical (max finding severity)")
    findings: list[dict[str, Any]] = Field(
        description="{code, severity, message, evidence, path?}; path (e.g. '0.2.1') names the inner call or "
                    "router command a finding concerns")
    decoded: dict[str, Any] = Field(
        description="method, signature, selector, args, types, display; plus nested_calls (batches, each with "
                    "path/via/operation/from/to/value and its own findings), commands + deadline (Universal "
                    "Router), method_candidates (selector table), human_amount (token amounts with decimals)")
    unknown_facts: list[str]
    chain_context: dict[str, Any] = Field(default_factory=dict, description="facts read over JSON-RPC about the "
                                          "addresses involved: contract or EOA, proxy, token metadata")
    unknown_context_facts: list[str] = Field(default_factory=list, description="chain context that could not be "
                                             "read (no RPC node, or it failed); unknown_facts lists what the rules needed")


class MethodsAnswer(_Answered):
    source: str
    methods: list[dict[str, Any]]
    decoded: dict[str, Any] | None = None
    proxy: dict[str, Any] | None = Field(
        None, description="bytecode only: {standard: EIP-1167 | EIP-1967 | EIP-1967 beacon, implementation?, beacon?, "
                          "implementation_methods?, unknown: [facts not available]}")
    decoded_return: dict[str, Any] | None = Field(
        None, description="{success, values, empty_return?, results?}: the return data decoded with the ABI outputs")


class StoredRecord(BaseModel):
    seq: int
    leaf_hash: str
    signature: str
    kid: str
    body: dict[str, Any]
    body_b64: str


class PublicKey(BaseModel):
    kid: str
    name: str
    verifier_key: str
