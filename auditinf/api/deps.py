"""Dependencies shared by the API's routers: the bounded JSON body (the client is
:data:`auditinf.api.auth.Client`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ..errors import RequestTooLarge
from ..jsonin import load_json

__all__ = ["Body", "json_body"]


async def json_body(request: Request) -> Any:
    """The request body parsed by :func:`auditinf.jsonin.load_json`, read at most
    ``settings.max_body_bytes`` bytes (413 ``request_too_large`` beyond, before buffering more)."""
    limit = request.app.state.settings.max_body_bytes
    too_large = RequestTooLarge(f"request body over {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large  # refused before reading a byte
    chunks, size = [], 0
    async for chunk in request.stream():  # chunked uploads: stop at the limit, never buffer more
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return load_json(b"".join(chunks))


Body = Annotated[Any, Depends(json_body)]
