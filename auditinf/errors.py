"""One error tree for auditinf, every error carrying a stable machine-readable ``code``.

::

    AuditinfError(code, http_status)
    ├── InputError            4xx: the request itself is wrong
    │   ├── BadHex            invalid_hex, odd_length_hex            (also ValueError)
    │   ├── BadCalldata       calldata_too_short, abi_decode_error   (also ValueError)
    │   ├── BadAbi            invalid_abi                            (also ValueError)
    │   ├── BadBytecode       invalid_bytecode                       (also ValueError)
    │   ├── BadTypedData      invalid_typed_data (EIP-712)           (also ValueError)
    │   ├── SecretInRequest   secret_in_request (422)
    │   ├── NotFound          not_found (404)
    │   ├── ClientMismatch    client_mismatch (403): X-Client-Id names another client than the token
    │   └── RequestTooLarge   request_too_large (413)
    ├── Unauthenticated       unauthenticated, invalid_token (401 + WWW-Authenticate: Bearer, RFC 6750)
    ├── Overloaded            queue_full (503 + Retry-After): the local model's queue is full
    ├── PolicyError           invalid_policy: a policy file fails its schema or its invariants
    ├── BudgetExhausted       budget_exhausted (402): the client's daily spend limit is reached
    ├── InferenceError        one model attempt failed; the router records it and moves on
    │   ├── BackendUnavailable  not configured / not loaded
    │   ├── ModelTimeout        per-attempt deadline passed
    │   ├── UpstreamError       HTTP status from a hosted model (``status`` kept)
    │   ├── InvalidModelOutput  not JSON, fails the answer schema, truncated (finish_reason=length)
    │   └── PrivacyViolation    a non-public request reached a hosted backend (a bug; never retried)
    ├── LedgerError           ledger_error: the record could not be durably appended
    │   └── KeyFileError      key_file_error: key (or client registry) missing, unreadable or world-readable
    ├── ClientRegistryError   invalid_client_registry: the clients file fails its schema or invariants
    └── VerificationError     a stored record, link or signature does not verify (``seq`` kept)

The HTTP layer turns any of them into ``{"error": {"code", "message"}}`` with ``http_status`` and
the error's :meth:`~AuditinfError.headers`; the CLI prints the same object and exits 2.
"""

from __future__ import annotations

__all__ = [
    "AuditinfError",
    "InputError",
    "BadHex",
    "BadCalldata",
    "BadAbi",
    "BadBytecode",
    "BadTypedData",
    "SecretInRequest",
    "NotFound",
    "ClientMismatch",
    "Unauthenticated",
    "RequestTooLarge",
    "Overloaded",
    "PolicyError",
    "ClientRegistryError",
    "BudgetExhausted",
    "InferenceError",
    "BackendUnavailable",
    "ModelTimeout",
    "UpstreamError",
    "InvalidModelOutput",
    "PrivacyViolation",
    "LedgerError",
    "KeyFileError",
    "VerificationError",
]


class AuditinfError(Exception):
    """Base of every auditinf error: ``code`` is stable, ``message`` is for people."""

    code: str = "internal_error"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def to_dict(self) -> dict:
        """The wire shape: ``{"error": {"code", "message"[, "field"]}}``."""
        err: dict = {"code": self.code, "message": self.message}
        if self.field:
            err["field"] = self.field
        return {"error": err}

    def headers(self) -> dict[str, str] | None:
        """HTTP response headers the error requires (``Retry-After``, ``WWW-Authenticate``), or ``None``."""
        return None


class InputError(AuditinfError):
    code = "invalid_request"
    http_status = 422


class BadHex(InputError, ValueError):
    code = "invalid_hex"


class BadCalldata(InputError, ValueError):
    code = "abi_decode_error"


class BadAbi(InputError, ValueError):
    code = "invalid_abi"


class BadBytecode(InputError, ValueError):
    code = "invalid_bytecode"


class BadTypedData(InputError, ValueError):
    code = "invalid_typed_data"


class SecretInRequest(InputError):
    code = "secret_in_request"


class NotFound(InputError):
    code = "not_found"
    http_status = 404


class RequestTooLarge(InputError):
    code = "request_too_large"
    http_status = 413


class ClientMismatch(InputError):
    """``X-Client-Id`` names another client than the one the bearer token authenticates."""

    code = "client_mismatch"
    http_status = 403


class Unauthenticated(AuditinfError):
    """No valid bearer token (RFC 6750 §3): ``unauthenticated`` when none was presented (or another
    scheme was), ``invalid_token`` when the token is unknown or revoked. The message never quotes it."""

    code = "unauthenticated"
    http_status = 401

    def headers(self) -> dict[str, str]:
        """``WWW-Authenticate: Bearer realm="auditinf"``, with ``error="invalid_token"`` for a
        presented token (RFC 6750 §3, §3.1; no error code when none was presented)."""
        challenge = 'Bearer realm="auditinf"'
        if self.code == "invalid_token":
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class Overloaded(AuditinfError):
    """Refused before any work because a bounded queue is full; retry after ``retry_after_s`` s."""

    code = "queue_full"
    http_status = 503

    def __init__(self, message: str, *, retry_after_s: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = max(1, int(retry_after_s))

    def headers(self) -> dict[str, str]:
        """``Retry-After`` in whole seconds (RFC 9110 §10.2.3)."""
        return {"Retry-After": str(self.retry_after_s)}


class PolicyError(AuditinfError):
    code = "invalid_policy"


class ClientRegistryError(AuditinfError):
    """The client registry (``AUDITINF_CLIENTS_FILE``) is not valid JSON, fails its schema, or two
    clients share one token hash."""

    code = "invalid_client_registry"
    http_status = 503


class BudgetExhausted(AuditinfError):
    """The client's spend today (UTC) has reached its policy budget; refused before any model call."""

    code = "budget_exhausted"
    http_status = 402


class InferenceError(AuditinfError):
    """One failed model attempt. ``error_type`` is what the audit record stores."""

    code = "inference_error"
    error_type = "error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None, retryable: bool | None = None,
                 error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        if retryable is not None:
            self.retryable = retryable
        if error_type is not None:
            self.error_type = error_type


class BackendUnavailable(InferenceError):
    error_type = "unavailable"


class ModelTimeout(InferenceError):
    error_type = "timeout"
    retryable = True


class UpstreamError(InferenceError):
    error_type = "upstream_error"


class InvalidModelOutput(InferenceError):
    error_type = "schema_invalid"


class PrivacyViolation(InferenceError):
    error_type = "privacy_violation"


class LedgerError(AuditinfError):
    code = "ledger_error"
    http_status = 503


class KeyFileError(LedgerError):
    code = "key_file_error"


class VerificationError(AuditinfError):
    """A ledger failed verification at ``seq`` during ``step``."""

    code = "verification_failed"

    def __init__(self, message: str, *, seq: int | None, step: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.step = step
