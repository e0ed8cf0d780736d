"""Data classes: ``public`` | ``private`` | ``secret``.

``secret``: the request carries signing material anywhere (field values, ABI names, the client
id, the request id) and is refused (422 ``secret_in_request``); the refusal names the field and
the detector, never the value. Detectors:

- ``private_key_hex`` — a 32-byte secp256k1 private key in hex (SEC 1 §2.4; 64 hex digits).
  *Inside text* (a string that is not a bare hex value) any run of exactly 64 hex digits is one.
  *A bare 32-byte hex value* (``0x`` + 64 digits, the whole string) is one when it is
  **key-shaped**: a valid secret key 1 ≤ k < n (the curve order) with k ≥ 2^192. Keys are uniform
  in [1, n), so a real key is below 2^192 with probability 2^-64, while the numbers a 32-byte
  field ordinarily holds — wei amounts, chain ids, nonces, counters, an address or a bool padded
  to an ABI word — are far below 2^192 and all-ones masks (max uint256, a small negative int256
  in two's complement) are ≥ n. What a key-shaped value cannot be told from is a hash or other
  random ``bytes32``; it is refused wherever its type does not say it is one (typed-data
  ``bytes``/``bytesN`` values and the EIP-7702 signature parts ``r``/``s`` are binary by type).
  Integers (JSON numbers, decimal strings) are not checked: uint256 ids are often uniformly
  random 256-bit values (an ENS name's token id is its labelhash), so a key-shaped decimal would
  refuse ordinary NFT listings.
  *Fields that are hex data by contract* — top-level ``data`` (calldata), ``bytecode`` and
  ``return_data`` (ABI-encoded output) — hold long hex runs; in them only a value of exactly 32
  bytes is checked: calldata or runtime code of exactly 32 bytes is never well formed
  (selector + 32·k bytes), so it is a pasted key whatever it holds; a single-word
  ``return_data`` is refused when key-shaped. A value in those fields that is not hex is
  scanned as text, unless it is hex but for at most one character in 32 (malformed calldata,
  answered ``invalid_hex`` and never stored).
- ``bip39_mnemonic`` — a run of ≥ 12 BIP-39 English words (the wordlist eth-account ships; checksum
  not required) in one string, across the items of a list (strings, or the ``name`` of each item,
  as ABI parameters named one word each), across the member names of an object, or across all
  string values in document order — a phrase split over sibling fields of a struct or items of an
  array. camelCase and snake_case are split into words. Across fields at most one word of the 12
  may repeat unless they carry a valid BIP-39 checksum (``abandon ×11 about``): a generated phrase
  repeats one with probability ~3 %, while ABIs repeat ``address``, ``owner``… in document order
  (the bundled ABIs and ordinary English prose raise no refusal). Within one string of pasted words
  (whitespace, commas, numbering) one misspelt word is tolerated — a token of 3–8 letters one edit
  (insertion, deletion, substitution or transposition) from a BIP-39 word — since pasted phrases
  often have a typo; not across fields or camelCase identifiers, where tolerance refuses ordinary
  names (``offerAmount basicOrderType … zoneHash salt``). Other languages' lists are not used: the
  Chinese lists are the 2,048 most common characters, so any 12 characters of ordinary Chinese text
  would be refused, and the Latin-script lists (French, Spanish, Italian, Czech) are each 2,048
  common words of their language, raising false refusals of prose. MetaMask, Ledger and Trezor
  generate English phrases only; a phrase in another language's list is not detected.
- ``keystore_json`` — a Web3 Secret Storage keystore (``crypto`` with ``ciphertext``).
- ``secret_field_name`` / ``secret_in_field_name`` — a non-empty field named like
  ``private_key``, ``privateKeyHex``, ``mnemonicPhrase`` or ``seed``, or a field *name* that is
  itself a key or phrase.

``private``: the request says ``"private": true``, its client is listed in the policy's
``private_clients``, or ``from``/``to`` is one of the policy's ``private_addresses``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Iterator

from eth_account.hdaccount.mnemonic import Language, Mnemonic

from ..errors import SecretInRequest
from .spec import Policy

__all__ = ["SecretHit", "find_secret", "secret_refusal", "refuse_secrets", "data_class", "text_secret"]

_HEX_KEY = re.compile(r"^(0[xX])?[0-9a-fA-F]{64}$")
_HEX_KEY_IN_TEXT = re.compile(r"(?<![0-9a-fA-F])(0[xX])?[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_HEX_VALUE = re.compile(r"^(0[xX])?[0-9a-fA-F]*$")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # SEC 2 §2.4.1
_KEY_FLOOR = 1 << 192
_SECRET_NAMES = {"secret", "seed", "password", "passphrase"}  # exact (normalised) field names
_SECRET_PARTS = ("privatekey", "privkey", "secretkey", "mnemonic", "seedphrase", "recoveryphrase", "keystore",
                 "walletpassword")  # anywhere in a field name
# Top-level fields whose strings are hex data by contract: long hex runs are expected there.
_HEX_FIELDS = {"data", "bytecode", "return_data"}
# EIP-7702 authorisation signature parts (r, s): public 32-byte values by construction, not keys
_SIGNATURE_PARTS = re.compile(r"\$\.authorizationList\[\d+\]\.(r|s)")
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")  # splits camelCase and snake_case alike
_MIN_PHRASE = 12


@dataclass(frozen=True)
class SecretHit:
    field: str
    detector: str


@lru_cache(maxsize=1)
def _mnemonic() -> Mnemonic:
    return Mnemonic(Language.ENGLISH)


@lru_cache(maxsize=1)
def _bip39_words() -> frozenset[str]:
    return frozenset(_mnemonic().wordlist)


@lru_cache(maxsize=4096)
def _near_word(token: str) -> bool:
    """``token`` (3–8 lowercase letters) is one edit from a BIP-39 word: a typo."""
    if not 3 <= len(token) <= 8:
        return False
    words, letters = _bip39_words(), string.ascii_lowercase
    splits = [(token[:i], token[i:]) for i in range(len(token) + 1)]
    edits = ([a + b[1:] for a, b in splits if b]
             + [a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]
             + [a + c + b[1:] for a, b in splits if b for c in letters]
             + [a + c + b for a, b in splits for c in letters])
    return any(e in words for e in edits)


class _PhraseRun:
    """Counts BIP-39 words over a token stream: :meth:`feed` is true once the last 12 tokens are
    BIP-39 words — but one typo when ``typo_ok``. With ``distinct`` (the stream across fields)
    at most one word may repeat unless the 12 words carry a valid BIP-39 checksum: a generated
    phrase repeats a word with probability ~3 %, while ABIs and identifiers repeat ``address``,
    ``owner``, … A non-word is checked for being a typo only when a window would otherwise match
    (the check costs ~450 set look-ups)."""

    def __init__(self, *, typo_ok: bool = False, distinct: bool = False) -> None:
        self.typo_ok, self.distinct = typo_ok, distinct
        self.run: list[str] = []   # the current run's last tokens (≤ 12)
        self.typo = -1             # index in ``run`` of its one non-word, -1 when none

    def _drop_through_typo(self) -> None:
        del self.run[: self.typo + 1]
        self.typo = -1

    def _varied(self) -> bool:
        return (not self.distinct or len(set(self.run)) >= _MIN_PHRASE - 1
                or (self.typo < 0 and _mnemonic().is_mnemonic_valid(" ".join(self.run))))

    def feed(self, tokens: Iterable[str]) -> bool:
        words = _bip39_words()
        for token in tokens:
            token = token.lower()
            if token not in words:
                if not self.typo_ok:
                    self.run.clear()
                    continue
                if self.typo >= 0:
                    self._drop_through_typo()
                self.typo = len(self.run)
            self.run.append(token)
            if len(self.run) > _MIN_PHRASE:
                del self.run[0]
                self.typo = self.typo - 1 if self.typo >= 0 else -1
            if len(self.run) == _MIN_PHRASE and self._varied():
                if self.typo < 0 or _near_word(self.run[self.typo]):
                    return True
                self._drop_through_typo()
        return False


def _pasted_words(text: str) -> list[str]:
    """Whitespace/comma-separated words of ``text``, numbering and punctuation stripped
    (``"1. abandon, 2. ability"`` → ``["abandon", "ability"]``); a piece that is not letters is
    kept as is (it breaks a run)."""
    pieces = (p.strip(string.digits + string.punctuation) for p in re.split(r"[\s,;]+", text))
    return [p for p in pieces if p]


def _has_phrase(text: str) -> bool:
    """A phrase in one string: exact words (camelCase/snake_case split), or pasted words with
    one typo tolerated."""
    return _PhraseRun().feed(_WORD.findall(text)) or _PhraseRun(typo_ok=True).feed(_pasted_words(text))


def _key_is_secret(key: str) -> bool:
    return bool(_HEX_KEY_IN_TEXT.search(key)) or _has_phrase(key)


def _key_shaped(value: str) -> bool:
    """A bare 32-byte hex value that may be a private key (see the module docstring)."""
    return _KEY_FLOOR <= int(value.strip(), 16) < _SECP256K1_N


def text_secret(text: str) -> str | None:
    """The detector (``private_key_hex`` | ``bip39_mnemonic``) that finds signing material in a
    free-text value such as a header, or ``None``."""
    if _HEX_KEY_IN_TEXT.search(text):
        return "private_key_hex"
    if _has_phrase(text):
        return "bip39_mnemonic"
    return None


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


def _string_secret(path: str, top: str | None, node: str) -> str | None:
    """The detector that fires on the string ``node`` at ``path``, or ``None``."""
    if _SIGNATURE_PARTS.fullmatch(path):
        return None
    bare = node.strip()
    if _HEX_VALUE.match(bare):
        if not _HEX_KEY.match(bare):
            return None  # hex that is not exactly 32 bytes: no 64-digit run stands alone in it
        if path in ("$.data", "$.bytecode"):
            return "private_key_hex"  # exactly 32 bytes is never a well-formed call or contract
        if top in _HEX_FIELDS and path != "$.return_data":
            return None
        return "private_key_hex" if _key_shaped(bare) else None
    if top in _HEX_FIELDS and _malformed_hex(bare):
        return None  # a typo in hex data: refused as invalid_hex, never stored
    return text_secret(node)


def _malformed_hex(value: str) -> bool:
    """Hex but for at most one character in 32 (``0x095e…g…``), not text."""
    digits = value[2:] if value[:2] in ("0x", "0X") else value
    stray = sum(c not in string.hexdigits for c in digits)
    return stray * 32 <= len(digits)


def find_secret(body: Any) -> SecretHit | None:
    """First secret in a request body (any JSON value), or ``None``."""
    stream = _PhraseRun(distinct=True)  # every string value in document order: a phrase split over fields
    for path, top, node in _walk(body, "$", None):
        field = path[2:] or "$"
        if isinstance(node, dict):
            crypto = node.get("crypto") or node.get("Crypto")
            if isinstance(crypto, dict) and "ciphertext" in crypto:
                return SecretHit(field, "keystore_json")
            if _PhraseRun(distinct=True).feed(_WORD.findall(" ".join(map(str, node)))):
                return SecretHit(field, "secret_in_field_name")  # a phrase spread over member names
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
            detector = _string_secret(path, top, node)
            if detector:
                return SecretHit(field, detector)
            if stream.feed(_WORD.findall(node)):
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
