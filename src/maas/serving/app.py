"""The composition root: the whole server object graph is wired here, and only here."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from maas import __version__
from maas.config import Settings
from maas.control import ControlPlane
from maas.control.access import KeyRing
from maas.errors import MaasError, UnavailableError
from maas.jobs.policy import SubmissionPolicy
from maas.jobs.runner import JobRunner, LocalJobRunner
from maas.protocol.json_codec import JsonLimits
from maas.registry.service import Registry
from maas.scheduling.workers import RestartPolicy, WorkerBudget
from maas.serving.access import Gatekeeper, exposure_problem, is_loopback, warn_if_open
from maas.serving.alerts import AlertService
from maas.serving.dataplane import DataPlane
from maas.serving.deployments import Deployments
from maas.serving.drift import DriftMonitor
from maas.serving.grpc import GrpcServer
from maas.serving.memory import keep_large_blocks_mapped
from maas.serving.metrics import ServerMetrics
from maas.serving.repository import ModelRepository
from maas.serving.residency import ResidencyLimits
from maas.serving.rest.access import RouteAccess, require_declared
from maas.serving.rest.alerts import alerts_router
from maas.serving.rest.aliases import aliases_router
from maas.serving.rest.audit import audit_router
from maas.serving.rest.browser import BrowserDefences, HeaderPolicy, default_allowed_hosts
from maas.serving.rest.context import ApiContext
from maas.serving.rest.deployments import deployments_router
from maas.serving.rest.drift import drift_router
from maas.serving.rest.errors import install_error_handlers
from maas.serving.rest.inference_lane import InferenceLane
from maas.serving.rest.jobs import jobs_router
from maas.serving.rest.keys import keys_router
from maas.serving.rest.metrics import metrics_router
from maas.serving.rest.models import models_router
from maas.serving.rest.openapi import install_openapi
from maas.serving.rest.traffic import traffic_router
from maas.serving.rest.v2 import v2_router
from maas.serving.statistics import RequestMeter
from maas.serving.warmup import ServerWarmup

__all__ = ["build_app"]

log = logging.getLogger(__name__)

_COLLECT_INTERVAL_S = 600.0


def build_app(
    settings: Settings, registry: Registry | None = None, runner: JobRunner | None = None
) -> InferenceLane:
    """Build the server. ``registry`` defaults to the one ``settings`` names (migrated);
    ``runner`` to a ``LocalJobRunner`` running ``settings.job_concurrency`` jobs at a time.

    The result is the inference lane (V2 infer, the hot path) in front of the FastAPI app
    (everything else: health, metadata, management API, OpenAPI).
    """
    owns_registry = registry is None
    registry = registry or Registry.from_settings(settings, upgrade=True, server=True)
    runner = runner or LocalJobRunner(registry.jobs, settings)
    keyring = KeyRing(
        registry.keys,
        always_required=settings.auth == "required" or not is_loopback(settings.host),
        disabled=settings.auth == "off",
    )
    keyring.refresh()
    problem = exposure_problem(settings, len(registry.keys.list()))
    if problem is not None:
        raise UnavailableError(problem)
    warn_if_open(settings)
    gatekeeper = Gatekeeper(keyring, registry.keys)
    limits = ResidencyLimits(settings.max_loaded_bytes, settings.max_loaded_versions)
    restart = RestartPolicy(
        settings.worker_restart_delay_s, give_up_after=settings.worker_max_crashes
    )
    workers = WorkerBudget(settings.max_worker_processes, restart)
    deployments = Deployments(registry, limits, workers, metrics=settings.metrics)
    warmup = ServerWarmup(deployments)
    control = ControlPlane.build(
        registry,
        warmup=warmup,
        job_policy=SubmissionPolicy.for_server(settings),
        on_job_queued=lambda job: runner.wake(),
        on_job_cancelled=lambda job: runner.wake(),
    )
    meter = RequestMeter() if settings.metrics else None
    drift = DriftMonitor(registry, deployments, window_rows=settings.drift_window_rows)
    dataplane = DataPlane(deployments, meter, drift)
    metrics = ServerMetrics(
        deployments, meter, registry.jobs, settings.metrics_dir, enabled=settings.metrics
    )
    metrics.add_source(drift.families)
    alerts = AlertService.from_settings(settings, metrics)  # a bad rules file: refused here
    repository = ModelRepository(control, deployments)
    grpc_server = GrpcServer(
        dataplane,
        repository,
        gatekeeper,
        settings.host,
        settings.grpc_port,
        settings.grpc_max_message_bytes,
        tls=settings.tls_files,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warmup.bind(asyncio.get_running_loop())
        keep_large_blocks_mapped()  # before any model loads: unloading gives memory back
        await deployments.sync(force=True)
        await asyncio.to_thread(runner.start)
        if settings.grpc_port:
            await grpc_server.start()
        refresher = asyncio.create_task(deployments.run_refresh_loop(settings.refresh_interval_s))
        key_refresher = asyncio.create_task(_refresh_keys(keyring, settings.refresh_interval_s))
        collector = asyncio.create_task(_collect_garbage(registry, _COLLECT_INTERVAL_S))
        publisher = asyncio.create_task(metrics.run())  # for the other workers' scrapes
        drift_scorer = asyncio.create_task(drift.run(settings.drift_interval_s))
        await alerts.start()
        # Everything loaded so far lives as long as the server: keep it out of the garbage
        # collector's full passes, which otherwise stall the event loop for tens of ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in (refresher, key_refresher, collector, publisher, drift_scorer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(runner.stop)
            await alerts.stop()
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
    access = RouteAccess(gatekeeper)
    api = ApiContext(
        control,
        deployments,
        access,
        settings.max_request_size_bytes,
        allow_code_artifacts=settings.allow_code_artifacts,
    )
    app.include_router(v2_router(dataplane, access))
    app.include_router(models_router(api))
    app.include_router(aliases_router(api))
    app.include_router(traffic_router(api))
    app.include_router(deployments_router(api, repository))
    app.include_router(audit_router(api))
    app.include_router(jobs_router(api))
    app.include_router(keys_router(api))
    app.include_router(drift_router(api, drift))
    app.include_router(alerts_router(api, alerts))
    app.include_router(metrics_router(metrics, access))
    require_declared(app)
    install_openapi(app)
    headers = HeaderPolicy(settings.allowed_hosts or default_allowed_hosts(settings.host))
    return InferenceLane(
        BrowserDefences(app, headers),
        dataplane,
        gatekeeper,
        headers,
        settings.max_request_size_bytes,
        JsonLimits(settings.json_max_depth, settings.json_max_keys, settings.json_max_elements),
    )


async def _collect_garbage(registry: Registry, interval_s: float) -> None:
    """At start, then every ``interval_s``: what killed uploads left (temporary files,
    orphaned artifacts) goes (``Registry.collect_garbage``)."""
    while True:
        try:
            await asyncio.to_thread(registry.collect_garbage)
        except Exception:  # the database is away, say: try again next time
            log.exception("could not collect what killed uploads left")
        await asyncio.sleep(interval_s)


async def _refresh_keys(keyring: KeyRing, interval_s: float) -> None:
    """Re-read the keys every ``interval_s``: one revoked elsewhere stops working here."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(keyring.refresh)
        except MaasError as exc:  # the database is away: keep the keys known so far
            log.warning("could not re-read the API keys: %s", exc.message)
