"""The inference behaviour of the server, shared by every transport (STYLE habit 1).

Handlers decode bytes into ``maas.protocol`` types, call one method here, and encode
what it returns; nothing here knows about HTTP or gRPC.
"""

from __future__ import annotations

import asyncio
from typing import Any

from maas import __version__
from maas.protocol.types import InferRequest, InferResponse, Tensor
from maas.serving.deployments import Deployments

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
        signature = deployment.runtime.signature
        return {
            "name": name,
            "versions": [str(v) for v in self._deployments.versions(name)],
            "platform": deployment.runtime.platform,
            "inputs": [t.to_dict() for t in signature.inputs],
            "outputs": [t.to_dict() for t in signature.outputs],
        }

    async def infer(self, name: str, version: str | None, request: InferRequest) -> InferResponse:
        deployment = await self._deployments.get(name, version)
        feed = deployment.validator.feed(request.inputs)
        deployment.validator.check_outputs(request.outputs)
        results = await asyncio.to_thread(deployment.runtime.predict, feed)
        wanted = [o.name for o in request.outputs] if request.outputs else list(results)
        datatypes = {t.name: t.datatype for t in deployment.runtime.signature.outputs}
        return InferResponse(
            model_name=name,
            model_version=str(deployment.number),
            outputs=[Tensor(n, datatypes[n], results[n]) for n in wanted],
            id=request.id,
        )
