"""A bounded gate for generation requests: at most `max_running` at once, `max_waiting` behind them, the rest refused.

A server that queues without bound turns a burst of requests into minutes of latency for everyone and memory that
grows with every caller. Refusing at once with a `Busy` (HTTP 503 + Retry-After) tells a client to come back later
while the server keeps answering. Waiters are served first come, first served: a new arrival never overtakes them.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServeLimits:
    """How much generation work the server accepts at once."""

    max_running: int = field(
        default=1,
        metadata={
            "help": "Generations running at once. The engine holds one pipeline and generates one request at a "
            "time, so 1 is right on a CPU; more only lets requests pass the gate sooner."
        },
    )
    max_waiting: int = field(
        default=2, metadata={"help": "Requests that may wait for a running slot; beyond that a request is refused."}
    )
    max_wait_seconds: float = field(
        default=300.0, metadata={"help": "A waiting request still not running after this long is refused as busy."}
    )

    def __post_init__(self) -> None:
        if self.max_running < 1:
            raise ValueError(f"max_running must be at least 1, got {self.max_running}")
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting must be 0 or more, got {self.max_waiting}")
        if self.max_wait_seconds <= 0:
            raise ValueError(f"max_wait_seconds must be positive, got {self.max_wait_seconds}")


class Busy(RuntimeError):
    """The server is at its limit; `retry_after` is a guess in whole seconds of when a slot frees up."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    """Counts running and waiting requests; `slot()` runs a request, waits for a slot, or raises `Busy`."""

    def __init__(self, limits: ServeLimits | None = None) -> None:
        self.limits = limits or ServeLimits()
        self._changed = threading.Condition()
        self.running = 0
        self._queue: deque[object] = deque()  # waiters in arrival order; the first one runs next
        self._seconds_per_job = 5.0  # moving average of how long a job holds its slot; a first guess until measured

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def snapshot(self) -> dict:
        with self._changed:
            return {
                "running": self.running,
                "waiting": self.waiting,
                "max_running": self.limits.max_running,
                "max_waiting": self.limits.max_waiting,
            }

    def _retry_after(self) -> int:
        # the jobs running now and every waiter, spread over the running slots
        queued = self.running + self.waiting
        return max(1, math.ceil(self._seconds_per_job * queued / self.limits.max_running))

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._changed:
            if self.running >= self.limits.max_running or self._queue:
                if self.waiting >= self.limits.max_waiting:
                    raise Busy(
                        f"the server is generating {self.running} request(s) with {self.waiting} waiting, "
                        "the most it accepts; try again later",
                        self._retry_after(),
                    )
                self._wait_for_turn()
            self.running += 1
        started = time.monotonic()
        try:
            yield
        finally:
            with self._changed:
                self.running -= 1
                self._seconds_per_job = 0.7 * self._seconds_per_job + 0.3 * (time.monotonic() - started)
                self._changed.notify_all()

    def _wait_for_turn(self) -> None:
        """Called with the lock held: queue up, and return once first in line with a slot free."""
        me = object()
        self._queue.append(me)
        try:
            turn = self._changed.wait_for(
                lambda: self._queue[0] is me and self.running < self.limits.max_running,
                timeout=self.limits.max_wait_seconds,
            )
        finally:
            self._queue.remove(me)
            self._changed.notify_all()  # the next in line may go now (or move up, if we gave up)
        if not turn:
            raise Busy(f"waited {self.limits.max_wait_seconds:.0f} s without a free slot", self._retry_after())
