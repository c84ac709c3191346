"""KServe V2 REST endpoints: each parses, calls the data plane, encodes.

Inference itself (``POST .../infer``) is served by ``inference_lane.InferenceLane`` in
front of this router, without the framework's per-request work.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from maas.control.access import Reach, Scope
from maas.protocol.json_codec import encode_json
from maas.serving.dataplane import DataPlane
from maas.serving.rest.access import RouteAccess

__all__ = ["v2_router"]

_JSON = "application/json"
_BINARY = "application/octet-stream"
#: The binary tensor extension's header: the length of the JSON part of a body.
_HEADER_LENGTH = "Inference-Header-Content-Length"


def _json(value: object, status: int = 200) -> Response:
    return Response(encode_json(value), status_code=status, media_type=_JSON)


def v2_router(dataplane: DataPlane, access: RouteAccess) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["inference (KServe V2)"])
    # What a client reads to infer (tritonclient, perf_analyzer): predict keys may too.
    client = access.allow(Scope.PREDICT, Scope.READ)

    @router.get("/health/live", summary="Server liveness", dependencies=access.open())
    async def live() -> Response:
        return _json({"live": dataplane.live()})

    @router.get(
        "/health/ready",
        summary="Server readiness",
        description="With details when a version failed to load or warm up (`failures`) "
        "and routes are held on their previous version because of it (`held`); 503 with "
        "`draining` once the server is stopping (SIGTERM), while it still serves.",
        dependencies=access.open(),
    )
    async def ready() -> Response:
        readiness = dataplane.readiness()
        return _json(readiness, 200 if readiness["ready"] else 503)

    @router.get(
        "",
        summary="Server metadata",
        dependencies=access.allow(Scope.PREDICT, Scope.READ, reach=Reach.NONE),
    )
    async def server_metadata() -> Response:
        return _json(dataplane.server_metadata())

    async def model_metadata(name: str, version: str | None) -> Response:
        return _json(await dataplane.model_metadata(name, version))

    async def model_ready(name: str, version: str | None) -> Response:
        is_ready, reason = await dataplane.model_ready(name, version)
        body: dict[str, object] = {"name": name, "ready": is_ready}
        if reason is not None:
            body["reason"] = reason
        return _json(body, 200 if is_ready else 503)

    # Before /models/{name}, which would otherwise take "stats" for a model name.
    @router.get(
        "/models/stats",
        summary="Statistics of every loaded version",
        dependencies=access.allow(Scope.PREDICT, Scope.READ, reach=Reach.EVERY),
    )
    async def stats_all() -> Response:
        return _json(await dataplane.model_statistics(None, None))

    @router.get("/models/{name}", summary="Model metadata (default version)", dependencies=client)
    async def metadata_default(name: str) -> Response:
        return await model_metadata(name, None)

    @router.get("/models/{name}/versions/{version}", summary="Model metadata", dependencies=client)
    async def metadata_version(name: str, version: str) -> Response:
        return await model_metadata(name, version)

    @router.get(
        "/models/{name}/ready", summary="Model readiness (default version)", dependencies=client
    )
    async def ready_default(name: str) -> Response:
        return await model_ready(name, None)

    @router.get(
        "/models/{name}/versions/{version}/ready", summary="Model readiness", dependencies=client
    )
    async def ready_version(name: str, version: str) -> Response:
        return await model_ready(name, version)

    @router.get(
        "/models/{name}/config",
        summary="Triton-shaped model config (default version)",
        dependencies=client,
    )
    async def config_default(name: str) -> Response:
        return _json(await dataplane.model_config(name, None))

    @router.get(
        "/models/{name}/versions/{version}/config",
        summary="Triton-shaped model config",
        dependencies=client,
    )
    async def config_version(name: str, version: str) -> Response:
        return _json(await dataplane.model_config(name, version))

    @router.get(
        "/models/{name}/stats",
        summary="Statistics of a model's loaded versions",
        dependencies=client,
    )
    async def stats_model(name: str) -> Response:
        return _json(await dataplane.model_statistics(name, None))

    @router.get(
        "/models/{name}/versions/{version}/stats",
        summary="Statistics of one version",
        dependencies=client,
    )
    async def stats_version(name: str, version: str) -> Response:
        return _json(await dataplane.model_statistics(name, version))

    return router
