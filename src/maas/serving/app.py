"""The composition root: the whole server object graph is wired here, and only here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp

from maas import __version__
from maas.config import Settings
from maas.jobs.policy import SubmissionPolicy
from maas.jobs.runner import JobRunner, LocalJobRunner
from maas.registry.service import Registry
from maas.serving.dataplane import DataPlane
from maas.serving.deployments import Deployments
from maas.serving.grpc import GrpcServer
from maas.serving.rest.errors import install_error_handlers
from maas.serving.rest.inference_lane import InferenceLane
from maas.serving.rest.jobs import jobs_router
from maas.serving.rest.management import management_router
from maas.serving.rest.v2 import v2_router

__all__ = ["build_app"]


def build_app(
    settings: Settings, registry: Registry | None = None, runner: JobRunner | None = None
) -> ASGIApp:
    """Build the server. ``registry`` defaults to the one ``settings`` names (migrated);
    ``runner`` to a ``LocalJobRunner`` running ``settings.job_concurrency`` jobs at a time.

    The result is the inference lane (V2 infer, the hot path) in front of the FastAPI app
    (everything else: health, metadata, management API, OpenAPI).
    """
    owns_registry = registry is None
    registry = registry or Registry.from_settings(settings, upgrade=True)
    runner = runner or LocalJobRunner(registry.jobs, settings)
    deployments = Deployments(registry)
    dataplane = DataPlane(deployments)
    grpc_server = GrpcServer(
        dataplane, settings.host, settings.grpc_port, settings.grpc_max_message_bytes
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await deployments.sync(force=True)
        await asyncio.to_thread(runner.start)
        if settings.grpc_port:
            await grpc_server.start()
        refresher = asyncio.create_task(deployments.run_refresh_loop(settings.refresh_interval_s))
        # Everything loaded so far lives as long as the server: keep it out of the garbage
        # collector's full passes, which otherwise stall the event loop for tens of ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await asyncio.to_thread(runner.stop)
            await grpc_server.stop(grace_s=5.0)
            await deployments.close()
            if owns_registry:
                registry.close()

    app = FastAPI(
        title="maas",
        version=__version__,
        summary="Model-as-a-Service: KServe V2 inference, model management, training jobs.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(v2_router(dataplane, settings.max_request_size_bytes))
    app.include_router(management_router(registry, deployments, settings.max_request_size_bytes))
    app.include_router(jobs_router(registry, runner, SubmissionPolicy.for_server(settings)))
    return InferenceLane(app, dataplane, settings.max_request_size_bytes)
