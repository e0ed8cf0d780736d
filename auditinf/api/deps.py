"""Dependencies shared by the API's routers: the bounded JSON body and the request kind an
endpoint counts under (the client is :data:`auditinf.api.auth.Client`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam

from ..errors import RequestTooLarge
from ..jsonin import load_json
from ..obs.context import current_request

__all__ = ["Body", "json_body", "request_kind"]


def request_kind(kind: str) -> DependsParam:
    """A route dependency (``dependencies=[request_kind("risk")]``) naming the request kind the
    endpoint's requests count under in ``auditinf_requests_total`` (:mod:`.observe`). Route
    dependencies run before the endpoint's own, so a request refused by authentication (401/403)
    or by its body (413/422) is counted under its kind too."""
    def set_kind() -> None:
        ctx = current_request()
        if ctx is not None:
            ctx.kind = kind
    return Depends(set_kind)


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
