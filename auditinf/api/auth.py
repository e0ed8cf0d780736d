"""Client authentication of the HTTP API: ``Authorization: Bearer <token>`` (RFC 6750 §2.1).

With a client registry holding at least one client (:mod:`auditinf.auth.registry`), every endpoint
that runs a request or reads a job (explain, risk, methods, gate, jobs) requires the token of an
active client, checked before the body is read:

- no bearer credentials (no ``Authorization`` header, or another scheme) → 401 ``unauthenticated``;
- a token no active client holds (unknown, revoked, malformed) → 401 ``invalid_token``;
  both with ``WWW-Authenticate: Bearer realm="auditinf"`` (``, error="invalid_token"`` for the
  second, RFC 6750 §3) and never quoting the token;
- the client id is the registry id the token belongs to. An ``X-Client-Id`` header naming another
  id → 403 ``client_mismatch`` (the same id, or no header, is fine): a caller that believes it is
  someone else is told so rather than silently recorded under another name.

Without a registry (the default file absent, or no client in it) the API behaves as it did before
authentication: the client id is the self-declared ``X-Client-Id`` (default ``anonymous``), an
``Authorization`` header is ignored, and records say ``client_auth: "declared"``. Start-up logs a
warning and ``/readyz`` reports it. The transparency endpoints (records, pubkey, checkpoints,
proofs, consistency), ``/healthz``, ``/readyz`` and ``/metrics`` never require a token.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..auth import CLIENT_ID_PATTERN, DECLARED, TOKEN, RegistryFile
from ..config import Settings
from ..errors import ClientMismatch, InputError, Unauthenticated
from ..obs.context import current_request

__all__ = ["Caller", "Client", "AUTH_RESPONSES", "authenticate", "client_registry", "auth_status"]

log = logging.getLogger("auditinf.api.auth")

_bearer = HTTPBearer(auto_error=False, scheme_name="clientToken",
                     description="a client token from `auditinf clients add ID` (required when the server "
                                 "has a client registry)")


@dataclass(frozen=True)
class Caller:
    """Who sent the request: ``client_id`` and how it was established (``token`` | ``declared``)."""

    client_id: str
    client_auth: str


def client_registry(settings: Settings) -> RegistryFile:
    """The app's client registry (``settings.client_registry_file``); an explicitly configured
    file must exist. Logs one warning when authentication is off. Raises ``KeyFileError`` /
    ``ClientRegistryError`` for a missing (explicit), group/world-readable or invalid file."""
    registry = RegistryFile(settings.client_registry_file, required=settings.clients_file is not None)
    if not registry.current().enabled:
        log.warning("client authentication is off: no client registry, X-Client-Id is self-declared",
                    extra={"fields": {"path": str(registry.path)}})
    return registry


def auth_status(registry: RegistryFile) -> dict:
    """For ``/readyz``: ``{"client_auth": "token" | "declared"}``, with a ``warnings`` list when off."""
    if registry.current().enabled:
        return {"client_auth": TOKEN}
    return {"client_auth": DECLARED, "warnings": ["client authentication is off: no client registry "
                                                  "(AUDITINF_CLIENTS_FILE), X-Client-Id is self-declared"]}


async def authenticate(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        declared: Annotated[str | None, Header(alias="X-Client-Id", description=(
            "client id, 1-64 of [A-Za-z0-9._:-]: names the client when the server has no client registry; "
            "with one, it must be the token's client or absent"))] = None) -> Caller:
    """The request's :class:`Caller` (see the module docstring). Raises :class:`Unauthenticated`
    (401), :class:`ClientMismatch` (403) or, without a registry, :class:`InputError` (422) for a
    malformed ``X-Client-Id``."""
    registry = request.app.state.clients.current()
    if not registry.enabled:
        client_id = "anonymous" if declared is None else declared
        if not re.fullmatch(CLIENT_ID_PATTERN, client_id):
            raise InputError("X-Client-Id must be 1-64 characters of A-Z a-z 0-9 . _ : -", field="X-Client-Id")
        return Caller(client_id, DECLARED)
    if credentials is None:
        raise Unauthenticated("this endpoint requires Authorization: Bearer <client token>")
    client_id = registry.authenticate(credentials.credentials)
    if client_id is None:
        raise Unauthenticated("the bearer token is not a valid client token (unknown or revoked)",
                              code="invalid_token")
    if declared is not None and declared != client_id:
        raise ClientMismatch("X-Client-Id names another client than the bearer token authenticates",
                             field="X-Client-Id")
    ctx = current_request()
    if ctx is not None:
        ctx.authenticated_client = client_id  # records of this request say client_auth: "token"
    return Caller(client_id, TOKEN)


Client = Annotated[Caller, Depends(authenticate)]

AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"description": "unauthenticated | invalid_token (a client registry is configured), "
                         "with WWW-Authenticate: Bearer"},
    403: {"description": "client_mismatch: X-Client-Id names another client than the token"},
}
"""OpenAPI responses of every endpoint that takes :data:`Client`."""
