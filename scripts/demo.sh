#!/usr/bin/env bash
# Quickstart: install, then risk-score a bundled real transaction with the embedded defaults
# (SQLite ledger under ledger/, local SmolLM2 model) and verify the ledger offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
[ -f ledger/keys/signing.key ] || auditinf keygen
auditinf risk abi_samples/transactions/erc20_approve_unlimited.json
auditinf verify --pubkey ledger/keys/signing.pub
