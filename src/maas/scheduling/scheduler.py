"""The one object the data plane calls per deployed version: bounded queue, batcher, pool.

Defaults, and why (a 2-core CPU machine, tiny to mid-size models):

* ``BatchingPolicy.max_batch_size=32``: past ~32 rows a small MLP gains little per row
  on 2 cores, while the batch's latency keeps growing.
* ``max_queue_delay_s=0.0005``: half a millisecond is small beside a network round
  trip, yet under load most batching comes for free anyway: batches form while every
  instance is busy, without any delay.
* ``max_queue_size=1024``: about a second of work at batch 1 for a small model; beyond
  it a client is better told to retry (503 + Retry-After) than left to time out.
* ``InstancePolicy.count=1`` with ``intra_op_threads`` = cores / count: one instance
  using both cores wins for batched small models; raise ``count`` (2 on this machine)
  when batches are small and latency-bound, so one batch computes while the next forms.

To tune: raise ``max_batch_size`` for models whose cost per row falls with batch size
(convolutions, transformers), raise ``max_queue_delay_s`` when throughput matters more
than p50 latency at low load, and set ``preferred_batch_sizes`` to sizes the runtime was
optimised for (e.g. TensorRT profiles). Measure with ``benchmarks/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from maas.scheduling.batcher import BatchHook, DynamicBatcher
from maas.scheduling.clock import Clock
from maas.scheduling.policy import BatchingPolicy
from maas.scheduling.pool import InstancePool

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
    ) -> None:
        if not batchable and batching.max_batch_size > 1:
            batching = replace(batching, max_batch_size=1, preferred_batch_sizes=())
        self.batching = batching
        self._pool = pool
        self._batcher = DynamicBatcher(
            pool.run, batching, max_in_flight=pool.capacity, clock=clock, on_batch=on_batch
        )

    @property
    def queue_length(self) -> int:
        """Requests waiting for an instance (for metrics and admission)."""
        return self._batcher.queue_length

    async def submit(
        self, feed: Mapping[str, np.ndarray], timeout_s: float | None = None
    ) -> dict[str, np.ndarray]:
        """This request's outputs; see ``DynamicBatcher.submit`` for the errors."""
        return await self._batcher.submit(feed, timeout_s=timeout_s)

    async def close(self) -> None:
        """Fail what waits with ``UnavailableError``, then close the pool."""
        await self._batcher.close()
        await self._pool.close()
