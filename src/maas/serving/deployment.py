"""One deployed version: its config, signature, validator, statistics and scheduler.

Everything a request needs is resolved here once, at load time, so the hot path only
validates, submits to the scheduler and encodes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from maas.protocol.signature import Signature
from maas.protocol.validation import SignatureValidator
from maas.registry.entities import ModelVersion
from maas.registry.service import Registry
from maas.runtimes.discovery import runtime_class
from maas.scheduling.pool import build_pool
from maas.scheduling.scheduler import VersionScheduler
from maas.scheduling.workers import ProcessInstancePool
from maas.serving.model_config import ModelConfig, parse_model_config
from maas.serving.statistics import VersionStatistics

__all__ = ["Deployment", "deploy"]

_DRAIN_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Deployment:
    version: ModelVersion
    config: ModelConfig
    config_revision: int
    signature: Signature
    platform: str
    validator: SignatureValidator
    stats: VersionStatistics
    scheduler: VersionScheduler

    @property
    def name(self) -> str:
        return self.version.model_name

    @property
    def number(self) -> int:
        return self.version.version

    async def retire(self) -> None:
        """Let queued requests finish (bounded), then stop the scheduler and its instances."""
        deadline = time.monotonic() + _DRAIN_TIMEOUT_S
        while self.scheduler.queue_length and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.scheduler.close()


async def deploy(registry: Registry, version: ModelVersion) -> Deployment:
    """Load ``version`` with its newest config: instances, batcher, validator."""
    revision = await asyncio.to_thread(registry.get_config, version.model_name, version.version)
    config = parse_model_config(revision.config if revision else None)
    path = await asyncio.to_thread(registry.artifact_path, version)
    signature = config.signature_override() or version.signature
    runtime_cls = runtime_class(version.artifact_format)
    pool = await asyncio.to_thread(
        build_pool,
        version.artifact_format,
        path,
        runtime_cls,
        config.instance_policy(),
        signature,
    )
    if isinstance(pool, ProcessInstancePool):
        try:
            await pool.ready()
        except BaseException:
            await pool.close()
            raise
    stats = VersionStatistics(version.model_name, str(version.version))
    scheduler = VersionScheduler(
        pool, config.batching_policy(), signature.batchable, on_batch=stats.record_batch
    )
    return Deployment(
        version=version,
        config=config,
        config_revision=revision.revision if revision else 0,
        signature=signature,
        platform=runtime_cls.platform,
        validator=SignatureValidator(signature),
        stats=stats,
        scheduler=scheduler,
    )
