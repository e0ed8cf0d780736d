"""Circuit breaker states with an injected clock (no sleeping)."""

from __future__ import annotations

from auditinf.inference.breaker import CLOSED, HALF_OPEN, OPEN, Breakers, CircuitBreaker
from auditinf.policy import BreakerPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_n_consecutive_failures_and_skips():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(open_after_consecutive_failures=3, open_s=10), clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == CLOSED
    breaker.success()  # a success in between resets the count: failures must be consecutive
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 9.9
    assert breaker.state == OPEN and not breaker.allow()


def test_half_open_probe_closes_on_success():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(open_after_consecutive_failures=1, open_s=5, half_open_probes=1), clock)
    breaker.failure()
    clock.now += 5
    assert breaker.state == HALF_OPEN
    assert breaker.allow()       # the one probe
    assert not breaker.allow()   # a second caller while the probe runs is skipped
    breaker.success()
    assert breaker.state == CLOSED and breaker.allow()


def test_failed_probe_reopens_for_another_cool_down():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(open_after_consecutive_failures=2, open_s=5, half_open_probes=2), clock)
    breaker.failure()
    breaker.failure()
    clock.now += 6
    assert breaker.allow() and breaker.allow() and not breaker.allow()
    breaker.failure()
    assert breaker.state == OPEN
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.state == HALF_OPEN


def test_registry_keeps_state_and_follows_new_settings():
    clock = Clock()
    breakers = Breakers(clock)
    a = breakers.get("hosted-a", BreakerPolicy(open_after_consecutive_failures=1, open_s=60))
    a.failure()
    assert breakers.states() == {"hosted-a": OPEN}
    again = breakers.get("hosted-a", BreakerPolicy(open_after_consecutive_failures=1, open_s=1))
    assert again is a and a.settings.open_s == 1
    clock.now += 1
    assert breakers.states() == {"hosted-a": HALF_OPEN}


def test_a_probe_without_verdict_is_given_back():
    clock = Clock()
    breaker = CircuitBreaker(BreakerPolicy(open_after_consecutive_failures=1, open_s=5, half_open_probes=1), clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow() and not breaker.allow()
    breaker.release()  # e.g. the backend turned out not to be configured
    assert breaker.state == HALF_OPEN and breaker.allow()
