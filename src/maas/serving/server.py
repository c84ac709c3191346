"""Run the server: uvicorn on the configured host and port, in one or several processes.

With ``workers > 1`` uvicorn starts that many processes sharing the REST socket; each
builds its own app (from the ``MAAS_*`` variables this process exports) and binds the
gRPC port too (gRPC sets SO_REUSEPORT, so the kernel spreads connections). Each process
holds its own copy of every model and its own batcher: more processes spread Python's
per-request work over more cores, fewer processes form bigger batches.

Both ports are secured (``ports.hold_ports``) before anything is built or announced:
a port another process holds is one error line, and only this server's own worker
processes share its ports.

uvicorn runs ``http_limits.LimitedHttpProtocol`` (header size and count, header, body and
write timeouts, a cap on connections) under ``shutdown.DrainingServer`` (SIGTERM: not
ready at once, serving on for ``MAAS_SHUTDOWN_GRACE_S``, then drained and exit 0).

With ``workers > 1`` this parent makes ``<home>/run/metrics-<pid>`` (``MAAS_METRICS_DIR``
of the workers), where each worker leaves its metrics for the one answering a scrape
(``serving/metrics.py``), and removes it at exit.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from maas.config import Settings
from maas.errors import UnavailableError
from maas.jobs.runner import LocalJobRunner
from maas.monitoring.alert_rules import load_rules
from maas.monitoring.snapshots import process_alive
from maas.registry.service import Registry
from maas.serving.access import exposure_problem, needs_a_key_to_start
from maas.serving.app import build_app
from maas.serving.http_limits import HttpLimits, LimitedConfig
from maas.serving.ports import hold_ports
from maas.serving.shutdown import DrainingServer, DrainingWorkers

__all__ = ["app_from_environment", "serve", "server_config"]

log = logging.getLogger(__name__)

# Per-request work uvicorn can skip: an access log line, X-Forwarded-* rewriting (maas
# binds loopback by default; put a proxy's own options in front if you need them), and
# the Server header. Measured: about 10% of the event loop's time on the tiny MLP.
_UVICORN_OPTIONS: dict[str, Any] = {
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
}


# Descriptors a process needs beside its REST connections: models, the registry, gRPC
# connections, worker pipes, logs.
_SPARE_DESCRIPTORS = 1024


def app_from_environment() -> ASGIApp:
    """The app factory each worker process calls (settings from ``MAAS_*``)."""
    return build_app(Settings())


def server_config(app: ASGIApp | str, settings: Settings, **options: Any) -> LimitedConfig:
    """uvicorn's configuration for ``app`` under ``settings``' limits (``http_limits``),
    over TLS when ``settings`` name a certificate and key."""
    tls = settings.tls_files
    if tls is not None:
        options = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1]), **options}
    return LimitedConfig(
        app,
        HttpLimits.from_settings(settings),
        timeout_graceful_shutdown=settings.shutdown_drain_s,
        **(_UVICORN_OPTIONS | options),
    )


def _allow_descriptors(settings: Settings) -> None:
    """Raise this process's descriptor limit (up to the hard one) to what
    ``max_connections`` needs, so the cap, not EMFILE, is what refuses connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = settings.max_connections + _SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < wanted:
            log.warning(
                "only %d file descriptors may be open (hard limit): fewer than "
                "MAAS_MAX_CONNECTIONS=%d needs",
                raised,
                settings.max_connections,
            )


def _serve_workers(
    settings: Settings, registry: Registry | None, log_level: str, sock: socket.socket
) -> None:
    """Several server processes; this parent runs the jobs, so the concurrency holds once.

    uvicorn's own ``run(workers=N)`` would bind the REST port itself; its supervisor is
    handed the socket already held instead (what ``run`` does after binding)."""
    owned = registry is None
    registry = registry or Registry.from_settings(settings, upgrade=False)
    registry.upgrade()  # migrate once here, not racing in every worker
    runner = LocalJobRunner(registry.jobs, settings)
    metrics_dir = _metrics_dir(settings)
    update = {"job_concurrency": 0, "metrics_dir": metrics_dir}
    os.environ.update(settings.model_copy(update=update).as_environment())
    runner.start()
    try:
        config = server_config(
            "maas.serving.server:app_from_environment",
            settings,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=log_level,
        )
        DrainingWorkers(config, [sock], settings.shutdown_grace_s).run()
    finally:
        runner.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if owned:
            registry.close()


def _metrics_dir(settings: Settings) -> Path:
    """A fresh ``<home>/run/metrics-<pid>``, where the workers leave their metrics for each
    other (``monitoring.snapshots``); folders of servers gone without cleaning up go."""
    run = (settings.home / "run").absolute()
    run.mkdir(parents=True, exist_ok=True)
    for old in run.glob("metrics-*"):
        pid = old.name.removeprefix("metrics-")
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = run / f"metrics-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def _check_exposure(settings: Settings, registry: Registry | None) -> None:
    """Refuse, before a port is taken, to serve other machines without API keys (the
    registry is opened for it only where that depends on a key existing)."""
    if not needs_a_key_to_start(settings):
        return
    owned = registry is None
    registry = registry or Registry.from_settings(settings, upgrade=True)
    try:
        problem = exposure_problem(settings, len(registry.keys.list()))
    finally:
        if owned:
            registry.close()
    if problem is not None:
        raise UnavailableError(problem)


def serve(
    settings: Settings,
    registry: Registry | None = None,
    log_level: str = "info",
    *,
    before_start: Callable[[Settings], None] | None = None,
) -> None:
    """Serve every registered model until interrupted: Ctrl-C stops at once; SIGTERM
    drains first (``shutdown.DrainingServer``) and the call returns once it has.

    The ports are held first (UnavailableError naming a taken one, before anything is
    loaded); then ``before_start`` runs with the settings served (REST port 0 replaced by
    the one the kernel chose): to announce them, or to train a demo model first, knowing
    the server will be able to start. Then the app is built and served.
    """
    _check_exposure(settings, registry)
    if settings.alert_rules is not None:  # a bad rules file: one line, before the ports
        load_rules(settings.alert_rules)
    _allow_descriptors(settings)
    held = hold_ports(settings.host, settings.port, settings.grpc_port)
    try:
        settings = settings.model_copy(update={"port": held.port})
        if before_start is not None:
            before_start(settings)
        if settings.workers > 1:
            _serve_workers(settings, registry, log_level, held.rest)
            return
        app = build_app(settings, registry)
        config = server_config(
            app, settings, host=settings.host, port=settings.port, log_level=log_level
        )
        DrainingServer(config, settings.shutdown_grace_s).run(sockets=[held.rest])
    finally:
        held.close()
