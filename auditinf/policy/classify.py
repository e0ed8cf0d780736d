"""Data classes: ``public`` | ``private`` | ``secret``.

``secret``: the request carries signing material anywhere (field values, ABI names, the client
id) — a 32-byte hex private key (64 hex digits on their own or inside text; in ``data``, calldata
of exactly 32 bytes, which no well-formed call has), a run of ≥ 12 BIP-39 English words in one
string or a list of words (the wordlist eth-account ships; checksum not required, since pasted
phrases often have a typo), a Web3 Secret Storage keystore (``crypto`` with ``ciphertext``), or a
non-empty field named like ``private_key``, ``privateKeyHex``, ``mnemonicPhrase`` or ``seed``.
Such a request is refused (422 ``secret_in_request``); the refusal names the field and the
detector, never the value.

``private``: the request says ``"private": true``, its client is listed in the policy's
``private_clients``, or ``from``/``to`` is one of the policy's ``private_addresses``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

from eth_account.hdaccount.mnemonic import Language, Mnemonic

from ..errors import SecretInRequest
from .spec import Policy

__all__ = ["SecretHit", "find_secret", "secret_refusal", "refuse_secrets", "data_class"]

_HEX_KEY = re.compile(r"^(0[xX])?[0-9a-fA-F]{64}$")
_HEX_KEY_IN_TEXT = re.compile(r"(?<![0-9a-fA-F])(0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_SECRET_NAMES = {"secret", "seed", "password", "passphrase"}  # exact (normalised) field names
_SECRET_PARTS = ("privatekey", "privkey", "secretkey", "mnemonic", "seedphrase", "recoveryphrase", "keystore",
                 "walletpassword")  # anywhere in a field name
# Fields whose strings are hex data by contract (calldata, code): long hex runs are expected there.
_HEX_FIELDS = {"data", "bytecode"}
# EIP-7702 authorisation signature parts (r, s): public 32-byte values by construction, not keys
_SIGNATURE_PARTS = re.compile(r"\$\.authorizationList\[\d+\]\.(r|s)")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")  # splits camelCase and snake_case alike
_MIN_PHRASE = 12


@dataclass(frozen=True)
class SecretHit:
    field: str
    detector: str


@lru_cache(maxsize=1)
def _bip39_words() -> frozenset[str]:
    return frozenset(Mnemonic(Language.ENGLISH).wordlist)


def _has_phrase(text: str) -> bool:
    words = _bip39_words()
    run = 0
    for token in _WORD.findall(text):
        run = run + 1 if token.lower() in words else 0
        if run >= _MIN_PHRASE:
            return True
    return False


def _key_is_secret(key: str) -> bool:
    return bool(_HEX_KEY_IN_TEXT.search(key)) or _has_phrase(key)


def _shown(key: Any) -> str:
    """A field name as it may appear in errors and records: never one that holds a secret."""
    key = str(key)
    return "[redacted]" if _key_is_secret(key) else key[:64]


def _walk(node: Any, path: str, top: str | None) -> Iterator[tuple[str, str | None, Any]]:
    yield path, top, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{_shown(key)}", top if top is not None else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]", top)


def _secret_name(key: Any) -> bool:
    norm = re.sub(r"[^a-z]", "", str(key).lower())
    return norm in _SECRET_NAMES or any(part in norm for part in _SECRET_PARTS)


def find_secret(body: Any) -> SecretHit | None:
    """First secret in a request body (any JSON value), or ``None``."""
    for path, top, node in _walk(body, "$", None):
        field = path[2:] or "$"
        if isinstance(node, dict):
            crypto = node.get("crypto") or node.get("Crypto")
            if isinstance(crypto, dict) and "ciphertext" in crypto:
                return SecretHit(field, "keystore_json")
            for key, value in node.items():
                if _key_is_secret(str(key)):
                    return SecretHit(field, "secret_in_field_name")
                if _secret_name(key) and value not in (None, "", [], {}, False):
                    return SecretHit(f"{field}.{_shown(key)}".lstrip("$."), "secret_field_name")
        elif isinstance(node, list) and node:
            # a phrase spread over list items: plain words, or ABI parameters named one word each
            words = [v if isinstance(v, str) else v.get("name") for v in node
                     if isinstance(v, str) or isinstance(v, dict)]
            if _has_phrase(" ".join(w for w in words if isinstance(w, str))):
                return SecretHit(field, "bip39_mnemonic")
        elif isinstance(node, str):
            if _SIGNATURE_PARTS.fullmatch(path):
                continue
            if top in _HEX_FIELDS:
                if path in ("$.data", "$.bytecode") and _HEX_KEY.match(node.strip()):
                    # exactly 32 bytes is never a well-formed call (selector + 32·k bytes): a pasted key
                    return SecretHit(field, "private_key_hex")
                continue
            if _HEX_KEY_IN_TEXT.search(node):
                return SecretHit(field, "private_key_hex")
            if _has_phrase(node):
                return SecretHit(field, "bip39_mnemonic")
    return None


def secret_refusal(hit: SecretHit) -> SecretInRequest:
    """The 422 ``secret_in_request`` error for ``hit``: names the field and detector, never the value."""
    return SecretInRequest(
        f"the request carries signing material ({hit.detector}) in field '{hit.field}'; the request is "
        "refused and the secret was not stored (the refusal itself is recorded, without it). Never send "
        "private keys or recovery phrases to any service.",
        field=hit.field,
    )


def refuse_secrets(body: Any) -> None:
    """Raise :class:`SecretInRequest` (422 ``secret_in_request``) if ``body`` carries a secret."""
    hit = find_secret(body)
    if hit:
        raise secret_refusal(hit)


def data_class(policy: Policy, *, private_flag: bool, client_id: str, addresses: list[str | None]) -> str:
    """``private`` or ``public`` for a request that passed :func:`refuse_secrets`."""
    if private_flag or client_id in policy.private_clients:
        return "private"
    if any(a and a.lower() in policy.private_addresses for a in addresses):
        return "private"
    return "public"
