"""The inference behaviour of the server, shared by every transport (STYLE habit 1).

Handlers decode bytes into ``maas.protocol`` types, call one method here, and encode
what it returns; nothing here knows about HTTP or gRPC.
"""

from __future__ import annotations

import time
from typing import Any

from maas import __version__
from maas.errors import InvalidInputError
from maas.protocol.types import InferRequest, InferResponse, Tensor
from maas.serving.deployment import Deployment
from maas.serving.deployments import Deployments
from maas.serving.model_config import triton_config

__all__ = ["DataPlane"]

# V2 extensions this server implements, reported by server metadata.
_EXTENSIONS: list[str] = []


class DataPlane:
    def __init__(self, deployments: Deployments) -> None:
        self._deployments = deployments

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._deployments.synced

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "maas", "version": __version__, "extensions": _EXTENSIONS}

    async def model_ready(self, name: str, version: str | None) -> bool:
        if self._deployments.is_ready(name, version):
            return True
        await self._deployments.get(name, version)  # raises NotFoundError for unknown names
        return self._deployments.is_ready(name, version)

    async def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        deployment = await self._deployments.get(name, version)
        signature = deployment.signature
        return {
            "name": name,
            "versions": [str(v) for v in self._deployments.versions(name)],
            "platform": deployment.platform,
            "inputs": [t.to_dict() for t in signature.inputs],
            "outputs": [t.to_dict() for t in signature.outputs],
        }

    async def model_config(self, name: str, version: str | None) -> dict[str, Any]:
        """The Triton-shaped model config that perf_analyzer and Triton tools read."""
        d = await self._deployments.get(name, version)
        return triton_config(name, d.platform, d.signature, d.config, d.signature.batchable)

    async def model_statistics(self, name: str | None, version: str | None) -> dict[str, Any]:
        """Triton-shaped statistics of one version, of every loaded version of a model, or all."""
        if name and version:
            deployments = [await self._deployments.get(name, version)]
        else:
            if name:
                await self._deployments.get(name, None)  # NotFoundError for unknown models
            deployments = self._deployments.loaded(name or None)
        return {"model_stats": [d.stats.to_dict() for d in deployments]}

    async def infer(self, name: str, version: str | None, request: InferRequest) -> InferResponse:
        deployment = await self._deployments.get(name, version)
        started = time.perf_counter()
        try:
            response = await self._infer(deployment, request)
        except BaseException:
            deployment.stats.record_request(False, time.perf_counter() - started)
            raise
        deployment.stats.record_request(True, time.perf_counter() - started)
        return response

    async def _infer(self, deployment: Deployment, request: InferRequest) -> InferResponse:
        feed = deployment.validator.feed(request.inputs)
        deployment.validator.check_outputs(request.outputs)
        results = await deployment.scheduler.submit(feed, timeout_s=_timeout_s(request))
        name = deployment.name
        wanted = [o.name for o in request.outputs] if request.outputs else list(results)
        datatypes = {t.name: t.datatype for t in deployment.signature.outputs}
        return InferResponse(
            model_name=name,
            model_version=str(deployment.number),
            outputs=[Tensor(n, datatypes[n], results[n]) for n in wanted],
            id=request.id,
        )


def _timeout_s(request: InferRequest) -> float | None:
    """The V2 ``timeout`` request parameter, in microseconds as Triton and tritonclient use it."""
    timeout_us = request.parameters.get("timeout")
    if timeout_us is None:
        return None
    if isinstance(timeout_us, bool) or not isinstance(timeout_us, int | float) or timeout_us <= 0:
        raise InvalidInputError("parameter 'timeout' must be a positive number of microseconds")
    return float(timeout_us) / 1e6
