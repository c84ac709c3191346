"""The hot path's histogram against prometheus_client's own, and the families it makes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Histogram as ClientHistogram
from prometheus_client.parser import text_string_to_metric_families

from maas.monitoring.metrics import (
    BATCH_SIZE_BUCKETS,
    LATENCY_BUCKETS_S,
    Histogram,
    add_histogram,
    counter_family,
    gauge_family,
    histogram_family,
    process_families,
    render,
)

VALUES = [0.00005, 0.0001, 0.00011, 0.0005, 0.003, 0.2, 1.0, 29.9, 30.0, 31.0, 1e6]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_histogram_renders_as_prometheus_clients_own_would() -> None:
    ours = Histogram(LATENCY_BUCKETS_S)
    registry = CollectorRegistry()
    theirs = ClientHistogram(
        "maas_x_seconds", "Doc.", ["model"], buckets=LATENCY_BUCKETS_S, registry=registry
    )
    for value in VALUES:
        ours.observe(value)
        theirs.labels("m").observe(value)
    family = histogram_family("maas_x_seconds", "Doc.", ["model"])
    add_histogram(family, ["m"], ours)
    expected = {
        key: value
        for key, value in _samples(generate_latest(registry).decode()).items()
        if not key[0].endswith("_created")
    }
    assert _samples(render([family]).decode()) == expected


def test_a_value_on_a_bound_counts_in_that_bucket_and_the_rest_in_inf() -> None:
    histogram = Histogram(BATCH_SIZE_BUCKETS)
    for rows in (1, 2, 3, 512, 513):
        histogram.observe(rows)
    assert histogram.count == 5 and histogram.sum == 1031
    cumulative = dict(histogram.cumulative())
    assert cumulative["1.0"] == 1 and cumulative["2.0"] == 2 and cumulative["4.0"] == 3
    assert cumulative["512.0"] == 4 and cumulative["+Inf"] == 5


def test_counters_and_gauges_render_and_parse() -> None:
    requests = counter_family("maas_y_total", "Requests.", ["outcome"])
    requests.add_metric(["success"], 3)
    depth = gauge_family("maas_z", "Depth.", [])
    depth.add_metric([], 2)
    samples = _samples(render([requests, depth]).decode())
    assert samples[("maas_y_total", (("outcome", "success"),))] == 3
    assert samples[("maas_z", ())] == 2


def test_process_families_are_this_processs() -> None:
    names = {family.name for family in process_families()}
    assert {"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds"} <= names
