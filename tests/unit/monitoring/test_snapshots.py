"""Merging the families of several processes: sums, maxima, and who is left out."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families

from maas.monitoring.metrics import (
    LATENCY_BUCKETS_S,
    Histogram,
    add_histogram,
    counter_family,
    gauge_family,
    histogram_family,
    render,
)
from maas.monitoring.snapshots import (
    STALE_AFTER_S,
    from_json,
    merge,
    read_peers,
    to_json,
    write_snapshot,
)


def _process(requests: int, drift: float, latencies: list[float], model: str = "m") -> list[Metric]:
    counter = counter_family("maas_inference_requests_total", "Requests.", ["model"])
    counter.add_metric([model], requests)
    score = gauge_family("maas_drift_score", "Drift.", ["model"])
    score.add_metric([model], drift)
    histogram = Histogram(LATENCY_BUCKETS_S)
    for latency in latencies:
        histogram.observe(latency)
    durations = histogram_family("maas_inference_request_duration_seconds", "Time.", ["model"])
    add_histogram(durations, [model], histogram)
    return [counter, score, durations]


def _values(families: list[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = render(families).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _is_drift(name: str) -> bool:
    return name.startswith("maas_drift_")


def test_counters_and_histograms_sum_and_drift_takes_the_largest() -> None:
    merged = merge([_process(3, 0.1, [0.001, 2.0]), _process(4, 0.7, [0.001])], _is_drift)
    values = _values(merged)
    m = (("model", "m"),)
    assert values[("maas_inference_requests_total", m)] == 7
    assert values[("maas_drift_score", m)] == 0.7
    assert values[("maas_inference_request_duration_seconds_count", m)] == 3
    assert values[("maas_inference_request_duration_seconds_bucket", (("le", "0.001"), *m))] == 2
    assert values[("maas_inference_request_duration_seconds_sum", m)] == 2.002


def test_a_series_only_one_process_has_is_kept_whole() -> None:
    merged = merge(
        [_process(1, 0.0, [0.5]), _process(2, 0.0, [0.5, 0.5], model="other")], _is_drift
    )
    values = _values(merged)
    assert values[("maas_inference_requests_total", (("model", "other"),))] == 2
    (durations,) = [f for f in merged if f.name == "maas_inference_request_duration_seconds"]
    models = [s.labels["model"] for s in durations.samples]
    assert models == sorted(models, key=["m", "other"].index)  # each series in one run


def test_snapshots_round_trip_through_json() -> None:
    families = _process(5, 0.3, [0.01])
    assert _values(from_json(to_json(families))) == _values(families)


def test_peers_are_the_other_living_processes_with_fresh_snapshots(tmp_path: Path) -> None:
    write_snapshot(tmp_path, os.getpid(), to_json(_process(100, 0.0, [])))  # our own: skipped
    parent = os.getppid()
    write_snapshot(tmp_path, parent, to_json(_process(2, 0.0, [])))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    write_snapshot(tmp_path, int(gone.stdout), to_json(_process(50, 0.0, [])))  # exited
    (tmp_path / "1.json").write_bytes(b"not json")  # pid 1 lives, its file is not ours
    peers = read_peers(tmp_path, os.getpid())
    assert [_values(p)[("maas_inference_requests_total", (("model", "m"),))] for p in peers] == [2]
    stale = time.time() - STALE_AFTER_S - 1
    os.utime(tmp_path / f"{parent}.json", (stale, stale))
    assert read_peers(tmp_path, os.getpid()) == []
    assert list(tmp_path.glob(".*.tmp")) == []  # written by rename: no partial files left


def test_a_missing_folder_has_no_peers(tmp_path: Path) -> None:
    assert read_peers(tmp_path / "gone", os.getpid()) == []
