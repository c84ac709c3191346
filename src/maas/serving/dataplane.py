"""The inference behaviour of the server, shared by every transport (STYLE habit 1).

Handlers decode bytes into ``maas.protocol`` types, call one method here, and encode
what it returns; nothing here knows about HTTP or gRPC. A request is routed first
(``route``: the model must exist before its body is judged, as V2 clients expect),
then inferred (``infer``); a request on a model's default route may be copied to a
shadow version after its answer is ready.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from maas import __version__
from maas.errors import InvalidInputError, UnavailableError
from maas.protocol.types import InferRequest, InferResponse, Tensor
from maas.serving.deployment import Deployment
from maas.serving.deployments import Deployments
from maas.serving.drift import DriftMonitor
from maas.serving.shadow import ShadowMirror
from maas.serving.statistics import RequestMeter
from maas.serving.triton_config import triton_config

__all__ = ["DataPlane", "Route"]

#: What ``route`` returns: the deployment to run on, and the shadow to copy to (if any).
Route = tuple[Deployment, ShadowMirror | None]

# V2 extensions this server implements, reported by server metadata.
_EXTENSIONS: list[str] = [
    "binary_tensor_data",
    "model_configuration",
    "model_repository",
    "parameters",
    "statistics",
]


class DataPlane:
    def __init__(
        self,
        deployments: Deployments,
        meter: RequestMeter | None = None,
        drift: DriftMonitor | None = None,
    ) -> None:
        self._deployments = deployments
        self._draining = False
        #: Where a successful request's inputs go for drift scores (O(1); None: nowhere).
        self._drift_offer = drift.offer if drift is not None else _no_drift
        #: What the transports record each request into (None: metrics are off).
        self.meter = meter

    def live(self) -> bool:
        return True

    def drain(self) -> None:
        """Report not ready from now on (the server is stopping); inference goes on."""
        self._draining = True

    def ready(self) -> bool:
        return not self._draining and self._deployments.synced

    def readiness(self) -> dict[str, Any]:
        """Readiness with its details: versions that failed to load or warm up, routes
        held on their previous version because of them, and whether the server is
        stopping (``draining``)."""
        found: dict[str, Any] = {"ready": self.ready()}
        if self._draining:
            found["draining"] = True
        if failures := self._deployments.failures():
            found["failures"] = failures
        if held := self._deployments.holds():
            found["held"] = held
        return found

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "maas", "version": __version__, "extensions": _EXTENSIONS}

    async def model_ready(self, name: str, version: str | None) -> tuple[bool, str | None]:
        """Whether the version can answer now, loading it if nothing else stops it; with
        the reason when it cannot."""
        if self._deployments.is_ready(name, version):
            return True, None
        try:
            await self._deployments.get(name, version)  # NotFoundError for unknown names
        except UnavailableError as exc:
            return False, exc.message
        return self._deployments.is_ready(name, version), None

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
                self._deployments.versions(name)  # NotFoundError for unknown models
            deployments = self._deployments.loaded(name or None)
        return {"model_stats": [d.stats.to_dict() for d in deployments]}

    def routing_header(self, name: str) -> str | None:
        """The request header the model's traffic policy sticks on, if it has one."""
        return self._deployments.routing_header(name)

    async def route(self, name: str, version: str | None, key: bytes | None = None) -> Route:
        """Where a request goes; ``NotFoundError`` before its body is even read."""
        return await self._deployments.route(name, version, key)

    async def infer(self, route: Route, request: InferRequest) -> InferResponse:
        deployment, mirror = route
        started = time.perf_counter()
        try:
            feed = deployment.validator.feed(request.inputs)
            deployment.validator.check_outputs(request.outputs)
            results = await deployment.scheduler.submit(feed, timeout_s=_timeout_s(request))
        except BaseException:
            deployment.stats.record_request(False, time.perf_counter() - started)
            raise
        elapsed_s = time.perf_counter() - started
        deployment.stats.record_request(True, elapsed_s)
        if mirror is not None:
            mirror.offer(feed, results, elapsed_s)
        self._drift_offer(deployment, feed)
        wanted = [o.name for o in request.outputs] if request.outputs else list(results)
        datatypes = deployment.datatypes
        return InferResponse(
            model_name=deployment.name,
            model_version=deployment.version_text,
            outputs=[Tensor(n, datatypes[n], results[n]) for n in wanted],
            id=request.id,
        )


def _no_drift(deployment: Deployment, feed: Mapping[str, Any]) -> None:
    """No drift monitor: the inputs go nowhere."""


def _timeout_s(request: InferRequest) -> float | None:
    """The V2 ``timeout`` request parameter, in microseconds as Triton and tritonclient use it."""
    timeout_us = request.parameters.get("timeout")
    if timeout_us is None:
        return None
    if isinstance(timeout_us, bool) or not isinstance(timeout_us, int | float) or timeout_us <= 0:
        raise InvalidInputError("parameter 'timeout' must be a positive number of microseconds")
    return float(timeout_us) / 1e6
