"""Run the server process: uvicorn on the configured host and port."""

from __future__ import annotations

import uvicorn

from maas.config import Settings
from maas.registry.service import Registry
from maas.serving.app import build_app

__all__ = ["serve"]


def serve(settings: Settings, registry: Registry | None = None, log_level: str = "info") -> None:
    """Serve every registered model until interrupted (Ctrl-C or SIGTERM)."""
    app = build_app(settings, registry)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level, access_log=False
    )
    uvicorn.Server(config).run()
