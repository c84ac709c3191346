"""Where the scheduler reads the time: a seam, so batching tests need no sleeps."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock"]


class Clock(Protocol):
    """Seconds on a clock that never goes back; only differences are meaningful."""

    def now(self) -> float: ...


class MonotonicClock:
    """The production clock: ``time.monotonic`` (wall-clock jumps must not expire requests)."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()
