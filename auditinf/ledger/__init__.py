"""The audit ledger: canonical bodies, leaf hashes, Ed25519 signatures, append, checkpoints, proofs, verify."""

from .canonical import GENESIS_PREV, LeafHash, canonical_bytes, commit, leaf_hash
from .checkpoints import CheckpointRow
from .keys import Signer, Verifier, generate_key, load_signer, parse_verifier_key
from .store import Ledger, Receipt, RecordRow, open_engine
from .tree import MerkleTree
from .verify import verify_rows

__all__ = ["GENESIS_PREV", "LeafHash", "canonical_bytes", "commit", "leaf_hash", "CheckpointRow", "Signer",
           "Verifier", "generate_key", "load_signer", "parse_verifier_key", "Ledger", "Receipt", "RecordRow",
           "MerkleTree", "open_engine", "verify_rows"]
