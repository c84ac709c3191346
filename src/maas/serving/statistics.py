"""Per-version inference statistics: Triton's ModelStatistics, and the Prometheus series.

Counters are plain integers bumped on the event loop thread (no locks needed).
``VersionStatistics`` is Triton's shape (``GET /v2/models/{name}/stats``, gRPC
``ModelStatistics``), made anew each time a version loads, as Triton's. Its
``metrics`` (``VersionMetrics``, None when ``MAAS_METRICS`` is false) outlives reloads:
``Deployments`` keeps one per version, so the counters ``GET /metrics`` shows only grow.

What a transport adds per request (``RequestMeter.record``): one list slot, one bisect
into the duration buckets, one float sum (~0.3 µs, measured with timeit); per batch
(``record_batch``) three histograms.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Final

from maas import errors
from maas.monitoring.metrics import BATCH_SIZE_BUCKETS, LATENCY_BUCKETS_S, Histogram

__all__ = [
    "CANARY",
    "CLIENT_ERROR",
    "DIRECT",
    "EVICTIONS",
    "FAILURE",
    "GRPC",
    "LOADS",
    "LOAD_FAILURES",
    "OUTCOMES",
    "OUTCOME_OF_CODE",
    "PRIMARY",
    "REJECTED",
    "REST",
    "ROLES",
    "SHADOW",
    "SHADOW_RESULTS",
    "SUCCESS",
    "TIMEOUT",
    "TRANSPORTS",
    "UNLOADS",
    "RequestMeter",
    "VersionMetrics",
    "VersionStatistics",
    "outcome_of",
]

#: Transports (indexes into ``TRANSPORTS``, the label values).
REST: Final = 0
GRPC: Final = 1
TRANSPORTS: Final = ("rest", "grpc")
#: Outcomes (indexes into ``OUTCOMES``).
SUCCESS: Final = 0
CLIENT_ERROR: Final = 1
REJECTED: Final = 2
TIMEOUT: Final = 3
FAILURE: Final = 4
OUTCOMES: Final = ("success", "client_error", "rejected", "timeout", "failure")
#: Traffic roles (indexes into ``ROLES``).
PRIMARY: Final = 0
CANARY: Final = 1
SHADOW: Final = 2
DIRECT: Final = 3
ROLES: Final = ("primary", "canary", "shadow", "direct")
SHADOW_RESULTS: Final = ("agree", "disagree", "error")
#: Lifecycle events (indexes into ``VersionMetrics.events``).
LOADS: Final = 0
LOAD_FAILURES: Final = 1
UNLOADS: Final = 2
EVICTIONS: Final = 3

#: The outcome of each error code: 4xx are the client's (rejections aside), a refusal
#: to take work now (503, 429) is ``rejected``, and what the server or model got wrong
#: is ``failure``. tests/unit/serving/test_metrics_outcomes.py holds it to ``CODES``.
OUTCOME_OF_CODE: Final[dict[str, int]] = {
    errors.MaasError.code: FAILURE,
    errors.InvalidInputError.code: CLIENT_ERROR,
    errors.InvalidArtifactError.code: CLIENT_ERROR,
    errors.MethodNotAllowedError.code: CLIENT_ERROR,
    errors.UnsupportedMediaTypeError.code: CLIENT_ERROR,
    errors.UnauthenticatedError.code: CLIENT_ERROR,
    errors.ForbiddenError.code: CLIENT_ERROR,
    errors.NotFoundError.code: CLIENT_ERROR,
    errors.ConflictError.code: CLIENT_ERROR,
    errors.GateFailedError.code: CLIENT_ERROR,
    errors.NotServableError.code: CLIENT_ERROR,
    errors.RegistryMismatchError.code: CLIENT_ERROR,
    errors.PayloadTooLargeError.code: CLIENT_ERROR,
    errors.RateLimitedError.code: REJECTED,
    errors.UnavailableError.code: REJECTED,
    errors.QueueFullError.code: REJECTED,
    errors.DeadlineExceededError.code: TIMEOUT,
    errors.ModelError.code: FAILURE,
    errors.WorkerCrashedError.code: FAILURE,
    errors.IntegrityError.code: FAILURE,
    errors.InsufficientStorageError.code: FAILURE,
}


def outcome_of(exc: BaseException) -> int:
    """The outcome a request that raised ``exc`` counts as. A cancelled request (its
    client went away) is ``client_error``, as nginx's 499; anything unexpected ``failure``."""
    if isinstance(exc, errors.MaasError):
        return OUTCOME_OF_CODE.get(exc.code, FAILURE)
    if isinstance(exc, asyncio.CancelledError):
        return CLIENT_ERROR
    return FAILURE


class VersionMetrics:
    """The Prometheus series of one version (``serving/metrics.py`` makes families of them)."""

    __slots__ = (
        "batch_size",
        "compute",
        "durations",
        "events",
        "queue",
        "requests",
        "routed",
        "shadow",
    )

    def __init__(self) -> None:
        #: Requests by ``transport * len(OUTCOMES) + outcome``.
        self.requests = [0] * (len(TRANSPORTS) * len(OUTCOMES))
        #: Whole-request seconds per transport.
        self.durations = tuple(Histogram(LATENCY_BUCKETS_S) for _ in TRANSPORTS)
        self.queue = Histogram(LATENCY_BUCKETS_S)
        self.compute = Histogram(LATENCY_BUCKETS_S)
        self.batch_size = Histogram(BATCH_SIZE_BUCKETS)
        #: Requests by traffic role (``ROLES``); shadow: copies sent to this version.
        self.routed = [0] * len(ROLES)
        #: Shadow copies compared with the primary's answer, by ``SHADOW_RESULTS``.
        self.shadow = [0] * len(SHADOW_RESULTS)
        #: Loads, load failures, unloads, evictions.
        self.events = [0, 0, 0, 0]

    def record_batch(self, rows: int, queue_s: float, compute_s: float) -> None:
        self.queue.observe(queue_s)
        self.compute.observe(compute_s)
        self.batch_size.observe(rows)


class RequestMeter:
    """What the transports record per request: the outcome and duration into the routed
    version's ``VersionMetrics``, or, before a version is known, ``unrouted`` counts.

    Example (a transport's handler)::

        started = time.perf_counter()
        ...  # route, decode, infer, encode
        meter.record(deployment.stats.metrics, REST, SUCCESS, time.perf_counter() - started)
    """

    __slots__ = ("unrouted",)

    def __init__(self) -> None:
        #: Requests that failed before a version was known, by transport and outcome.
        self.unrouted = [0] * (len(TRANSPORTS) * len(OUTCOMES))

    def record(
        self, metrics: VersionMetrics | None, transport: int, outcome: int, seconds: float
    ) -> None:
        if metrics is None:
            self.unrouted[transport * 5 + outcome] += 1  # 5: len(OUTCOMES)
            return
        metrics.requests[transport * 5 + outcome] += 1
        metrics.durations[transport].observe(seconds)


@dataclass(slots=True)
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass(slots=True)
class VersionStatistics:
    name: str
    version: str
    inference_count: int = 0  # rows inferred
    execution_count: int = 0  # batches run
    last_inference_ms: int = 0
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    batches: dict[int, _Duration] = field(default_factory=dict)
    #: The Prometheus series (None: metrics are off); shared with the version's later loads.
    metrics: VersionMetrics | None = None

    def record_request(self, ok: bool, seconds: float) -> None:
        (self.success if ok else self.fail).add(seconds)
        self.last_inference_ms = int(time.time() * 1000)

    def record_batch(self, rows: int, queue_s: float, compute_s: float) -> None:
        """The scheduler's hook: one batch of ``rows`` waited ``queue_s`` and ran ``compute_s``."""
        self.inference_count += rows
        self.execution_count += 1
        self.queue.add(queue_s)
        self.compute_infer.add(compute_s)
        self.batches.setdefault(rows, _Duration()).add(compute_s)
        if self.metrics is not None:
            self.metrics.record_batch(rows, queue_s, compute_s)

    def to_dict(self) -> dict[str, Any]:
        """Triton's shape. maas times a batch's compute as one span (``compute_infer``);
        input and output phases are counted once per batch with no time of their own,
        as Triton tools (perf_analyzer) require equal counts for the three phases."""

        def untimed(count: int) -> dict[str, int]:
            return {"count": count, "ns": 0}

        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.to_dict(),
                "fail": self.fail.to_dict(),
                "queue": self.queue.to_dict(),
                "compute_input": untimed(self.compute_infer.count),
                "compute_infer": self.compute_infer.to_dict(),
                "compute_output": untimed(self.compute_infer.count),
            },
            "batch_stats": [
                {
                    "batch_size": rows,
                    "compute_input": untimed(d.count),
                    "compute_infer": d.to_dict(),
                    "compute_output": untimed(d.count),
                }
                for rows, d in sorted(self.batches.items())
            ],
        }
