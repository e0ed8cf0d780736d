"""A fault-injecting OpenAI-compatible chat-completions server on loopback, for tests.

Each incoming ``POST …/chat/completions`` takes the next behaviour from ``script`` (the last one
repeats). Every request's path, headers and raw body are logged in ``requests`` so tests can
prove what did — and did not — reach the "hosted" side.

Behaviours (dicts):

- ``{"answer": {...}}`` a valid completion whose content is that JSON (the default);
- ``{"content": "...", "finish_reason": "stop"}`` raw content (malformed or truncated JSON);
- ``{"status": 500}`` an error (``"retry_after": 1`` adds the header, ``"body"`` overrides the
  JSON body);
- ``{"hang": 5}`` accept, read the request, send nothing for 5 s, then close;
- ``{"reset": True}`` abort the connection with a TCP RST (SO_LINGER 0), no response;
- ``{"drop": True}`` read the request, then close the connection (FIN) without a response — what
  a client sees when the server closes a kept-alive connection as the request goes out;
- ``{"slow": 3.0}`` a valid completion sent as a chunked body, a few bytes at a time, over 3 s;
- ``{"raw": "..."}`` a 200 response whose body is that text (e.g. malformed JSON);
- ``{"delay": 0.1, ...}`` wait that long before answering as the rest of the dict says.

``model`` is the model name the completions report (a "wrong model name" fault when it differs
from what the client pinned). ``idle_timeout`` (seconds) closes a kept-alive connection that
stays idle that long, as servers do (uvicorn: 5 s). ``connections`` counts the TCP connections
accepted; each logged request has the number of the connection (``conn``) it came on.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD_ANSWER = {
    "summary": "Approves a spender to move tokens on the sender's behalf.",
    "key_points": ["spender can move tokens"],
    "risk_notes": ["review the spender before signing"],
}


class FaultServer:
    def __init__(self, script: list[dict[str, Any]] | None = None, model: str = "fault-model",
                 idle_timeout: float | None = None) -> None:
        self.script = list(script or [{"answer": GOOD_ANSWER}])
        self.model = model
        self.idle_timeout = idle_timeout
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FaultServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def all_bytes(self) -> bytes:
        """Every byte of every request received (headers and bodies), for privacy checks."""
        with self._lock:
            return b"\n".join(r["raw_headers"] + r["body"] for r in self.requests)

    def _next(self) -> dict[str, Any]:
        with self._lock:
            index = min(len(self.requests) - 1, len(self.script) - 1)
            return self.script[index]

    def _completion(self, content: str, finish_reason: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fault-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer.connections += 1
                    self.conn = outer.connections
                if outer.idle_timeout is not None:
                    self.connection.settimeout(outer.idle_timeout)  # http.server closes on the timeout

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                with outer._lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                           "raw_headers": bytes(str(self.headers), "latin-1"), "t": time.monotonic(),
                                           "conn": self.conn})
                behaviour = outer._next()
                if behaviour.get("delay"):
                    time.sleep(behaviour["delay"])
                if behaviour.get("hang"):
                    time.sleep(behaviour["hang"])
                    self.close_connection = True
                    return
                if behaviour.get("drop"):
                    self.close_connection = True
                    return
                if behaviour.get("reset"):
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if "raw" in behaviour:
                    self._send(200, behaviour["raw"].encode(), behaviour)
                    return
                status = behaviour.get("status", 200)
                if status != 200:
                    payload = behaviour.get("body", {"error": {"message": "injected fault", "type": "server_error"}})
                else:
                    content = behaviour.get("content")
                    if content is None:
                        content = json.dumps(behaviour.get("answer", GOOD_ANSWER))
                    payload = outer._completion(content, behaviour.get("finish_reason", "stop"))
                data = json.dumps(payload).encode()
                if behaviour.get("slow"):
                    self._trickle(data, behaviour["slow"])
                    return
                self._send(status, data, behaviour)

            def _send(self, status: int, data: bytes, behaviour: dict[str, Any]) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if "retry_after" in behaviour:
                    self.send_header("retry-after", str(behaviour["retry_after"]))
                self.end_headers()
                self.wfile.write(data)

            def _trickle(self, data: bytes, seconds: float) -> None:
                """Chunked transfer, 20 pieces spread over ``seconds`` (each gap far below a read timeout)."""
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                step = max(1, len(data) // 20)
                try:
                    for i in range(0, len(data), step):
                        piece = data[i:i + step]
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.flush()
                        time.sleep(seconds / 20)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client gave up: that is the point of the fault
                    self.close_connection = True

        return Handler
