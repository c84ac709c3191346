"""Metric primitives cheap enough for the inference hot path, and their Prometheus families.

prometheus_client's own ``Counter`` and ``Histogram`` take a lock on every update (and
its multiprocess mode writes an mmap'd file per increment): too much beside a request
that takes ~80 µs in all. Here the one writer is the event loop thread, so a counter is
a list slot and a ``Histogram`` a list of ints and a float: ``observe`` is one bisect
and two additions (~0.2 µs). Prometheus families (``prometheus_client.core.*Family``)
are built from them only when someone scrapes.

Example::

    latency = Histogram(LATENCY_BUCKETS_S)
    latency.observe(0.00042)
    family = histogram_family("maas_x_seconds", "What it times.", ["model"])
    add_histogram(family, ["mlp"], latency)
    text = render([family])
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Final

from prometheus_client import Metric, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

__all__ = [
    "BATCH_SIZE_BUCKETS",
    "CONTENT_TYPE",
    "LATENCY_BUCKETS_S",
    "Collector",
    "Histogram",
    "Metric",
    "ProcessCollector",
    "add_histogram",
    "counter_family",
    "gauge_family",
    "histogram_family",
    "process_families",
    "render",
]

#: Seconds: from a tiny MLP's 100 µs to a CNN batch of seconds (the catalogue's buckets).
LATENCY_BUCKETS_S: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
#: Rows per batch.
BATCH_SIZE_BUCKETS: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)
#: The media type of ``render``'s text.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


class Histogram:
    """Counts per bucket (not cumulative; the last one is +Inf) and the sum of values.

    Not thread-safe, on purpose: one thread (the event loop's) records.
    """

    __slots__ = ("bounds", "counts", "les", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        #: The ``le`` label of each bound, as prometheus_client's own histograms write it.
        self.les = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]  # untyped helper

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, so a value on a bound counts in it (le).
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count of values <= le)`` per bound, then ``("+Inf", count)``."""
        found: list[tuple[str, float]] = []
        running = 0
        for le, count in zip(self.les, self.counts, strict=False):
            running += count
            found.append((le, running))
        found.append(("+Inf", running + self.counts[-1]))
        return found


def counter_family(name: str, documentation: str, labels: Sequence[str]) -> CounterMetricFamily:
    """A counter family (``name`` ends in ``_total``; its samples are named so)."""
    return CounterMetricFamily(name, documentation, labels=labels)


def gauge_family(name: str, documentation: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def histogram_family(name: str, documentation: str, labels: Sequence[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, documentation, labels=labels)


def add_histogram(
    family: HistogramMetricFamily, label_values: Sequence[str], histogram: Histogram
) -> None:
    """One labelled series of ``family`` from ``histogram``."""
    family.add_metric(label_values, histogram.cumulative(), histogram.sum)


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(families: Iterable[Metric]) -> bytes:
    """The Prometheus text format (``CONTENT_TYPE``) of ``families``."""
    return generate_latest(_Families(families))


def process_families(collector: ProcessCollector | None = None) -> list[Metric]:
    """``process_*`` of this process (memory, CPU, open files), read from /proc now."""
    return list((collector or ProcessCollector(registry=None)).collect())
