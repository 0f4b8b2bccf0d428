"""The generation gate: N running, M waiting in arrival order, the rest refused at once with a Retry-After."""

from __future__ import annotations

import threading
import time

import pytest

from studio.serve.admission import Admission, Busy, ServeLimits


def test_limits_are_validated_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="max_running"):
        ServeLimits(max_running=0)
    with pytest.raises(ValueError, match="max_waiting"):
        ServeLimits(max_waiting=-1)


def test_beyond_running_and_waiting_a_request_is_refused_then_waiters_run_in_order() -> None:
    gate = Admission(ServeLimits(max_running=1, max_waiting=2))
    release = threading.Event()
    order: list[str] = []

    def job(name: str) -> None:
        with gate.slot():
            order.append(name)
            release.wait(10)

    first = threading.Thread(target=job, args=("first",))
    first.start()
    while gate.running < 1:
        time.sleep(0.01)
    waiters = []
    for name in ("second", "third"):
        waiters.append(threading.Thread(target=job, args=(name,)))
        waiters[-1].start()
        while gate.waiting < len(waiters):  # one at a time, so the arrival order is known
            time.sleep(0.01)
    with pytest.raises(Busy) as refused:
        with gate.slot():
            pass
    assert refused.value.retry_after >= 1
    assert gate.snapshot() == {"running": 1, "waiting": 2, "max_running": 1, "max_waiting": 2}
    release.set()
    for thread in (first, *waiters):
        thread.join(10)
    assert order == ["first", "second", "third"]
    assert gate.snapshot()["running"] == 0 and gate.waiting == 0
    with gate.slot():  # free again
        assert gate.running == 1


def test_a_waiter_gives_up_after_max_wait_and_the_next_one_moves_up() -> None:
    gate = Admission(ServeLimits(max_running=1, max_waiting=1, max_wait_seconds=0.2))
    with gate.slot():
        with pytest.raises(Busy, match="waited"):
            with gate.slot():
                pass
        assert gate.waiting == 0  # its place was given back
    with gate.slot():  # the running one left too: a new request runs at once
        assert gate.running == 1
