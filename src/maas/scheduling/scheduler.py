"""The one object the data plane calls per deployed version: bounded queue, batcher, pool.

Defaults, and why (measured on a 2-core CPU machine with benchmarks/serving.py):

* ``max_batch_size=32``: past ~32 rows a small MLP gains little per row on 2 cores,
  while the batch's latency keeps growing.
* ``max_queue_delay_s=0`` (work-conserving): a batch leaves as soon as an instance is
  free. Under load batches still form by themselves, from the requests that arrive while
  every instance is busy; when the server is quiet nobody waits for companions that are
  not coming (a 0.5 ms delay doubled the tiny MLP's p50 at concurrency 1).
* ``max_queue_size=1024``: beyond it a client is better told to retry (503 +
  Retry-After) than left to time out.
* ``count=1`` instance with ``intra_op_threads`` = all cores: the ResNet-18-sized CNN ran
  at 40/s at concurrency 1 (26/s with two single-thread instances) and kept its
  throughput under load with half the p99; batches that take under ``inline_max_s``
  (200 µs) run on the event loop itself, where the hand-off to a thread would cost more
  than the inference (the tiny MLP: p50 0.21 ms instead of 0.68 ms), on one intra-op
  thread when even a full batch does (``build_pool``).

To tune: raise ``max_queue_delay_s`` when throughput at moderate load matters more than
latency; raise ``max_batch_size`` for models whose cost per row keeps falling with batch
size (convolutions, transformers); set ``preferred_batch_sizes`` to the sizes the runtime
was optimised for. Measure with ``benchmarks/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from maas.errors import RateLimitedError
from maas.scheduling.batcher import BatchHook, DynamicBatcher, OutputCheck
from maas.scheduling.clock import Clock
from maas.scheduling.policy import BatchingPolicy
from maas.scheduling.pool import InstancePool
from maas.scheduling.ratelimit import TokenBucket

__all__ = ["VersionScheduler"]


class VersionScheduler:
    """Queue, batch and run the requests of one deployed version on its instance pool.

    A model that is not batchable (or ``max_batch_size <= 1``) still goes through the
    bounded queue: backpressure and timeouts apply to it as to any other.

    Example::

        scheduler = VersionScheduler(pool, BatchingPolicy(), batchable=runtime.batchable)
        outputs = await scheduler.submit({"input": x}, timeout_s=2.0)
        await scheduler.close()  # also closes the pool
    """

    def __init__(
        self,
        pool: InstancePool,
        batching: BatchingPolicy,
        batchable: bool,
        *,
        clock: Clock | None = None,
        on_batch: BatchHook | None = None,
        check: OutputCheck | None = None,
    ) -> None:
        if not batchable and batching.max_batch_size > 1:
            batching = replace(batching, max_batch_size=1, preferred_batch_sizes=())
        self.batching = batching
        self._pool = pool
        rate = batching.max_requests_per_s
        self._rate = None if rate is None else TokenBucket(rate, rate)
        self._batcher = DynamicBatcher(
            pool.run,
            batching,
            max_in_flight=pool.capacity,
            clock=clock,
            on_batch=on_batch,
            check=check,
        )

    @property
    def queue_length(self) -> int:
        """Requests waiting for an instance (for metrics and admission)."""
        return self._batcher.queue_length

    @property
    def in_flight(self) -> int:
        """Requests accepted and not yet answered: queued, or in a batch that runs."""
        return self._batcher.queue_length + self._batcher.running_requests

    @property
    def batch_filling(self) -> bool:
        """A batch is forming: requests wait, short of a whole number of full batches.

        A request sent here now joins that batch instead of starting one of its own
        elsewhere; a traffic split uses this to switch versions between batches only.
        """
        size = self.batching.max_batch_size
        return size > 1 and self._batcher.queue_length % size != 0

    async def submit(
        self, feed: Mapping[str, np.ndarray], timeout_s: float | None = None
    ) -> dict[str, np.ndarray]:
        """This request's outputs; see ``DynamicBatcher.submit`` for the errors, and
        ``RateLimitedError`` beyond ``max_requests_per_s``."""
        if self._rate is not None and (wait_s := self._rate.take()):
            raise RateLimitedError(
                f"this version takes at most {self.batching.max_requests_per_s:g} requests a "
                "second (batching.max_requests_per_s)",
                {"retry_after_s": round(wait_s, 3)},
            )
        return await self._batcher.submit(feed, timeout_s=timeout_s)

    async def drain(self) -> None:
        """Return once nothing is queued or running."""
        await self._batcher.drain()

    async def close(self) -> None:
        """Fail what waits with ``UnavailableError``, then close the pool."""
        await self._batcher.close()
        await self._pool.close()
