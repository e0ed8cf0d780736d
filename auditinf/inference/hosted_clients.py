"""Keep-alive clients for one hosted backend, reused from one attempt to the next.

A new ``openai`` client per attempt meant a new TCP (and TLS) connection per attempt, about a
millisecond or more of every hosted call (bench/gateway.py). A :class:`ClientPool` keeps idle
clients instead. Each client has its own httpx client holding at most one connection and serves
one call at a time, so abandoning a timed-out call still closes only that call's connection:

- :meth:`ClientPool.take` — the most recently returned idle client (LIFO: the connection the
  server is least likely to have closed), or a new one; it says whether the client was reused;
- :meth:`ClientPool.give` — back to the pool, only after a clean call (a whole response read);
- :meth:`ClientPool.discard` — closed after a timeout, an abandoned call or any error: a
  connection in an unknown state is never reused;
- :meth:`ClientPool.clear` — close every idle client (after one turned out stale, the others,
  idle as long or longer, are suspect too).

Idle connections: httpx closes a connection idle longer than :data:`KEEPALIVE_S` (below the
common 5 s server keep-alive timeout, uvicorn's and Node's) and, before reusing one, checks that
the server has not closed it (a readable idle socket); either way it connects anew. What remains is
the race in which the server closes the connection just as the request goes out; the hosted
backend reports that as ``stale_connection`` (see :func:`broke_before_response`).
"""

from __future__ import annotations

import ssl
import threading
from functools import lru_cache
from typing import Callable

import certifi
import httpx
import openai

__all__ = ["ClientPool", "KEEPALIVE_S", "broke_before_response", "new_client"]

KEEPALIVE_S = 4.0
MAX_IDLE = 64

# The httpx exceptions (httpx or httpx2, whichever the openai SDK uses) of a connection that broke
# before a response was read: the server closed it ("Server disconnected without sending a
# response") or reset it while the request was written or awaited.
_BROKEN = frozenset({"RemoteProtocolError", "ReadError", "WriteError"})


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context (CA bundle: certifi, as httpx's default) per process: building it for every
    client cost 20-140 ms of CA loading (bench/gateway.py)."""
    return ssl.create_default_context(cafile=certifi.where())


def new_client(base_url: str, api_key: str | None) -> openai.OpenAI:
    """An ``openai`` client with the SDK's retries off and one keep-alive connection at most."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_S)
    return openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", max_retries=0,
                         http_client=openai.DefaultHttpxClient(verify=_tls_context(), limits=limits))


def broke_before_response(exc: openai.OpenAIError) -> bool:
    """Did the connection break (closed or reset by the server) rather than time out or refuse?"""
    if not isinstance(exc, openai.APIConnectionError) or isinstance(exc, openai.APITimeoutError):
        return False
    return type(exc.__cause__).__name__ in _BROKEN


class ClientPool:
    """Idle clients made by ``factory``; see the module docstring. Thread-safe."""

    def __init__(self, factory: Callable[[], openai.OpenAI], max_idle: int = MAX_IDLE) -> None:
        self._factory = factory
        self._max_idle = max_idle
        self._idle: list[openai.OpenAI] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def idle(self) -> int:
        """Idle clients now in the pool."""
        with self._lock:
            return len(self._idle)

    def take(self) -> tuple[openai.OpenAI, bool]:
        """``(client, reused)``: an idle client (``reused=True``) or a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._factory(), False

    def give(self, client: openai.OpenAI) -> None:
        """Return ``client`` after a clean call (closed instead when the pool is full or closed)."""
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(client)
                return
        client.close()

    @staticmethod
    def discard(client: openai.OpenAI) -> None:
        """Close ``client`` (and its connection); safe while another thread still uses it."""
        try:
            client.close()
        except Exception:  # noqa: BLE001 - the client is dropped either way
            pass

    def clear(self) -> None:
        """Close every idle client."""
        with self._lock:
            idle, self._idle = self._idle, []
        for client in idle:
            self.discard(client)

    def close(self) -> None:
        """Close every idle client; clients given back later are closed too."""
        with self._lock:
            self._closed = True
        self.clear()
