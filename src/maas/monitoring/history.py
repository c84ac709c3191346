"""What alert rules read from successive metric snapshots: counter increases over a
window (resets handled) and the latest gauges, plus Prometheus' ``histogram_quantile``.

Only the series rules use are kept, summed over the labels rules do not group by
(``transport``), and only as far back as the longest window needs: one snapshot older
than it (the window's start) and those after.

Counters are kept as running totals of their increments, so a series that goes down
never yields a negative (or a spurious) increase. Down is read as a contribution that
left, not as Prometheus' counter reset: the numbers are the server's own, summed over
the processes of ``maas serve --workers N``, so the sum drops when a worker exits or
restarts, and what the others still hold was counted already (``increase()`` would count
it all again, and fire load-failure and rejection alerts on old events). The totals go
on from the lower value; the one process that runs the evaluator cannot restart without
it. A series that first appears after the first snapshot counts from zero (its first
increments count, which ``increase()`` misses).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from prometheus_client import Metric

__all__ = [
    "DRIFT",
    "DURATION_BUCKETS",
    "LOAD_FAILURES",
    "REQUESTS",
    "History",
    "SeriesKey",
    "histogram_quantile",
]

REQUESTS: Final = "maas_inference_requests_total"
DURATION_BUCKETS: Final = "maas_inference_request_duration_seconds_bucket"
LOAD_FAILURES: Final = "maas_model_load_failures_total"
DRIFT: Final = "maas_drift_score"
_COUNTERS: Final = frozenset({REQUESTS, DURATION_BUCKETS, LOAD_FAILURES})
_GAUGES: Final = frozenset({DRIFT})
#: The one label kept beside model and version, per sample name.
_EXTRA: Final = {REQUESTS: "outcome", DURATION_BUCKETS: "le"}

#: (sample name, model, version, outcome | le | "")
SeriesKey: TypeAlias = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at: float
    totals: Mapping[SeriesKey, float]  # reset-adjusted counter totals


def _read(families: Iterable[Metric]) -> tuple[dict[SeriesKey, float], dict[SeriesKey, float]]:
    counters: dict[SeriesKey, float] = {}
    gauges: dict[SeriesKey, float] = {}
    for family in families:
        for sample in family.samples:
            name = sample.name
            if name in _COUNTERS:
                into = counters
            elif name in _GAUGES:
                into = gauges
            else:
                continue
            labels = sample.labels
            extra = _EXTRA.get(name)
            key = (
                name,
                labels.get("model", ""),
                labels.get("version", ""),
                labels.get(extra, "") if extra else "",
            )
            if name in _GAUGES:
                into[key] = max(into.get(key, -math.inf), sample.value)
            else:
                into[key] = into.get(key, 0.0) + sample.value
    return counters, gauges


class History:
    """Snapshots over ``span_s`` seconds (the longest window); ``add`` one per evaluation."""

    def __init__(self, span_s: float) -> None:
        self.span_s = span_s
        self._snapshots: deque[_Snapshot] = deque()
        #: series -> (last raw value, adjusted total, when last seen)
        self._running: dict[SeriesKey, tuple[float, float, float]] = {}
        self.gauges: dict[SeriesKey, float] = {}

    def add(self, at: float, families: Iterable[Metric]) -> None:
        counters, self.gauges = _read(families)
        running = self._running
        for key, value in counters.items():
            seen = running.get(key)
            if seen is None:  # new (or back after a span away): counted from zero
                running[key] = (value, value, at)
                continue
            raw, total, _ = seen
            total += max(0.0, value - raw)  # down: a worker's share left (see above)
            running[key] = (value, total, at)
        horizon = at - self.span_s
        for key in [k for k, (_, _, seen_at) in running.items() if seen_at < horizon]:
            del running[key]
        totals = {key: total for key, (_, total, seen_at) in running.items() if seen_at == at}
        self._snapshots.append(_Snapshot(at, totals))
        while len(self._snapshots) >= 2 and self._snapshots[1].at <= horizon:
            self._snapshots.popleft()

    def increases(self, window_s: float) -> dict[SeriesKey, float]:
        """Each counter series' increase over the last ``window_s`` (or since the first
        snapshot, while the history is shorter: what came before it is in no window)."""
        if not self._snapshots:
            return {}
        now = self._snapshots[-1]
        start = self._snapshots[0]
        for snapshot in self._snapshots:
            if snapshot.at > now.at - window_s:
                break
            start = snapshot
        before = start.totals
        return {key: max(0.0, total - before.get(key, 0.0)) for key, total in now.totals.items()}

    def __len__(self) -> int:
        return len(self._snapshots)


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, as Prometheus'
    ``histogram_quantile`` computes it: linear interpolation inside the bucket the rank
    falls in (the first starting at 0), the second-highest bound when the rank falls in
    the +Inf bucket, NaN without observations or without a +Inf bucket."""
    if len(buckets) < 2:
        return math.nan
    ordered = sorted(buckets)
    if not math.isinf(ordered[-1][0]):
        return math.nan
    bounds = [bound for bound, _ in ordered]
    counts: list[float] = []
    for _, count in ordered:  # counts must not decrease (float error, racing scrapes)
        counts.append(max(count, counts[-1]) if counts else count)
    total = counts[-1]
    if total == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    rank = q * total
    b = next((i for i in range(len(counts) - 1) if counts[i] >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)
