"""A mock OpenAI-compatible chat-completions upstream with a fixed latency, for bench/gateway.py.

``POST /v1/chat/completions`` sleeps ``--latency-ms`` (asyncio: concurrent requests overlap) and
answers a fixed completion whose content is a valid auditinf answer. ``GET /v1/models`` lists the
model. ``GET /last_request`` returns the last request body received (so the direct and LiteLLM
runs can send byte-for-byte what auditinf sent).

Usage: ``python bench/mock_upstream.py --port 8001 [--latency-ms 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ANSWER = {
    "summary": "Approves an unlimited USDC allowance for the spender, who can then move the tokens.",
    "key_points": ["approve gives the spender an unlimited allowance"],
    "risk_notes": ["an unlimited approval can drain the token balance"],
}


def make_app(latency_s: float, model: str) -> Starlette:
    state: dict = {"last": b"{}"}

    async def completions(request: Request) -> JSONResponse:
        state["last"] = await request.body()
        await asyncio.sleep(latency_s)
        return JSONResponse({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": json.dumps(ANSWER)}}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340},
        })

    async def models(_request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "owned_by": "bench"}]})

    async def last(_request: Request) -> Response:
        return Response(state["last"], media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/chat/completions", completions, methods=["POST"]),
                             Route("/v1/models", models), Route("/last_request", last)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--model", default="mock-model")
    args = parser.parse_args()
    uvicorn.run(make_app(args.latency_ms / 1000, args.model), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
