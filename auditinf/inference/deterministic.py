"""The deterministic backend: an explanation built from the analysis alone.

It is the degraded answer when every model fails, and a policy may also route to it directly.
It cannot fail and needs no model; its identity is the template version.
"""

from __future__ import annotations

from typing import Any

from .base import ModelAnswer, Prompt

__all__ = ["DeterministicBackend", "TEMPLATE_VERSION"]

TEMPLATE_VERSION = "deterministic-template/1"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _arg_lines(call: dict[str, Any]) -> list[str]:
    lines = []
    for name, value in call.get("args", {}).items():
        shown = call.get("display", {}).get(name)
        text = value if isinstance(value, str) else repr(value)
        lines.append(_short(f"{name} = {shown or text}", 100))
    return lines


def _tx_summary(facts: dict[str, Any]) -> str:
    call = facts.get("call", {})
    target = facts.get("to_label") or facts.get("to")
    value = f" and sends {facts['value_eth']} ETH" if facts.get("value_wei", "0") != "0" else ""
    kind = call.get("kind")
    if kind == "native_transfer":
        text = f"Sends {facts['value_eth']} ETH to {target}; no contract function is called."
    elif kind == "contract_creation":
        text = f"Deploys a new contract{value}."
    elif kind == "unknown_selector":
        text = f"Calls unknown function {call.get('selector')} on {target}{value}; no known ABI explains it."
    else:
        text = f"Calls {call.get('signature')} on {target}{value}."
    return _short(text + _risk_text(facts), 300)


def _signing_summary(facts: dict[str, Any]) -> str:
    signing = facts.get("signing", {})
    kind = signing.get("kind")
    if kind == "typed_data":
        text = f"Asks {facts.get('signer')} to sign EIP-712 typed data: {signing.get('recognised_as')}."
    elif kind == "personal_message":
        text = f"Asks {facts.get('signer')} to sign a {'text' if signing.get('is_text') else 'binary'} message " \
               f"(personal_sign, {signing.get('bytes')} bytes)."
    else:
        text = f"Asks {facts.get('signer')} to sign {signing.get('bytes')} raw bytes blindly (eth_sign)."
    return _short(text + _risk_text(facts), 300)


def _signing_points(signing: dict[str, Any]) -> list[str]:
    display = signing.get("display", {})
    return [_short(f"{f['path']} = {display.get(f['path']) or f['value']}", 100) for f in signing.get("fields", [])]


def _risk_text(facts: dict[str, Any]) -> str:
    level = facts.get("risk_level", "none")
    if level == "none":
        return ""
    return f" Risk level {level} ({facts.get('verdict')}): " + "; ".join(f["code"] for f in facts.get("findings", [])) + "."


def _methods_summary(facts: dict[str, Any]) -> str:
    return _short(
        f"Contract interface from {facts['source']}: {facts['count']} functions, of which "
        f"{facts['state_changing']} change state and {facts['payable']} accept ETH.", 300)


class DeterministicBackend:
    """Template answer from ``Prompt.facts``; always succeeds."""

    name = "deterministic"
    kind = "deterministic"

    def identity(self) -> dict[str, Any]:
        return {"backend": "deterministic", "name": "deterministic", "id": TEMPLATE_VERSION}

    def generate(self, prompt: Prompt, *, data_class: str, timeout_s: float) -> ModelAnswer:
        facts = prompt.facts
        if prompt.kind == "methods":
            summary = _methods_summary(facts)
            points = [_short(m, 100) for m in facts.get("methods", [])[:3]]
            notes = [_short(m, 100) for m in facts.get("sensitive", [])[:3]]
        elif "signing" in facts:
            summary = _signing_summary(facts)
            points = _signing_points(facts["signing"])[:3]
            notes = [_short(f["message"], 100) for f in facts.get("findings", [])[:3]]
        else:
            summary = _tx_summary(facts)
            points = _arg_lines(facts.get("call", {}))[:3]
            notes = [_short(f["message"], 100) for f in facts.get("findings", [])[:3]]
        return ModelAnswer(content={"summary": summary, "key_points": points, "risk_notes": notes},
                           finish_reason="stop", tokens_in=0, tokens_out=0)
