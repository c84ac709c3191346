"""Dynamic batching and instance pools: how requests for one version share its runtimes.

``VersionScheduler`` is the entry point the data plane uses; the rest is exposed for
tests, benchmarks and custom pools.
"""

from __future__ import annotations

from maas.scheduling.batcher import DynamicBatcher
from maas.scheduling.clock import Clock, MonotonicClock
from maas.scheduling.planner import BatchPlanner, PendingItem
from maas.scheduling.policy import BatchingPolicy, InstancePolicy
from maas.scheduling.pool import InstancePool, ThreadInstancePool, build_pool
from maas.scheduling.scheduler import VersionScheduler
from maas.scheduling.workers import ProcessInstancePool

__all__ = [
    "BatchPlanner",
    "BatchingPolicy",
    "Clock",
    "DynamicBatcher",
    "InstancePolicy",
    "InstancePool",
    "MonotonicClock",
    "PendingItem",
    "ProcessInstancePool",
    "ThreadInstancePool",
    "VersionScheduler",
    "build_pool",
]
