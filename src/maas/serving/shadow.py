"""Shadow traffic: a copy of the default route's requests goes to a candidate version
whose answers the callers never see; its answers are compared with the primary's.

Off the hot path by construction: ``offer`` only appends to a bounded list (copies
beyond it are dropped and counted); once ``DRAIN_AT`` copies are pending, or
``DRAIN_AFTER_S`` has passed, one task per mirror stacks them into batches for the
shadow version's own scheduler, then compares each whole batch at once.
Request ``n`` is copied when ``floor(n * fraction)`` grows, so 0.25 copies exactly every
fourth request and 0.1 exactly 10 of 100 (adding 0.1 up a hundred times would give 9).

Agreement, per row: every discrete output (integers, BOOL, BYTES) equal; a version with
float outputs only agrees when the argmax over the last axis is equal (the label of a
classifier's logits). ``max_abs_diff`` is kept per float output. Latency: the primary's
per request, the shadow's per call (one call carries a batch of copies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from maas.errors import MaasError, describe
from maas.scheduling.stacking import batch_key
from maas.serving.statistics import SHADOW, VersionMetrics

if TYPE_CHECKING:
    from maas.serving.deployment import Deployment

__all__ = ["ShadowMirror", "ShadowReport"]

log = logging.getLogger(__name__)

Feed = dict[str, np.ndarray]
#: Copies waiting for the shadow version; beyond this they are dropped (and counted).
MAX_PENDING: Final = 1024
#: Copies wait until this many are pending, or this long, then run as batches: per copy
#: the callers then pay a list append, not a batch of their own (measured: at c=8 on the
#: tiny MLP, draining at once cost the callers twice the CPU per request; see
#: docs/performance.md).
DRAIN_AT: Final = 64
DRAIN_AFTER_S: Final = 0.02
_LATENCY_WINDOW: Final = 1024


@dataclass(slots=True)
class _Latency:
    samples: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_WINDOW))
    total_s: float = 0.0
    count: int = 0

    def add(self, seconds: float) -> None:
        self.samples.append(seconds)
        self.total_s += seconds
        self.count += 1

    def to_dict(self) -> dict[str, float | None]:
        if not self.count:
            return {"mean_ms": None, "p50_ms": None}
        return {
            "mean_ms": 1000 * self.total_s / self.count,
            "p50_ms": 1000 * float(np.median(self.samples)),
        }


@dataclass(slots=True)
class ShadowReport:
    """What the mirror saw since its policy took effect."""

    model: str
    version: int
    fraction: float
    since: float = field(default_factory=time.time)
    offered: int = 0
    mirrored: int = 0
    dropped: int = 0
    errors: int = 0
    compared: int = 0
    agreed: int = 0
    last_error: str = ""
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    primary_latency: _Latency = field(default_factory=_Latency)
    shadow_latency: _Latency = field(default_factory=_Latency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "fraction": self.fraction,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "offered": self.offered,
            "mirrored": self.mirrored,
            "dropped": self.dropped,
            "errors": self.errors,
            "last_error": self.last_error,
            "compared": self.compared,
            "agreed": self.agreed,
            "agreement": self.agreed / self.compared if self.compared else None,
            "max_abs_diff": dict(self.max_abs_diff),
            "primary_latency": self.primary_latency.to_dict(),
            "shadow_latency": self.shadow_latency.to_dict(),
        }


class ShadowMirror:
    """Mirrors one model's default-route requests to version ``number``."""

    def __init__(
        self,
        model: str,
        number: int,
        deployment: Callable[[], Deployment | None],
        fraction: float = 1.0,
        metrics: VersionMetrics | None = None,
    ) -> None:
        self.number = number
        #: The shadow version's series: copies sent (traffic role ``shadow``), comparisons.
        self._metrics = metrics
        self.report = ShadowReport(model, number, fraction)
        self._deployment = deployment
        self._fraction = fraction
        self._copies_due = 0
        self._pending: list[tuple[Mapping[str, np.ndarray], Feed]] = []
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: (deployment, batch key) pairs whose copies passed the shadow's input checks.
        self._checked: set[tuple[int, Hashable]] = set()

    def offer(self, feed: Mapping[str, np.ndarray], outputs: Feed, primary_s: float) -> None:
        """The primary answered ``feed`` with ``outputs``: maybe copy it (never blocks)."""
        report = self.report
        report.offered += 1
        report.primary_latency.add(primary_s)
        if self._fraction < 1.0:
            # One rounding per request, not a running float sum (whose error builds up);
            # the epsilon keeps 0.29 * 100 (28.999999999999996) at 29.
            due = math.floor(report.offered * self._fraction + 1e-9)
            if due <= self._copies_due:
                return
            self._copies_due = due
        if len(self._pending) >= MAX_PENDING:
            report.dropped += 1
            return
        self._pending.append((feed, outputs))
        if self._task is not None:
            return  # the running drain takes it
        if len(self._pending) >= DRAIN_AT:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(DRAIN_AFTER_S, self._start)

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def close(self) -> None:
        """Stop mirroring; copies not yet sent are dropped."""
        self._pending.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _drain(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, []
                deployment = self._deployment()
                if deployment is None:
                    self._failed(len(pending), "the shadow version is not loaded")
                    continue
                for group in _batches(pending, deployment.scheduler.batching.max_batch_size):
                    await self._mirror(deployment, group)
        finally:
            self._task = None

    async def _mirror(
        self, deployment: Deployment, group: list[tuple[Mapping[str, np.ndarray], Feed]]
    ) -> None:
        try:
            key = batch_key(group[0][0])
            if (id(deployment), key) not in self._checked:  # once per kind of copy
                deployment.validator.check_feed(group[0][0])
                self._checked.add((id(deployment), key))
            first = group[0][0]
            merged = {name: np.concatenate([feed[name] for feed, _ in group]) for name in first}
            if self._metrics is not None:
                self._metrics.routed[SHADOW] += len(group)
            started = time.perf_counter()
            # Straight to the instances (nobody waits on a copy, so no queue, no deadline):
            # the batch shares the instances with the shadow's own traffic, in turn.
            outputs = await deployment.pool.run(merged)
            deployment.checker.check(outputs, len(next(iter(merged.values()))))
            self.report.shadow_latency.add(time.perf_counter() - started)
        except MaasError as exc:
            self._failed(len(group), exc.message)
            return
        except Exception as exc:  # the shadow model raised: counted and shown, never raised
            self._failed(len(group), f"the model failed: {describe(exc)}")
            return
        self.report.mirrored += len(group)
        primary = {
            name: np.concatenate([out[name] for _, out in group])
            for name in group[0][1]
            if all(name in out for _, out in group)
        }
        self._compare(primary, outputs)

    def _compare(self, primary: Feed, shadow: Feed) -> None:
        """Row by row, the primary's outputs (stacked) against the shadow's."""
        report = self.report
        common = [n for n in primary if n in shadow and primary[n].shape == shadow[n].shape]
        if not common or primary[common[0]].ndim == 0:
            self._failed(
                1, "the shadow's outputs share no batched name and shape with the primary's"
            )
            return
        rows = primary[common[0]].shape[0]
        agree = np.ones(rows, dtype=bool)
        discrete = [n for n in common if primary[n].dtype.kind not in "fc"]
        for name in common:
            a, b = primary[name], shadow[name]
            if name in discrete:
                agree &= (a == b).reshape(rows, -1).all(axis=1)
            else:
                diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
                report.max_abs_diff[name] = max(
                    report.max_abs_diff.get(name, 0.0), float(diff.max(initial=0.0))
                )
        if not discrete:
            a, b = primary[common[0]], shadow[common[0]]
            if a.ndim >= 2:
                same = np.argmax(a, axis=-1) == np.argmax(b, axis=-1)
            else:
                same = np.isclose(a, b, rtol=1e-4, atol=1e-5)
            agree &= same.reshape(rows, -1).all(axis=1)
        agreed = int(agree.sum())
        report.compared += rows
        report.agreed += agreed
        if self._metrics is not None:
            self._metrics.shadow[0] += agreed  # SHADOW_RESULTS: agree, disagree, error
            self._metrics.shadow[1] += rows - agreed

    def _failed(self, count: int, message: str) -> None:
        self.report.errors += count
        self.report.last_error = message
        if self._metrics is not None:
            self._metrics.shadow[2] += count


def _batches(
    pending: list[tuple[Mapping[str, np.ndarray], Feed]], max_rows: int
) -> list[list[tuple[Mapping[str, np.ndarray], Feed]]]:
    """Copies that can be stacked (same key) in groups of at most ``max_rows`` rows (the
    primary validated them: every input of a copy has its batch dim first)."""
    if max_rows <= 1:
        return [[item] for item in pending]
    groups: list[list[tuple[Mapping[str, np.ndarray], Feed]]] = []
    open_groups: dict[Hashable, tuple[list[tuple[Mapping[str, np.ndarray], Feed]], int]] = {}
    for item in pending:
        key = batch_key(item[0])
        rows = next(iter(item[0].values())).shape[0]
        group, size = open_groups.get(key, (None, 0))
        if group is None or size + rows > max_rows:
            group, size = [], 0
            groups.append(group)
        group.append(item)
        open_groups[key] = (group, size + rows)
    return groups
