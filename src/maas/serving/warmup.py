"""The control plane's warm-up seam, as a server answers it: load the version into this
server's own deployments (and keep it there), so the route that moves next is instant."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final

from maas.control.model_config import ModelConfig
from maas.errors import UnavailableError
from maas.registry.entities import ModelVersion
from maas.serving.deployments import Deployments

__all__ = ["ServerWarmup"]

#: How long a management call waits for a version to load and warm up.
PREPARE_TIMEOUT_S: Final = 600.0


class ServerWarmup:
    """``Warmup.prepare`` for control-plane calls running in a worker thread of the server
    (``asyncio.to_thread``): the load itself runs on the server's event loop."""

    def __init__(self, deployments: Deployments) -> None:
        self._deployments = deployments
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the deployments live on (set when the server starts)."""
        self._loop = loop

    def prepare(self, version: ModelVersion, config: ModelConfig | None = None) -> None:
        if self._loop is None:
            raise UnavailableError("the server is not running yet")
        work: Coroutine[Any, Any, object] = (
            self._deployments.prepare(version.model_name, version.version)
            if config is None
            else self._deployments.try_config(version, config)
        )
        asyncio.run_coroutine_threadsafe(work, self._loop).result(PREPARE_TIMEOUT_S)
