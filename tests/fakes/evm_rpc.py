"""An in-process EVM chain (eth-tester on py-evm) served over HTTP JSON-RPC on loopback, for tests.

The CLI talks to a chain only through an RPC URL; this serves web3's ``EthereumTesterProvider``
at ``http://127.0.0.1:<ephemeral port>`` so ``auditinf anchor`` / ``verify --anchors`` run end to
end. Requests are served one at a time (eth-tester is not thread-safe). ``w3`` is the in-process
handle to the same chain.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from web3 import EthereumTesterProvider, Web3


def _json(value):
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if hasattr(value, "items"):
        return dict(value)
    raise TypeError(type(value).__name__)


class EvmRpcServer:
    def __init__(self) -> None:
        self.provider = EthereumTesterProvider()
        self.w3 = Web3(self.provider)
        lock = threading.Lock()
        # the provider's own request/result formatters only (JSON-RPC hex in and out), no client middleware
        request = self.provider.request_func(Web3(self.provider, middleware=[]), Web3(middleware=[]).middleware_onion)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    response = dict(request(call["method"], call.get("params", [])))
                response.update(id=call.get("id"), jsonrpc="2.0")
                body = json.dumps(response, default=_json).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "EvmRpcServer":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()
