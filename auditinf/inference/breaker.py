"""Circuit breakers, one per backend (policy model name).

States (the ``state`` property, for metrics): ``closed`` — calls pass; ``open`` — after
``open_after_consecutive_failures`` failed attempts in a row, calls are skipped for ``open_s``
seconds; ``half_open`` — after the cool-down, up to ``half_open_probes`` calls pass as probes: a
success closes the breaker, a failure opens it again for another ``open_s``.

Thread-safe; the clock is injectable (``time.monotonic`` by default) so tests need not sleep.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ..policy import BreakerPolicy

__all__ = ["CircuitBreaker", "Breakers", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """One backend's breaker. Call :meth:`allow` before an attempt, then :meth:`success`,
    :meth:`failure` or (no verdict) :meth:`release` with its outcome."""

    def __init__(self, settings: BreakerPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probes = 0

    def _state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self._clock() - self._opened_at >= self.settings.open_s else OPEN

    @property
    def state(self) -> str:
        """``closed`` | ``open`` | ``half_open``."""
        with self._lock:
            return self._state()

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May an attempt start now? In ``half_open`` each ``True`` uses up one probe."""
        with self._lock:
            state = self._state()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and self._probes < self.settings.half_open_probes:
                self._probes += 1
                return True
            return False

    def release(self) -> None:
        """An allowed attempt ended without telling anything about the backend (not configured,
        a request-format adaptation): give its half-open probe back."""
        with self._lock:
            self._probes = max(0, self._probes - 1)

    def success(self) -> None:
        """The attempt succeeded: close the breaker."""
        with self._lock:
            self._failures, self._opened_at, self._probes = 0, None, 0

    def failure(self) -> None:
        """The attempt failed: count it; open (again) at the threshold or after a failed probe."""
        with self._lock:
            self._failures += 1
            if self._opened_at is not None or self._failures >= self.settings.open_after_consecutive_failures:
                self._opened_at, self._probes = self._clock(), 0


class Breakers:
    """The process's breakers by backend name, created on first use with the current settings."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._by_name: dict[str, CircuitBreaker] = {}

    def get(self, name: str, settings: BreakerPolicy) -> CircuitBreaker:
        """The breaker for backend ``name``; settings follow a policy reload (the state is kept)."""
        with self._lock:
            breaker = self._by_name.get(name)
            if breaker is None:
                breaker = self._by_name[name] = CircuitBreaker(settings, self._clock)
            breaker.settings = settings
            return breaker

    def states(self) -> dict[str, str]:
        """``{backend name: state}`` for every breaker seen so far (for ``/metrics``)."""
        with self._lock:
            items = list(self._by_name.items())
        return {name: b.state for name, b in items}
