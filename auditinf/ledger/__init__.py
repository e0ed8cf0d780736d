"""The audit ledger: canonical bodies, leaf hashes, Ed25519 signatures, append and verify."""

from .canonical import GENESIS_PREV, LeafHash, canonical_bytes, commit, leaf_hash
from .keys import Signer, Verifier, generate_key, load_signer, parse_verifier_key
from .store import Ledger, Receipt, RecordRow, open_engine
from .verify import verify_rows

__all__ = ["GENESIS_PREV", "LeafHash", "canonical_bytes", "commit", "leaf_hash", "Signer", "Verifier",
           "generate_key", "load_signer", "parse_verifier_key", "Ledger", "Receipt", "RecordRow",
           "open_engine", "verify_rows"]
