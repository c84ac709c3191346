"""Run the server: uvicorn on the configured host and port, in one or several processes.

With ``workers > 1`` uvicorn starts that many processes sharing the REST socket; each
builds its own app (from the ``MAAS_*`` variables this process exports) and binds the
gRPC port too (gRPC sets SO_REUSEPORT, so the kernel spreads connections). Each process
holds its own copy of every model and its own batcher: more processes spread Python's
per-request work over more cores, fewer processes form bigger batches.

Both ports are secured (``ports.hold_ports``) before anything is built or announced:
a port another process holds is one error line, and only this server's own worker
processes share its ports.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from maas.config import Settings
from maas.errors import UnavailableError
from maas.jobs.runner import LocalJobRunner
from maas.registry.service import Registry
from maas.serving.access import exposure_problem, needs_a_key_to_start
from maas.serving.app import build_app
from maas.serving.ports import hold_ports

__all__ = ["app_from_environment", "serve"]

# Per-request work uvicorn can skip: an access log line, X-Forwarded-* rewriting (maas
# binds loopback by default; put a proxy's own options in front if you need them), and
# the Server header. Measured: about 10% of the event loop's time on the tiny MLP.
_UVICORN_OPTIONS: dict[str, Any] = {
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
}


def app_from_environment() -> ASGIApp:
    """The app factory each worker process calls (settings from ``MAAS_*``)."""
    return build_app(Settings())


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
    os.environ.update(settings.model_copy(update={"job_concurrency": 0}).as_environment())
    runner.start()
    try:
        config = uvicorn.Config(
            "maas.serving.server:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=log_level,
            **_UVICORN_OPTIONS,
        )
        Multiprocess(config, sockets=[sock]).run()
    finally:
        runner.stop()
        if owned:
            registry.close()


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
    """Serve every registered model until interrupted (Ctrl-C or SIGTERM).

    The ports are held first (UnavailableError naming a taken one, before anything is
    loaded); then ``before_start`` runs with the settings served (REST port 0 replaced by
    the one the kernel chose): to announce them, or to train a demo model first, knowing
    the server will be able to start. Then the app is built and served.
    """
    _check_exposure(settings, registry)
    held = hold_ports(settings.host, settings.port, settings.grpc_port)
    try:
        settings = settings.model_copy(update={"port": held.port})
        if before_start is not None:
            before_start(settings)
        if settings.workers > 1:
            _serve_workers(settings, registry, log_level, held.rest)
            return
        app = build_app(settings, registry)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level=log_level, **_UVICORN_OPTIONS
        )
        uvicorn.Server(config).run(sockets=[held.rest])
    finally:
        held.close()
