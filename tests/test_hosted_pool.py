"""Kept-alive hosted connections and the reusable call workers, against our fault server.

The fault server numbers the TCP connections it accepts and logs, per request, the connection it
came on: reuse is proven on the server's side of the wire, not from the client's bookkeeping.
"""

from __future__ import annotations

import threading
import time

import pytest

from auditinf.inference.workers import WorkerPool, call_within
from auditinf.policy import load_policy

from .conftest import write_policy
from .fakes.fault_server import GOOD_ANSWER, FaultServer
from .test_inference import body, hosted_service

ONE_ATTEMPT = {"max_attempts": 1, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "retry_on": [], "deadline_s": 30}
TRIP_AT_ONE = {"circuit_breaker": {"open_after_consecutive_failures": 1, "open_s": 30, "half_open_probes": 1}}


def hosted_attempts(answer: dict) -> list[tuple[str, str | None]]:
    return [(a["outcome"], a["error_type"]) for a in answer["attempts"] if a["backend"] == "hosted"]


def test_one_connection_serves_consecutive_requests(make_service):
    with FaultServer() as upstream:
        service = hosted_service(make_service, upstream)
        answers = [service.risk(body()) for _ in range(4)]
    assert all(a["model"]["backend"] == "hosted" for a in answers)
    assert upstream.connections == 1
    assert [r["conn"] for r in upstream.requests] == [1, 1, 1, 1]


@pytest.mark.parametrize("fault", [
    {"slow": 2.0},  # trickles past the 0.5 s attempt timeout: abandoned mid-body
    {"status": 500},
    {"raw": '{"id": "x", "choices": ['},
])
def test_connection_is_not_reused_after_a_failed_call(fault, make_service):
    with FaultServer([{"answer": GOOD_ANSWER}, fault, {"answer": GOOD_ANSWER}]) as upstream:
        service = hosted_service(make_service, upstream, hosted={"timeout_s": 0.5}, retries=ONE_ATTEMPT)
        first, failed, healed = (service.risk(body()) for _ in range(3))
    assert hosted_attempts(first) == hosted_attempts(healed) == [("success", None)]
    assert hosted_attempts(failed)[0][0] == "error" and failed["degraded"] is True
    conns = [r["conn"] for r in upstream.requests]
    assert conns[0] == conns[1] and conns[2] != conns[1]  # reused after success, never after the failure
    assert upstream.connections == 2


def test_server_closing_an_idle_connection_costs_no_attempt(make_service):
    with FaultServer(idle_timeout=0.5) as upstream:
        service = hosted_service(make_service, upstream, retries=ONE_ATTEMPT, extra=TRIP_AT_ONE)
        first = service.risk(body())
        time.sleep(1.5)  # the server closes the kept-alive connection meanwhile
        second = service.risk(body())
    assert hosted_attempts(first) == hosted_attempts(second) == [("success", None)]
    assert upstream.connections == 2 and len(upstream.requests) == 2


def test_stale_kept_alive_connection_is_retried_once_on_a_new_one_without_a_verdict(make_service):
    # The server closes the reused connection as the request arrives, without answering: the race
    # in which a keep-alive timeout fires just as the client sends.
    with FaultServer([{"answer": GOOD_ANSWER}, {"drop": True}, {"answer": GOOD_ANSWER}]) as upstream:
        service = hosted_service(make_service, upstream, retries=ONE_ATTEMPT, extra=TRIP_AT_ONE)
        service.risk(body())
        answer = service.risk(body())
        breaker = service.breakers.get("hosted-a", service.policy.breaker)
    assert hosted_attempts(answer) == [("error", "stale_connection"), ("success", None)]
    assert answer["degraded"] is False and answer["model"]["backend"] == "hosted"
    assert [r["conn"] for r in upstream.requests] == [1, 1, 2]
    assert breaker.state == "closed" and breaker.consecutive_failures == 0  # one failure would trip it


def test_dropped_new_connection_is_a_connection_failure(make_service):
    with FaultServer([{"drop": True}]) as upstream:
        service = hosted_service(make_service, upstream, retries=ONE_ATTEMPT, extra=TRIP_AT_ONE)
        answer = service.risk(body())
        state = service.breakers.states()["hosted-a"]
    assert hosted_attempts(answer) == [("error", "connection")]
    assert answer["degraded"] is True and state == "open"
    assert len(upstream.requests) == 1


def test_after_a_stale_connection_the_other_idle_ones_are_closed(make_service):
    # Two overlapping requests leave two idle connections; both are then dropped by the server.
    # The free retry after the first stale one must not take the other (stale too) from the pool.
    script = [{"delay": 1.0, "answer": GOOD_ANSWER}, {"delay": 1.0, "answer": GOOD_ANSWER}, {"drop": True}]
    with FaultServer(script) as upstream:
        service = hosted_service(make_service, upstream, retries=ONE_ATTEMPT)
        threads = [threading.Thread(target=service.risk, args=(body(),)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert upstream.connections == 2
        answer = service.risk(body())
    assert hosted_attempts(answer) == [("error", "stale_connection"), ("error", "connection")]
    assert [r["conn"] for r in upstream.requests[2:]] in ([1, 3], [2, 3])


def test_policy_reload_closes_the_replaced_backends_connections(make_service, tmp_path):
    with FaultServer() as upstream:
        service = hosted_service(make_service, upstream)
        service.risk(body())
        old = service.backend("hosted-a")
        assert old._clients.idle == 1
        changed = write_policy(tmp_path / "changed.json", public=["hosted-a", "deterministic"],
                               private=["deterministic"], hosted={"max_tokens": 64})
        service.policy = load_policy(changed)
        new = service.backend("hosted-a")
        answer = service.risk(body())
    assert new is not old and old._clients.idle == 0 and new._clients.idle == 1
    assert answer["model"]["backend"] == "hosted" and upstream.connections == 2


def test_worker_pool_reuses_idle_workers_and_lets_them_go():
    pool = WorkerPool("test-worker", idle_s=0.2)
    names = set()
    for _ in range(5):
        finished, value, error = call_within(pool, 2, lambda: threading.current_thread())
        assert finished and error is None
        names.add(value.ident)
    assert len(names) == 1 and pool.workers == 1
    deadline = time.monotonic() + 5
    while pool.workers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.workers == 0


def test_worker_pool_never_queues_behind_a_busy_worker():
    pool = WorkerPool("test-worker", idle_s=5)
    release = threading.Event()
    finished, _, _ = call_within(pool, 0.1, release.wait)  # abandoned: its worker stays busy
    assert not finished
    started = time.monotonic()
    finished, value, error = call_within(pool, 2, lambda: 42)
    assert (finished, value, error) == (True, 42, None) and time.monotonic() - started < 0.5
    assert pool.workers == 2
    release.set()
    boom = ValueError("boom")
    finished, value, error = call_within(pool, 2, lambda: (_ for _ in ()).throw(boom))
    assert finished and error is boom
