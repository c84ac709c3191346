"""One deployed version: its config, signature, validator, statistics and scheduler.

Everything a request needs is resolved here once, at load time, so the hot path only
validates, submits to the scheduler and encodes. ``deploy`` does not hand a version out
before it has answered its warm-up request within its signature (``protocol.warmup``):
a version that fails to load or to warm up is closed again and refused with
``NotServableError``, so it never answers a caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np

from maas.control.model_config import ModelConfig, parse_model_config
from maas.control.warmup import not_servable
from maas.errors import MaasError, describe
from maas.protocol.signature import Signature
from maas.protocol.validation import OutputChecker, SignatureValidator
from maas.protocol.warmup import check_warmup_outputs, warmup_feed
from maas.registry.entities import ModelVersion
from maas.registry.service import Registry
from maas.runtimes.discovery import runtime_class
from maas.scheduling.pool import InstancePool, build_pool
from maas.scheduling.scheduler import VersionScheduler
from maas.scheduling.workers import ProcessInstancePool, WorkerBudget
from maas.serving.statistics import VersionMetrics, VersionStatistics

__all__ = ["Deployment", "deploy"]

log = logging.getLogger(__name__)

#: How long a retiring version may take to finish what it accepted before it is closed.
DRAIN_TIMEOUT_S: Final = 30.0


class Deployment:
    """A loaded, warm version. ``last_used_s`` (monotonic) is what eviction orders by."""

    __slots__ = (
        "checker",
        "config",
        "config_revision",
        "datatypes",
        "last_used_s",
        "loaded_at_s",
        "platform",
        "pool",
        "resident_bytes",
        "scheduler",
        "signature",
        "stats",
        "validator",
        "version",
        "version_text",
    )

    def __init__(
        self,
        version: ModelVersion,
        config: ModelConfig,
        config_revision: int,
        signature: Signature,
        platform: str,
        pool: InstancePool,
        scheduler: VersionScheduler,
        stats: VersionStatistics,
        resident_bytes: int,
    ) -> None:
        self.version = version
        self.config = config
        self.config_revision = config_revision
        self.signature = signature
        self.platform = platform
        self.pool = pool
        self.scheduler = scheduler
        self.stats = stats
        self.validator = SignatureValidator(signature)
        self.checker = OutputChecker(signature)
        #: Output name -> datatype, and the version as V2 responses name it: per request.
        self.datatypes = {t.name: t.datatype for t in signature.outputs}
        self.version_text = str(version.version)
        self.resident_bytes = resident_bytes
        self.loaded_at_s = self.last_used_s = time.monotonic()

    @property
    def name(self) -> str:
        return self.version.model_name

    @property
    def number(self) -> int:
        return self.version.version

    @property
    def key(self) -> tuple[str, int]:
        return self.version.model_name, self.version.version

    async def retire(self) -> None:
        """Let what was accepted finish (bounded by ``DRAIN_TIMEOUT_S``), then stop the
        scheduler and its instances (worker processes exit with it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.scheduler.drain(), DRAIN_TIMEOUT_S)
        await self.scheduler.close()


def _resident_bytes(pool: InstancePool, artifact_bytes: int, count: int) -> int:
    """What the version holds in memory, as the bound counts it: its worker processes'
    resident sets, or for in-process instances the artifact's size once per instance
    (the weights each session keeps)."""
    if isinstance(pool, ProcessInstancePool):
        return sum(_rss_bytes(pid) for pid in pool.pids if pid is not None)
    return artifact_bytes * count


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


async def deploy(
    registry: Registry,
    version: ModelVersion,
    config: ModelConfig | None = None,
    budget: WorkerBudget | None = None,
    metrics: VersionMetrics | None = None,
) -> Deployment:
    """Load ``version`` with its newest config (or ``config``, a trial of one not yet
    recorded) and warm it up; ``NotServableError`` (and nothing left running) when it does
    not load or does not answer within its signature. Worker processes count against
    ``budget``, the server's bound; its batches are recorded in ``metrics`` (if any)."""
    revision = None
    if config is None:
        revision = await asyncio.to_thread(registry.get_config, version.model_name, version.version)
        config = parse_model_config(revision.config if revision else None)
    signature = config.signature_override() or version.signature
    try:
        path = await asyncio.to_thread(registry.artifact_path, version)
        runtime_cls = runtime_class(version.artifact_format)
        pool = await asyncio.to_thread(
            build_pool,
            version.artifact_format,
            path,
            runtime_cls,
            config.instance_policy(),
            signature,
            _probes(signature, config),
            budget,
        )
    except MaasError as exc:
        raise not_servable(version, f"it does not load: {exc.message}") from None
    phase = "load"
    try:
        if isinstance(pool, ProcessInstancePool):
            await pool.ready()
        phase = "warm-up"
        if config.warmup.enabled:
            await _warm_up(pool, signature, config)
    except BaseException as exc:
        await pool.close()
        if not isinstance(exc, Exception):
            raise
        if phase == "load":
            said = exc.message if isinstance(exc, MaasError) else describe(exc)
            raise not_servable(version, f"it does not load: {said}") from None
        if isinstance(exc, MaasError):
            raise not_servable(version, exc.message) from None
        raise not_servable(version, f"its warm-up request raised {describe(exc)}") from None
    stats = VersionStatistics(version.model_name, str(version.version), metrics=metrics)
    scheduler = VersionScheduler(
        pool,
        config.batching_policy(),
        signature.batchable,
        on_batch=stats.record_batch,
        check=OutputChecker(signature).check,
    )
    return Deployment(
        version=version,
        config=config,
        config_revision=revision.revision if revision else 0,
        signature=signature,
        platform=runtime_cls.platform,
        pool=pool,
        scheduler=scheduler,
        stats=stats,
        resident_bytes=_resident_bytes(pool, version.size_bytes, config.instances.count),
    )


def _probes(signature: Signature, config: ModelConfig) -> Iterator[dict[str, np.ndarray]]:
    """The warm-up request, then it repeated up to ``max_batch_size`` rows (for a version
    that batches): what the pool times to choose its threads, built only when asked for
    (a slow model stops at the first). Nothing without warm-up."""
    if not config.warmup.enabled:
        return
    try:
        feed = warmup_feed(signature, config.warmup.shapes)
    except MaasError:
        return  # the warm-up itself reports it
    yield feed
    rows = next(iter(feed.values())).shape[0] if feed and signature.batchable else 0
    times = config.batching.max_batch_size // rows if rows else 1
    if times > 1:
        yield {name: np.concatenate([array] * times) for name, array in feed.items()}


async def _warm_up(pool: InstancePool, signature: Signature, config: ModelConfig) -> None:
    feed = warmup_feed(signature, config.warmup.shapes)
    outputs = await pool.run(feed)
    check_warmup_outputs(signature, feed, outputs)
