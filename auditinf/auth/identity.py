"""Who a record's client is, and how the service knows: its ``client_id`` and ``client_auth``.

- ``client_auth: "token"`` — ``client_id`` is the registry id whose bearer token the request
  presented (``Authorization: Bearer``, RFC 6750; :mod:`auditinf.api.auth`);
- ``client_auth: "declared"`` — ``client_id`` is what the caller said: the ``X-Client-Id``
  header when no client registry is configured, ``anonymous`` without it, ``cli`` or
  ``--client-id`` on the command line, ``[redacted]`` when the header itself was a secret.
"""

from __future__ import annotations

from ..obs.context import current_request

__all__ = ["CLIENT_ID_PATTERN", "TOKEN", "DECLARED", "client_fields"]

CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
"""Client ids: 1–64 of ``A-Z a-z 0-9 . _ : -`` (registry ids and ``X-Client-Id`` alike)."""

TOKEN, DECLARED = "token", "declared"


def client_fields(client_id: str) -> dict[str, str]:
    """The record members ``{"client_id", "client_auth"}``: ``token`` only when the current
    request's bearer token authenticated exactly ``client_id``, else ``declared``."""
    ctx = current_request()
    proven = ctx is not None and ctx.authenticated_client is not None and ctx.authenticated_client == client_id
    return {"client_id": client_id, "client_auth": TOKEN if proven else DECLARED}
