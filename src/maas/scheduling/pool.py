"""Instance pools: N runtime instances of one version, each used by one call at a time.

``build_pool`` chooses where instances live: threads in this process for runtimes
whose ``predict`` releases the GIL (ONNX Runtime, TorchScript), worker processes for
the others, so one slow pure-Python model cannot stall the event loop or its siblings.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from maas.protocol.signature import Signature
from maas.runtimes.base import LoadOptions, Runtime
from maas.scheduling.policy import InstancePolicy
from maas.scheduling.slots import InstanceSlots
from maas.scheduling.workers import ProcessInstancePool, WorkerBudget

__all__ = ["InstancePool", "ThreadInstancePool", "build_pool", "default_intra_op_threads"]


class InstancePool(Protocol):
    """What the batcher runs batches on; ``capacity`` batches may run at once."""

    @property
    def capacity(self) -> int: ...

    @property
    def failed(self) -> str | None:
        """Why the pool can no longer serve (its workers gave up restarting), else None."""
        ...

    async def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    async def close(self) -> None: ...


class ThreadInstancePool:
    """Runtime instances in this process, each pinned to a single-thread executor.

    One thread per instance (not a shared pool) keeps a runtime on the thread that
    first used it and guarantees it never runs two batches at once.

    Batches whose typical run time is under ``inline_max_s`` run on the event loop's own
    thread instead: handing a 20 µs MLP batch to a thread and back costs several times
    the inference (a queue, two thread wake-ups, GIL hand-offs). The typical time is a
    moving average of the calling thread's CPU time per run, so a model that turns out
    slow (or a big batch that raises the average) moves back to its thread at once, and
    a run that waited for the GIL on its thread does not count as slow. Runtimes that wait
    on an accelerator (``Runtime.on_cpu`` false) never run on the loop.
    """

    def __init__(
        self,
        runtimes: Sequence[Runtime],
        inline_max_s: float = 0.0,
        intra_op_threads: int | None = None,
    ) -> None:
        if not runtimes:
            raise ValueError("a pool needs at least one runtime instance")
        self._runtimes = list(runtimes)
        #: The threads each instance was loaded with (None: the runtime's default).
        self.intra_op_threads = intra_op_threads
        # A run waiting on an accelerator costs the loop its wall time, not its CPU time.
        self._inline_max_s = inline_max_s if all(r.on_cpu for r in self._runtimes) else 0.0
        self._typical_s: float | None = None  # None until measured off the loop
        self._executors = [
            ThreadPoolExecutor(1, thread_name_prefix=f"maas-instance-{i}")
            for i in range(len(self._runtimes))
        ]
        self._slots = InstanceSlots(len(self._runtimes))

    @property
    def failed(self) -> str | None:
        return None  # threads do not crash on their own: a crash takes the server with them

    @property
    def capacity(self) -> int:
        return len(self._runtimes)

    async def run(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch on a free instance."""
        index = await self._slots.acquire()
        try:
            runtime = self._runtimes[index]
            if self._typical_s is not None and self._typical_s < self._inline_max_s:
                outputs, elapsed_s = _timed(runtime, feed)
            else:
                outputs, elapsed_s = await asyncio.get_running_loop().run_in_executor(
                    self._executors[index], _timed, runtime, feed
                )
            self._observe(elapsed_s)
            return outputs
        finally:
            self._slots.release(index)

    def _observe(self, elapsed_s: float) -> None:
        # The predict call itself, timed where it ran (see ``_timed``): a thread hand-off,
        # or a wait for the GIL, counted against the model kept a tiny model off the loop.
        previous = self._typical_s
        self._typical_s = elapsed_s if previous is None else previous + 0.2 * (elapsed_s - previous)

    async def close(self) -> None:
        """Wait for running batches, then release every runtime."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        for executor in self._executors:
            executor.shutdown(wait=True)
        for runtime in self._runtimes:
            runtime.close()


def _timed(runtime: Runtime, feed: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
    """The outputs, and the CPU time the calling thread spent: unlike wall time it leaves
    out waiting for the GIL, which on an instance thread can take a switch interval
    (5 ms) and would make a tiny model look slow forever."""
    started_s = time.thread_time()
    outputs = runtime.predict(feed)
    return outputs, time.thread_time() - started_s


def default_intra_op_threads(count: int) -> int:
    """Threads per instance when not configured: the cores shared out among instances.

    N instances run N batches at once; each with every core's worth of threads would
    oversubscribe the CPU and make all of them slower (context switches, cache misses).
    """
    return max(1, (os.cpu_count() or 1) // max(count, 1))


def build_pool(
    artifact_format: str,
    path: Path,
    runtime_cls: type[Runtime],
    policy: InstancePolicy,
    signature: Signature | None = None,
    probes: Iterable[Mapping[str, np.ndarray]] = (),
    budget: WorkerBudget | None = None,
) -> InstancePool:
    """Load ``policy.count`` instances of ``path`` as threads or worker processes.

    ``kind="auto"`` means threads when ``runtime_cls.releases_gil``, else processes.
    Loading in threads happens here (blocking; call it through ``asyncio.to_thread``);
    worker processes load in the background, and ``ProcessInstancePool.ready()``
    awaits them; they count against ``budget`` (the server's bound) while they run.

    ``probes`` (requests from one row up to a full batch) decide the threads per instance
    when the policy leaves them to maas: a model whose full batch runs in under
    ``inline_max_s`` runs on the event loop, where more threads than one only add hand-offs
    between them and spinning on the cores the loop and the clients need (the tiny MLP:
    44 instead of 104 µs of CPU per batch of 32, 20% more requests per second at c=8).
    """
    count = max(policy.count, 1)
    threads = policy.intra_op_threads or default_intra_op_threads(count)
    options = LoadOptions(intra_op_threads=threads, signature=signature, spinning=policy.spinning)
    kind = policy.kind
    if kind == "auto":
        kind = "thread" if runtime_cls.releases_gil else "process"
    if kind == "process":
        return ProcessInstancePool(artifact_format, path, options, count, budget)
    runtimes: list[Runtime] = []
    try:
        runtimes.append(runtime_cls.load(path, options))
        chosen_by_maas = policy.intra_op_threads is None and threads > 1
        if chosen_by_maas and _runs_on_the_loop(runtimes[0], probes, threads, policy.inline_max_s):
            runtimes.pop().close()
            options = replace(options, intra_op_threads=1)
            runtimes.append(runtime_cls.load(path, options))
        while len(runtimes) < count:
            runtimes.append(runtime_cls.load(path, options))
    except BaseException:
        for runtime in runtimes:
            runtime.close()
        raise
    return ThreadInstancePool(runtimes, policy.inline_max_s, options.intra_op_threads)


def _runs_on_the_loop(
    runtime: Runtime, probes: Iterable[Mapping[str, np.ndarray]], threads: int, bound_s: float
) -> bool:
    """Whether every probe (smallest first) would run in under ``bound_s`` on one thread:
    the calling thread's CPU time times ``threads``, as if all of them had worked the whole
    run; the best of up to three runs, after one that pays for the runtime's lazy set-up.
    A clearly slow model stops at its first small run (the CNN: two runs of one image). A
    probe that fails says no: the warm-up that follows reports the failure."""
    if not runtime.on_cpu or bound_s <= 0:
        return False
    tried = False
    try:
        for probe in probes:
            if not tried:
                _timed(runtime, probe)
                tried = True
            for _ in range(3):
                cost_s = _timed(runtime, probe)[1] * threads
                if cost_s < bound_s or cost_s > 10 * bound_s:
                    break
            if cost_s >= bound_s:
                return False
    except Exception:
        return False
    return tried
