"""EIP-712 typed data built in tests (standard shapes per EIP-2612, DAI, Permit2, Seaport, Safe),
and their digests computed independently through eth-account's public signing API."""

from __future__ import annotations

import copy

from eth_account import Account

PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
DAI = "0x6B175474E89094C44Da98b954EedeAC495271d0F"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
WBTC = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
ROUTER = "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD"  # Universal Router v1.2 (trusted spender)
SEAPORT = "0x0000000000000068F116a894984e2DB1123eB395"
SIGNER = "0x1111111111111111111111111111111111111111"
DRAINER = "0x2222222222222222222222222222222222222222"
NFT = "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D"
SAFE = "0x3333333333333333333333333333333333333333"
MULTISEND = "0xA238CBeb142c10Ef7Ad8442C6D1f9E89e07e7761"
U256 = 2**256 - 1
U160 = 2**160 - 1
U48 = 2**48 - 1
SOON = 1_900_000_000  # 2030-03-17: within a year of the rules' test clock below
NOW = 1_899_000_000

_DOMAIN4 = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}]
_DOMAIN3 = [_DOMAIN4[0], _DOMAIN4[2], _DOMAIN4[3]]


def _fields(spec: str) -> list[dict[str, str]]:
    return [{"type": t, "name": n} for t, n in (item.split() for item in spec.split(","))]


def eip2612(value: int = U256, deadline: int = U256, spender: str = DRAINER, owner: str = SIGNER,
            chain_id: int = 1) -> dict:
    return {"types": {"EIP712Domain": _DOMAIN4,
                      "Permit": _fields("address owner,address spender,uint256 value,uint256 nonce,uint256 deadline")},
            "primaryType": "Permit",
            "domain": {"name": "USD Coin", "version": "2", "chainId": chain_id, "verifyingContract": USDC},
            "message": {"owner": owner, "spender": spender, "value": str(value), "nonce": 0, "deadline": str(deadline)}}


def dai_permit(allowed: bool = True, expiry: int = 0, spender: str = DRAINER) -> dict:
    return {"types": {"EIP712Domain": _DOMAIN4,
                      "Permit": _fields("address holder,address spender,uint256 nonce,uint256 expiry,bool allowed")},
            "primaryType": "Permit",
            "domain": {"name": "Dai Stablecoin", "version": "1", "chainId": 1, "verifyingContract": DAI},
            "message": {"holder": SIGNER, "spender": spender, "nonce": 0, "expiry": expiry, "allowed": allowed}}


_DETAILS = _fields("address token,uint160 amount,uint48 expiration,uint48 nonce")


def permit2_single(amount: int = U160, expiration: int = U48, spender: str = DRAINER, token: str = USDT,
                   sig_deadline: int = SOON) -> dict:
    return {"types": {"EIP712Domain": _DOMAIN3, "PermitDetails": _DETAILS,
                      "PermitSingle": _fields("PermitDetails details,address spender,uint256 sigDeadline")},
            "primaryType": "PermitSingle",
            "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2},
            "message": {"details": {"token": token, "amount": str(amount), "expiration": expiration, "nonce": 0},
                        "spender": spender, "sigDeadline": str(sig_deadline)}}


def permit2_batch(tokens: list[str], amount: int = 10**6, expiration: int = SOON, spender: str = DRAINER) -> dict:
    return {"types": {"EIP712Domain": _DOMAIN3, "PermitDetails": _DETAILS,
                      "PermitBatch": _fields("PermitDetails[] details,address spender,uint256 sigDeadline")},
            "primaryType": "PermitBatch",
            "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2},
            "message": {"details": [{"token": t, "amount": str(amount), "expiration": expiration, "nonce": i}
                                    for i, t in enumerate(tokens)], "spender": spender, "sigDeadline": SOON}}


def permit2_transfer(spender: str = DRAINER, amount: int = 10**6, witness: bool = False) -> dict:
    primary = "PermitWitnessTransferFrom" if witness else "PermitTransferFrom"
    fields = "TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline"
    types = {"EIP712Domain": _DOMAIN3, "TokenPermissions": _fields("address token,uint256 amount"),
             primary: _fields(fields + (",Order witness" if witness else ""))}
    message = {"permitted": {"token": USDC, "amount": str(amount)}, "spender": spender, "nonce": 7, "deadline": SOON}
    if witness:
        types["Order"] = _fields("address recipient,uint256 minOut")
        message["witness"] = {"recipient": SIGNER, "minOut": 5}
    return {"types": types, "primaryType": primary,
            "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2}, "message": message}


_ITEM = "uint8 itemType,address token,uint256 identifierOrCriteria,uint256 startAmount,uint256 endAmount"


def seaport_order(consideration_to_offerer: int, item_type: int = 0, token: str = "0x" + "00" * 20) -> dict:
    """Offer one BAYC NFT; consideration: ``consideration_to_offerer`` of ``token`` to the offerer,
    and 1 ETH to a third party (the attacker)."""
    return {"types": {"EIP712Domain": _DOMAIN4,
                      "OrderComponents": _fields(
                          "address offerer,address zone,OfferItem[] offer,ConsiderationItem[] consideration,"
                          "uint8 orderType,uint256 startTime,uint256 endTime,bytes32 zoneHash,uint256 salt,"
                          "bytes32 conduitKey,uint256 counter"),
                      "OfferItem": _fields(_ITEM), "ConsiderationItem": _fields(_ITEM + ",address recipient")},
            "primaryType": "OrderComponents",
            "domain": {"name": "Seaport", "version": "1.6", "chainId": 1, "verifyingContract": SEAPORT},
            "message": {"offerer": SIGNER, "zone": "0x" + "00" * 20,
                        "offer": [{"itemType": 2, "token": NFT, "identifierOrCriteria": "1234", "startAmount": 1,
                                   "endAmount": 1}],
                        "consideration": [
                            {"itemType": item_type, "token": token, "identifierOrCriteria": 0,
                             "startAmount": str(consideration_to_offerer), "endAmount": str(consideration_to_offerer),
                             "recipient": SIGNER},
                            {"itemType": 0, "token": "0x" + "00" * 20, "identifierOrCriteria": 0,
                             "startAmount": str(10**18), "endAmount": str(10**18), "recipient": DRAINER}],
                        "orderType": 0, "startTime": 1_700_000_000, "endTime": SOON,
                        "zoneHash": "0x" + "00" * 32, "salt": "0x5eed", "conduitKey": "0x" + "ab" * 32,
                        "counter": 0}}


def safe_tx(operation: int, to: str = DRAINER) -> dict:
    return {"types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}],
                      "SafeTx": _fields("address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
                                        "uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,"
                                        "uint256 nonce")},
            "primaryType": "SafeTx", "domain": {"chainId": 1, "verifyingContract": SAFE},
            "message": {"to": to, "value": 0, "data": "0xa9059cbb", "operation": operation, "safeTxGas": 0,
                        "baseGas": 0, "gasPrice": 0, "gasToken": "0x" + "00" * 20,
                        "refundReceiver": "0x" + "00" * 20, "nonce": 3}}


def mail() -> dict:
    """The EIP-712 specification's own example (Mail from Cow to Bob)."""
    person = [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}]
    return {"types": {"EIP712Domain": _DOMAIN4, "Person": person,
                      "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                               {"name": "contents", "type": "string"}]},
            "primaryType": "Mail",
            "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
                       "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
            "message": {"from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                        "contents": "Hello, Bob!"}}


_KEY = Account.from_key("0x" + "4c" * 32)  # a test key, derived here, never a real account's


def eth_account_digest(typed: dict) -> str:
    """The EIP-712 digest as eth-account's public signing API computes it (SignedMessage.message_hash)."""
    signed = _KEY.sign_typed_data(full_message=copy.deepcopy(typed))
    return "0x" + bytes(signed.message_hash).hex()


def request(typed: dict, chain_id: int | None = 1) -> dict:
    body = {"method": "eth_signTypedData_v4", "params": [SIGNER, typed]}
    if chain_id is not None:
        body["chain_id"] = chain_id
    return body
