"""Client authentication: the client registry (id → SHA-256 of a bearer token) and how a record
says who its client is (:mod:`.identity`, :mod:`.registry`; the HTTP side is :mod:`auditinf.api.auth`)."""

from .identity import CLIENT_ID_PATTERN, DECLARED, TOKEN, client_fields
from .registry import ClientEntry, Registry, RegistryFile, load_registry, new_token, token_sha256

__all__ = ["CLIENT_ID_PATTERN", "DECLARED", "TOKEN", "client_fields", "ClientEntry", "Registry", "RegistryFile",
           "load_registry", "new_token", "token_sha256"]
