#!/usr/bin/env bash
# Install and run the whole test suite (real SmolLM2 model and llama_cpp.server included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
.venv/bin/python -m pytest "$@"
