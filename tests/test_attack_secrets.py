"""Regressions for the attack report's secret-detection and input findings (4, 8, 9, 12, 13, 16).

Each test replays the attack through the HTTP API and asserts the refusal and that the secret —
its text and its hex form — reached neither the ledger database files nor the logs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import eth_abi
import pytest
from eth_account import Account
from eth_account.hdaccount.mnemonic import Language, Mnemonic
from eth_utils import keccak
from fastapi.testclient import TestClient

from auditinf.api import create_app
from auditinf.policy import find_secret

M = "abandon ability able about above absent absorb abstract absurd abuse access accident"
KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
U = "0x" + "11" * 20


@pytest.fixture
def client(det_service) -> TestClient:
    return TestClient(create_app(det_service.settings, det_service), raise_server_exceptions=False)


def stored_bytes(det_service) -> bytes:
    """Every byte of the ledger's SQLite files (database, WAL, journal)."""
    db = Path(det_service.ledger.url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def assert_secret_refused(client, det_service, caplog, capsys, body: dict, secret: str, **kw) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.post("/v1/risk", json=body, **kw)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "secret_in_request"
    assert det_service.ledger.size() == 1  # the refusal is recorded ...
    refusal = json.loads(det_service.ledger.get(0).body)
    assert refusal["kind"] == "refusal" and refusal["data_class"] == "secret"
    captured = capsys.readouterr()
    logs = caplog.text + captured.out + captured.err
    stored = stored_bytes(det_service)
    for form in (secret, secret.encode().hex()):  # ... without the secret, in text or hex
        assert form.encode() not in stored
        assert form not in logs and form not in response.text


def phrase_parts() -> list[str]:
    return M.split()


# -- finding 4: personal_sign / eth_sign messages are scanned as the text they hold -----------

@pytest.mark.parametrize("params", [
    ["0x" + ("\x00my seed: " + M).encode().hex(), U],            # one control character
    ["0x" + ("my seed: " + M).encode("utf-16-le").hex(), U],     # UTF-16 text
    ["0x" + ("my seed: " + M).encode("utf-16-be").hex(), U],
    ["0x" + ("key=" + KEY + "\x01").encode().hex(), U],            # a key typed into binary
], ids=["nul-prefixed", "utf16le", "utf16be", "key-in-binary"])
def test_personal_sign_binary_message_with_secret_refused(client, det_service, caplog, capsys, params):
    message = bytes.fromhex(params[0][2:])
    secret = KEY if KEY.encode() in message else M
    if b"\x00m\x00y" in message or b"m\x00y\x00" in message:
        secret = M
    assert_secret_refused(client, det_service, caplog, capsys,
                          {"method": "personal_sign", "params": params}, secret)
    assert message.hex() not in caplog.text


def test_eth_sign_data_with_phrase_refused(client, det_service, caplog, capsys):
    body = {"method": "eth_sign", "params": [U, "0x" + ("seed: " + M).encode().hex()]}
    assert_secret_refused(client, det_service, caplog, capsys, body, M)


def test_binary_messages_without_text_still_answered(client):
    """A 32-byte hash signed with eth_sign / personal_sign is random binary: no refusal."""
    for i in range(20):
        digest = keccak(text=f"message {i}")
        for body in ({"method": "eth_sign", "params": [U, "0x" + digest.hex()]},
                     {"method": "personal_sign", "params": ["0x" + digest.hex(), U]}):
            assert client.post("/v1/risk", json=body).status_code == 200


# -- finding 8: a phrase split across typed-data fields ---------------------------------------

def typed(message_types: dict, primary: str, message: dict) -> dict:
    return {"types": {"EIP712Domain": [{"name": "name", "type": "string"}], **message_types},
            "primaryType": primary, "domain": {"name": "Wallet Backup"}, "message": message}


def test_phrase_split_over_struct_array_refused(client, det_service, caplog, capsys):
    td = typed({"Backup": [{"name": "words", "type": "Word[]"}], "Word": [{"name": "w", "type": "string"}]},
               "Backup", {"words": [{"w": x} for x in phrase_parts()]})
    assert_secret_refused(client, det_service, caplog, capsys,
                          {"method": "eth_signTypedData_v4", "params": [U, td]}, "absorb abstract")


def test_phrase_split_over_sibling_fields_refused(client, det_service, caplog, capsys):
    td = typed({"Backup": [{"name": f"w{i}", "type": "string"} for i in range(12)]}, "Backup",
               {f"w{i}": x for i, x in enumerate(phrase_parts())})
    assert_secret_refused(client, det_service, caplog, capsys,
                          {"method": "eth_signTypedData_v4", "params": [U, td]}, "absorb abstract")


def test_phrase_split_over_member_names_refused():
    hit = find_secret({"message": {w: i for i, w in enumerate(phrase_parts())}})
    assert hit is not None and hit.detector == "secret_in_field_name" and "abandon" not in hit.field


def test_checksummed_phrase_with_repeats_split_over_fields_refused():
    """Across fields a run may repeat a word when the 12 words carry a valid BIP-39 checksum."""
    phrase = Mnemonic(Language.ENGLISH).to_mnemonic(bytes(16))  # abandon ×11 about
    assert Mnemonic(Language.ENGLISH).is_mnemonic_valid(phrase)
    hit = find_secret({"words": [{"w": x} for x in phrase.split()]})
    assert hit is not None and hit.detector == "bip39_mnemonic"


def test_generated_phrases_split_over_fields_refused():
    """Phrases eth-account generates (random entropy), one word per field."""
    for words in (12, 15, 18, 24) * 15:
        phrase = Mnemonic(Language.ENGLISH).generate(words)
        assert find_secret({"message": {f"f{i}": w for i, w in enumerate(phrase.split())}}) is not None


def test_one_typo_in_a_pasted_phrase_refused():
    typo = M.replace("absent", "absnet")  # transposition
    assert find_secret({"note": typo}).detector == "bip39_mnemonic"
    assert find_secret({"note": "1. " + typo.replace(" ", ", 2. ")}) is not None  # numbered, commas
    assert find_secret({"note": M.replace("absent", "absentt")}) is not None  # insertion
    assert find_secret({"note": M.replace("absent", "zzzzzz")}) is None  # not a typo of a word
    two = M.replace("absent", "absnet").replace("abstract", "abstarct")
    assert find_secret({"note": two}) is None  # one typo only


def test_ordinary_text_and_abis_not_refused():
    root = Path(__file__).resolve().parent.parent
    for path in sorted((root / "abi_samples" / "abis").glob("*.json")):
        assert find_secret(json.loads(path.read_text())) is None, path.name
    prose = (root / "README.md").read_text()
    assert find_secret({"note": prose}) is None
    assert find_secret({"paragraphs": prose.split("\n\n"), "lines": prose.splitlines()}) is None
    # identifiers made of common words, and repeated ABI type words across fields
    names = ["offerAmount", "basicOrderType", "startTime", "endTime", "zoneHash", "salt", "offerToken"]
    assert find_secret({"inputs": [{"name": n, "type": "address"} for n in names]}) is None
    owners = [{"internalType": "address", "name": n, "type": "address"}
              for n in ("prevOwner", "oldOwner", "newOwner", "owner", "spender")]
    assert find_secret({"abi": [{"name": "swapOwner", "inputs": owners}]}) is None


# -- finding 9: X-Request-Id --------------------------------------------------------------------

@pytest.mark.parametrize("header", ["ActAddAgeAimAirAllAskArtAtomAuntAwayAxis",
                                    "act-add-age-aim-air-all-ask-art-atom-aunt-away-axis", KEY])
def test_request_id_carrying_a_secret_is_replaced(client, det_service, caplog, capsys, header):
    caplog.set_level(logging.DEBUG)
    body = {"chain_id": 1, "from": U, "to": U, "value": "0", "data": "0x"}
    response = client.post("/v1/risk", json=body, headers={"X-Request-Id": header})
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] != header and response.json()["request_id"] != header
    captured = capsys.readouterr()
    assert header not in caplog.text + captured.out + captured.err
    assert header.encode() not in stored_bytes(det_service)


def test_ordinary_request_ids_kept(client):
    body = {"chain_id": 1, "from": U, "to": U, "value": "0", "data": "0x"}
    for rid in ("req-42", "0f8fad5b-d9cb-469f-a165-70867728950e", "checkout.v2:retry-1", "OrderBook"):
        response = client.post("/v1/risk", json=body, headers={"X-Request-Id": rid})
        assert response.json()["request_id"] == rid


# -- finding 12: ordinary 32-byte words --------------------------------------------------------

def test_single_word_return_data_answered(client):
    abi = [{"type": "function", "name": "balanceOf", "stateMutability": "view",
            "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]}]
    data = keccak(text="balanceOf(address)")[:4] + eth_abi.encode(["address"], [U])
    for value in (10**18, 2**160 - 1, 0, 2**192 - 1):
        body = {"abi": abi, "data": "0x" + data.hex(), "return_data": "0x" + eth_abi.encode(["uint256"], [value]).hex()}
        response = client.post("/v1/methods", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["decoded_return"]


def test_key_shaped_return_data_refused(client, det_service, caplog, capsys):
    abi = [{"type": "function", "name": "f", "stateMutability": "view", "inputs": [], "outputs": [
        {"name": "", "type": "uint256"}]}]
    body = {"abi": abi, "data": "0x" + keccak(text="f()")[:4].hex(), "return_data": "0x" + KEY}
    caplog.set_level(logging.DEBUG)
    response = client.post("/v1/methods", json=body)
    assert response.json()["error"]["code"] == "secret_in_request"
    assert KEY.encode() not in stored_bytes(det_service)


def test_all_ones_and_small_32_byte_quantities_not_keys():
    assert find_secret({"authorizationList": [{"chainId": "0x" + "ff" * 32, "address": U, "nonce": 0}]}) is None
    assert find_secret({"value": "0x" + (10**30).to_bytes(32, "big").hex()}) is None
    assert find_secret({"value": "0x" + ((1 << 256) - 5).to_bytes(32, "big").hex()}) is None  # int256 -5
    # a real key in a field a user could paste it into is still refused, bare or in text
    assert find_secret({"value": "0x" + KEY}).detector == "private_key_hex"
    assert find_secret({"note": KEY}).detector == "private_key_hex"
    assert find_secret({"note": "key 0x" + "00" * 8 + KEY[16:]}).detector == "private_key_hex"  # in text: any run
    for _ in range(50):
        assert find_secret({"value": Account.create().key.hex()}) is not None


# -- finding 13: a phrase in top-level data ----------------------------------------------------

def test_phrase_in_top_level_data_refused(client, det_service, caplog, capsys):
    body = {"chain_id": 1, "to": U, "data": M}
    assert_secret_refused(client, det_service, caplog, capsys, body, M)


def test_key_text_in_top_level_data_refused():
    assert find_secret({"chain_id": 1, "data": "my key is " + KEY}).detector == "private_key_hex"
    assert find_secret({"bytecode": M}).detector == "bip39_mnemonic"
    # calldata with a typo is malformed hex (invalid_hex), not text with a key in it
    assert find_secret({"data": "0x095ea7b3" + "00" * 12 + "22" * 19 + "2g" + "ff" * 32}) is None


# -- finding 16: duplicate JSON keys ----------------------------------------------------------

def test_duplicate_member_names_refused(client, det_service):
    raw = b'{"chain_id":1,"to":"' + U.encode() + b'","data":"0x","private":true,"private":false}'
    response = client.post("/v1/risk", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "invalid_json", "field": "private",
                                        "message": response.json()["error"]["message"]}
    assert det_service.ledger.size() == 0
    nested = b'{"chain_id":1,"abi":[{"name":"a","name":"b"}]}'
    assert client.post("/v1/risk", content=nested).json()["error"]["code"] == "invalid_json"


def test_duplicate_secret_member_name_not_echoed(client):
    name = "".join(w.capitalize() for w in M.split())
    raw = ('{"%s":1,"%s":2}' % (name, name)).encode()
    error = client.post("/v1/risk", content=raw).json()["error"]
    assert error["code"] == "invalid_json" and name not in json.dumps(error)
