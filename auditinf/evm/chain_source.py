"""Which chain facts a request gets: the operator's node, a node the request names, or none.

- ``AUDITINF_RPC_URL`` (operator's setting, trusted): every request reads its facts there.
- ``rpc_url`` in a request body: only when the policy's ``chain.allow_request_rpc_url`` is true
  (else ``rpc_url_not_allowed``). The service then makes HTTP requests to a URL a client chose —
  a server-side request forgery risk — so the URL must be ``http``/``https`` with a host, no
  user-info (credentials) and no fragment, and every address the host resolves to must be a
  global unicast address (no loopback, private, link-local — cloud metadata at 169.254.169.254 —,
  multicast or reserved ranges) unless ``chain.allow_private_hosts`` is set. Redirects are not
  followed, each call has the policy's ``chain.timeout_s`` and is not retried. Residual risk:
  the name is resolved here and again by the HTTP client (DNS rebinding between the two).
- otherwise the service's configured :class:`~auditinf.evm.chain.ChainFacts` (a fresh
  ``session()`` of it per request when it has one), or none.

Raises ``invalid_rpc_url`` / ``rpc_url_not_allowed`` (422).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from web3 import HTTPProvider, Web3

from ..errors import InputError
from .chain import ChainFacts, RpcChainFacts

__all__ = ["rpc_facts", "check_request_rpc_url", "facts_for_request"]

_MAX_URL = 2048


def _endpoint(url: str) -> str:
    """What the record keeps of an RPC URL: scheme, host and port (paths often carry API keys)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def rpc_facts(url: str, timeout_s: float = 5.0) -> RpcChainFacts:
    """Chain facts from the JSON-RPC node at ``url`` (no redirects, ``timeout_s`` per call, no retries)."""
    provider = HTTPProvider(url, request_kwargs={"timeout": timeout_s, "allow_redirects": False},
                            exception_retry_configuration=None)
    return RpcChainFacts(Web3(provider), endpoint=_endpoint(url))


def check_request_rpc_url(url: Any, *, allow_private_hosts: bool) -> str:
    """Validate a client-supplied RPC URL (see the module docstring); returns it unchanged."""
    bad = InputError("rpc_url must be an http(s) URL with a host and no credentials", code="invalid_rpc_url",
                     field="rpc_url")
    if not isinstance(url, str) or len(url) > _MAX_URL:
        raise bad
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password \
            or parts.fragment:
        raise bad
    if allow_private_hosts:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError("rpc_url host does not resolve", code="invalid_rpc_url", field="rpc_url") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            raise InputError("rpc_url resolves to a loopback, private, link-local or reserved address",
                             code="rpc_url_not_allowed", field="rpc_url")
    return url


def facts_for_request(body: dict, *, default: ChainFacts, settings_url: str | None, chain_policy: Any) -> ChainFacts:
    """The chain facts one request reads (see the module docstring).

    ``chain_policy``: the policy's ``chain`` section (``allow_request_rpc_url``,
    ``allow_private_hosts``, ``timeout_s``).
    """
    url = body.get("rpc_url")
    if url is not None:
        if not chain_policy.allow_request_rpc_url:
            raise InputError("this service's policy does not allow a per-request rpc_url",
                             code="rpc_url_not_allowed", field="rpc_url")
        return rpc_facts(check_request_rpc_url(url, allow_private_hosts=chain_policy.allow_private_hosts),
                         chain_policy.timeout_s)
    if settings_url:
        return rpc_facts(settings_url, chain_policy.timeout_s)
    session = getattr(default, "session", None)  # per-request state (pinned block, call log)
    return session() if session else default
