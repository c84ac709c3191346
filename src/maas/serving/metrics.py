"""What ``GET /metrics`` shows: the server's Prometheus families (docs/metrics.md).

``ServerMetrics`` is a prometheus_client ``Collector`` over this process's deployments
(requests, latencies, batches, queues, loads, traffic roles, shadow comparisons: the
``VersionMetrics`` the hot path fills), the families other parts add (``add_source``:
drift, alerts), the registry's jobs, the build and this process's ``process_*``.

Under ``maas serve --workers N`` each worker publishes its own families (not the jobs,
which every worker reads from the same registry, nor ``process_*``) to the metrics folder
once a second (``run``), and ``collect`` merges them with this process's live ones
(``monitoring.snapshots``): what a scrape shows adds up over the processes whichever
worker answers it. ``process_*`` are the answering process's own.

Everything here is read on the event loop thread (the counters' only writer), so
``collect`` is a walk over small lists; what waits on a disk or the database
(``refresh``: the other workers' snapshots, the job counts every ``JOBS_CACHE_S``) runs
in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Final

from maas import __version__
from maas.errors import MaasError
from maas.monitoring.metrics import (
    LATENCY_BUCKETS_S,
    Collector,
    Histogram,
    Metric,
    ProcessCollector,
    add_histogram,
    counter_family,
    gauge_family,
    histogram_family,
    process_families,
)
from maas.monitoring.snapshots import merge, read_peers, remove_snapshot, to_json, write_snapshot
from maas.registry.jobs import JOB_STATES, JobBook
from maas.serving.deployments import Deployments
from maas.serving.statistics import (
    EVICTIONS,
    LOAD_FAILURES,
    LOADS,
    OUTCOMES,
    ROLES,
    SHADOW_RESULTS,
    TRANSPORTS,
    UNLOADS,
    RequestMeter,
)

__all__ = ["JOBS_CACHE_S", "PUBLISH_INTERVAL_S", "ServerMetrics", "Source"]

log = logging.getLogger(__name__)

#: Families another part of the server adds (``add_source``), read at each collect.
Source = Callable[[], Iterable[Metric]]
#: How often a worker publishes its families for the others (seconds).
PUBLISH_INTERVAL_S: Final = 1.0
#: How long the job counts read from the registry serve before they are read again.
JOBS_CACHE_S: Final = 2.0
#: Epochs last longer than requests: the latency buckets, then up to an hour.
EPOCH_BUCKETS_S: Final = (*LATENCY_BUCKETS_S, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
_EPOCH_PAGE: Final = 10_000


def takes_max(family: str) -> bool:
    """Families whose samples merge across processes by their largest value, not the sum:
    drift scores (each worker compares its own window with the same reference) and
    ``maas_model_loaded`` (1 when loaded, however many workers hold it)."""
    return family.startswith("maas_drift_") or family == "maas_model_loaded"


class ServerMetrics(Collector):
    """The server's families, merged across its worker processes (a prometheus-client
    ``Collector``: a ``CollectorRegistry`` can hold it too).

    Example::

        metrics = ServerMetrics(deployments, meter, registry.jobs, settings.metrics_dir)
        metrics.add_source(drift.families)
        await metrics.refresh()
        text = render(metrics.collect())
    """

    def __init__(
        self,
        deployments: Deployments,
        meter: RequestMeter | None,
        jobs: JobBook,
        folder: Path | None = None,
        *,
        enabled: bool = True,
    ) -> None:
        #: False (``MAAS_METRICS=false``): ``/metrics`` answers 404 and nothing is published.
        self.enabled = enabled
        self._deployments = deployments
        self._meter = meter
        self._folder = folder
        self._pid = os.getpid()
        self._sources: list[Source] = []
        self._peers: list[list[Metric]] = []
        self._jobs = _JobFamilies(jobs)
        self._process = ProcessCollector(registry=None)
        self._build = _build_info()

    def add_source(self, source: Source) -> None:
        """Add ``source()``'s families (``maas_*``, per process) to every collect."""
        self._sources.append(source)

    def local(self) -> list[Metric]:
        """This process's own families: what it publishes, and merges with the others'."""
        families = _version_families(self._deployments, self._meter)
        for source in self._sources:
            try:
                families.extend(source())
            except Exception:  # one broken source must not take the whole scrape down
                log.exception("a metrics source failed; its families are left out")
        return families

    def collect(self) -> list[Metric]:
        """Every family, merged across the worker processes (call on the event loop)."""
        merged = merge([self.local(), *self._peers], takes_max)
        return [*merged, *self._jobs.families(), self._build, *process_families(self._process)]

    async def refresh(self) -> None:
        """Read the other workers' snapshots and, when stale, the job counts (in threads)."""
        if self._folder is not None:
            self._peers = await asyncio.to_thread(read_peers, self._folder, self._pid)
        if self._jobs.stale():
            await asyncio.to_thread(self._jobs.refresh)

    async def run(self, interval_s: float = PUBLISH_INTERVAL_S) -> None:
        """Under ``--workers N``, until cancelled: publish this process's families for the
        other workers and read theirs (for ``collect`` callers other than a scrape, such
        as the alerts), every ``interval_s``. One process: nothing to do."""
        folder = self._folder
        if not self.enabled or folder is None:
            return
        try:
            while True:
                try:
                    families = self.local()  # on the loop, where the counters are written
                    await asyncio.to_thread(_publish, folder, self._pid, families)
                    self._peers = await asyncio.to_thread(read_peers, folder, self._pid)
                except OSError as exc:  # the folder went (the server stops): try again
                    log.warning("could not publish this worker's metrics: %s", exc)
                await asyncio.sleep(interval_s)
        finally:
            remove_snapshot(folder, self._pid)


def _publish(folder: Path, pid: int, families: list[Metric]) -> None:
    write_snapshot(folder, pid, to_json(families))


def _version_families(deployments: Deployments, meter: RequestMeter | None) -> list[Metric]:
    """The families of every version this process loaded (or tried to) since it started."""
    mv = ["model", "version"]
    requests = counter_family(
        "maas_inference_requests_total",
        "Inference requests answered, by transport and outcome.",
        [*mv, "transport", "outcome"],
    )
    duration = histogram_family(
        "maas_inference_request_duration_seconds",
        "Whole requests, from the transport receiving them to their answer encoded.",
        [*mv, "transport"],
    )
    queue = histogram_family(
        "maas_inference_queue_duration_seconds",
        "Per batch: how long its first request waited in the queue.",
        mv,
    )
    compute = histogram_family(
        "maas_inference_compute_duration_seconds", "Per batch: the model's run.", mv
    )
    batch_size = histogram_family("maas_inference_batch_size", "Rows per batch run.", mv)
    depth = gauge_family("maas_inference_queue_depth", "Requests waiting for a batch.", mv)
    in_flight = gauge_family(
        "maas_inference_in_flight", "Requests accepted, not yet answered: queued or running.", mv
    )
    loaded = gauge_family("maas_model_loaded", "1 when the version is loaded and warm.", mv)
    events = [
        counter_family("maas_model_loads_total", "Loads (warm-up passed).", mv),
        counter_family("maas_model_load_failures_total", "Loads or warm-ups that failed.", mv),
        counter_family("maas_model_unloads_total", "Unloads (evictions included).", mv),
        counter_family("maas_model_evictions_total", "Unloads to keep a memory bound.", mv),
    ]
    routed = counter_family("maas_traffic_routed_total", "Requests by traffic role.", [*mv, "role"])
    shadow = counter_family(
        "maas_shadow_comparisons_total",
        "Shadow copies compared with the primary's answer (version: the shadow's).",
        [*mv, "result"],
    )
    loaded_now = {d.key: d for d in deployments.loaded()}
    for key, m in sorted(deployments.metrics.items()):
        model, version = key[0], str(key[1])
        for t, transport in enumerate(TRANSPORTS):
            for o, outcome in enumerate(OUTCOMES):
                requests.add_metric([model, version, transport, outcome], m.requests[t * 5 + o])
            add_histogram(duration, [model, version, transport], m.durations[t])
        add_histogram(queue, [model, version], m.queue)
        add_histogram(compute, [model, version], m.compute)
        add_histogram(batch_size, [model, version], m.batch_size)
        deployment = loaded_now.get(key)
        loaded.add_metric([model, version], 0.0 if deployment is None else 1.0)
        if deployment is not None:
            depth.add_metric([model, version], deployment.scheduler.queue_length)
            in_flight.add_metric([model, version], deployment.scheduler.in_flight)
        for event in (LOADS, LOAD_FAILURES, UNLOADS, EVICTIONS):
            events[event].add_metric([model, version], m.events[event])
        for r, role in enumerate(ROLES):
            routed.add_metric([model, version, role], m.routed[r])
        for r, result in enumerate(SHADOW_RESULTS):
            shadow.add_metric([model, version, result], m.shadow[r])
    families: list[Metric] = [
        requests,
        duration,
        queue,
        compute,
        batch_size,
        depth,
        in_flight,
        loaded,
        *events,
        routed,
        shadow,
    ]
    if meter is not None:
        unrouted = counter_family(
            "maas_inference_unrouted_total",
            "Inference requests refused before a version was known (unknown model, "
            "refused headers or key), by transport and outcome.",
            ["transport", "outcome"],
        )
        for t, transport in enumerate(TRANSPORTS):
            for o, outcome in enumerate(OUTCOMES):
                unrouted.add_metric([transport, outcome], meter.unrouted[t * 5 + o])
        families.append(unrouted)
    return families


class _JobFamilies:
    """The job families, read from the registry at most every ``JOBS_CACHE_S``: counts
    by state, and each epoch's seconds folded into the histogram once (by row id)."""

    def __init__(self, jobs: JobBook) -> None:
        self._book = jobs
        self._lock = threading.Lock()
        self._epochs = Histogram(EPOCH_BUCKETS_S)
        self._after = 0  # the last epoch row folded in
        self._read_at_s = -JOBS_CACHE_S
        self._families: list[Metric] = []

    def stale(self) -> bool:
        return time.monotonic() - self._read_at_s >= JOBS_CACHE_S

    def families(self) -> list[Metric]:
        return self._families

    def refresh(self) -> None:
        """Read the registry (in a thread: it may wait on the database)."""
        with self._lock:
            if not self.stale():
                return
            try:
                counts = self._book.count_by_state()
                while True:
                    rows = self._book.epoch_seconds(after=self._after, limit=_EPOCH_PAGE)
                    for row_id, seconds in rows:
                        if seconds is not None:
                            self._epochs.observe(seconds)
                        self._after = row_id
                    if len(rows) < _EPOCH_PAGE:
                        break
            except MaasError as exc:  # the database is away: keep the last numbers
                self._read_at_s = time.monotonic()
                log.warning("could not read the jobs for metrics: %s", exc.message)
                return
            self._read_at_s = time.monotonic()
            by_state = gauge_family(
                "maas_jobs", "Jobs (training and optimisation) by state.", ["state"]
            )
            for state in JOB_STATES:
                by_state.add_metric([state], counts.get(state, 0))
            running = gauge_family("maas_jobs_running", "Jobs running now.", [])
            running.add_metric([], counts.get("running", 0))
            epochs = histogram_family(
                "maas_job_epoch_duration_seconds", "Seconds per training epoch.", []
            )
            add_histogram(epochs, [], self._epochs)
            self._families = [by_state, running, epochs]


def _build_info() -> Metric:
    family = gauge_family(
        "maas_build_info",
        "1, labelled with the versions of maas, Python and ONNX Runtime.",
        ["version", "python", "onnxruntime"],
    )
    family.add_metric([__version__, platform.python_version(), _package_version()], 1.0)
    return family


def _package_version() -> str:
    for name in ("onnxruntime", "onnxruntime-gpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return ""
