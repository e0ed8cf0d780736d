"""Server-Sent Events for ``POST /v1/explain?stream=true`` (and ``/v1/risk?stream=true``).

The stream (``text/event-stream``, one JSON object per ``data:`` line) is, in order:

1. ``event: analysis`` — ``{verdict, risk_level, findings, decoded, unknown_facts, data_class}``
   from the rules, before any model runs;
2. ``event: token`` — ``{text}`` for each piece of text a local model writes
   (raw, unvalidated output: the final answer decides);
3. ``event: final`` — ``{answer, degraded, streamed_tokens, replaced_streamed_text}`` once the
   audit record is committed: ``answer`` is the complete answer with its receipt;
   ``replaced_streamed_text`` is true when the streamed text was not accepted (it failed the
   answer schema or the output guards) and the answer comes from another candidate or is the
   degraded one. Once text has been streamed, the model is never called again for the request;
   or ``event: error`` — ``{code, message}`` when the request fails after the stream began
   (e.g. ``ledger_error``: no record, so no answer).

Input errors (bad hex, secrets, …) are found before the stream begins and answered as the
usual typed 4xx JSON error, not as a stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Callable

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ..errors import AuditinfError
from ..inference.base import StreamSink
from ..obs.context import current_request

__all__ = ["stream_answer", "sse_event"]

log = logging.getLogger("auditinf.api.stream")


def sse_event(event: str, data: Any) -> bytes:
    """One Server-Sent Event (WHATWG HTML §9.2): ``event:`` line, one ``data:`` line, blank line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


class _QueueSink:
    """Analysis and model text from worker threads, queued for the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: asyncio.Queue) -> None:
        self._loop, self._events = loop, events
        self.tokens = 0

    def _put(self, item: Any) -> None:
        self._loop.call_soon_threadsafe(self._events.put_nowait, item)

    def analysis(self, facts: dict[str, Any], data_class: str) -> None:
        payload = {k: facts[k] for k in ("verdict", "risk_level", "findings", "unknown_facts") if k in facts}
        self._put(("analysis", {**payload, "decoded": facts.get("call"), "data_class": data_class}))

    def token(self, text: str) -> None:
        self.tokens += 1
        self._put(("token", {"text": text}))


async def stream_answer(call: Callable[[], dict], observe: Callable[[dict], None]) -> StreamingResponse:
    """Run ``call`` (the service request, in a worker thread) and stream its events.

    Raises the request's :class:`AuditinfError` when it fails before its analysis (a plain 4xx);
    ``observe(answer)`` is called with the answer before the final event is sent.
    """
    ctx = current_request()
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    sink = _QueueSink(loop, events)
    model_stream = StreamSink(on_text=sink.token)  # the router stops model attempts once it has started
    if ctx is not None:
        ctx.sink, ctx.stream = sink, model_stream
    work = asyncio.ensure_future(run_in_threadpool(call))
    first = asyncio.ensure_future(events.get())
    await asyncio.wait({work, first}, return_when=asyncio.FIRST_COMPLETED)
    if not first.done():
        first.cancel()
        work.result()  # raises the typed input error: answered as JSON, not as a stream
        raise RuntimeError("request finished without an analysis")  # explain/risk always analyse first

    async def body() -> AsyncIterator[bytes]:
        yield sse_event(*first.result())
        while True:
            getter = asyncio.ensure_future(events.get())
            await asyncio.wait({work, getter}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            yield sse_event(*getter.result())
        while not events.empty():
            yield sse_event(*events.get_nowait())
        try:
            answer = work.result()
        except AuditinfError as exc:
            yield sse_event("error", exc.to_dict()["error"])
            return
        except Exception as exc:  # a bug: say so without the message (it could quote input)
            log.error("streamed request crashed", exc_info=exc)
            yield sse_event("error", {"code": "internal_error", "message": "internal error"})
            return
        observe(answer)
        replaced = model_stream.started and answer.get("model", {}).get("backend") != "local"
        yield sse_event("final", {"answer": answer, "degraded": answer.get("degraded"),
                                  "streamed_tokens": sink.tokens, "replaced_streamed_text": replaced})

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
