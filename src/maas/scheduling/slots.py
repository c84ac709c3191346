"""Free-instance bookkeeping shared by the thread and process pools."""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["InstanceSlots"]


class InstanceSlots:
    """Hands out instance indices, one caller each; waiters are served first come first."""

    def __init__(self, count: int) -> None:
        self._free: deque[int] = deque(range(count))
        self._waiters: deque[asyncio.Future[int]] = deque()

    async def acquire(self) -> int:
        if self._free:
            return self._free.popleft()
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed over just as we were cancelled
            raise

    def release(self, index: int) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(index)
                return
        self._free.append(index)
