"""KServe V2 REST endpoints: each parses, calls the data plane, encodes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from maas.errors import InvalidInputError
from maas.protocol.binary_codec import decode_request, encode_response
from maas.protocol.json_codec import encode_json
from maas.serving.dataplane import DataPlane
from maas.serving.rest.body import read_body

__all__ = ["v2_router"]

_JSON = "application/json"
_BINARY = "application/octet-stream"
#: The binary tensor extension's header: the length of the JSON part of a body.
_HEADER_LENGTH = "Inference-Header-Content-Length"


def _json(value: object, status: int = 200) -> Response:
    return Response(encode_json(value), status_code=status, media_type=_JSON)


def v2_router(dataplane: DataPlane, max_body_bytes: int) -> APIRouter:
    router = APIRouter(prefix="/v2", tags=["inference (KServe V2)"])

    @router.get("/health/live", summary="Server liveness")
    async def live() -> Response:
        return _json({"live": dataplane.live()})

    @router.get("/health/ready", summary="Server readiness")
    async def ready() -> Response:
        is_ready = dataplane.ready()
        return _json({"ready": is_ready}, 200 if is_ready else 503)

    @router.get("", summary="Server metadata")
    async def server_metadata() -> Response:
        return _json(dataplane.server_metadata())

    async def model_metadata(name: str, version: str | None) -> Response:
        return _json(await dataplane.model_metadata(name, version))

    async def model_ready(name: str, version: str | None) -> Response:
        is_ready = await dataplane.model_ready(name, version)
        return _json({"name": name, "ready": is_ready}, 200 if is_ready else 503)

    async def infer(request: Request, name: str, version: str | None) -> Response:
        encoding = request.headers.get("content-encoding", "identity")
        if encoding.strip().lower() != "identity":
            raise InvalidInputError(f"Content-Encoding {encoding!r} is not supported; send it raw")
        body = await read_body(request, max_body_bytes)
        decoded = decode_request(body, request.headers.get(_HEADER_LENGTH))
        encoded = encode_response(decoded, await dataplane.infer(name, version, decoded))
        if encoded.json_length is None:
            return Response(encoded.body, media_type=_JSON)
        headers = {_HEADER_LENGTH: str(encoded.json_length)}
        return Response(encoded.body, media_type=_BINARY, headers=headers)

    # Before /models/{name}, which would otherwise take "stats" for a model name.
    @router.get("/models/stats", summary="Statistics of every loaded version")
    async def stats_all() -> Response:
        return _json(await dataplane.model_statistics(None, None))

    @router.get("/models/{name}", summary="Model metadata (default version)")
    async def metadata_default(name: str) -> Response:
        return await model_metadata(name, None)

    @router.get("/models/{name}/versions/{version}", summary="Model metadata")
    async def metadata_version(name: str, version: str) -> Response:
        return await model_metadata(name, version)

    @router.get("/models/{name}/ready", summary="Model readiness (default version)")
    async def ready_default(name: str) -> Response:
        return await model_ready(name, None)

    @router.get("/models/{name}/versions/{version}/ready", summary="Model readiness")
    async def ready_version(name: str, version: str) -> Response:
        return await model_ready(name, version)

    @router.get("/models/{name}/config", summary="Triton-shaped model config (default version)")
    async def config_default(name: str) -> Response:
        return _json(await dataplane.model_config(name, None))

    @router.get("/models/{name}/versions/{version}/config", summary="Triton-shaped model config")
    async def config_version(name: str, version: str) -> Response:
        return _json(await dataplane.model_config(name, version))

    @router.get("/models/{name}/stats", summary="Statistics of a model's loaded versions")
    async def stats_model(name: str) -> Response:
        return _json(await dataplane.model_statistics(name, None))

    @router.get("/models/{name}/versions/{version}/stats", summary="Statistics of one version")
    async def stats_version(name: str, version: str) -> Response:
        return _json(await dataplane.model_statistics(name, version))

    @router.post("/models/{name}/infer", summary="Inference (default version)")
    async def infer_default(request: Request, name: str) -> Response:
        return await infer(request, name, None)

    @router.post("/models/{name}/versions/{version}/infer", summary="Inference")
    async def infer_version(request: Request, name: str, version: str) -> Response:
        return await infer(request, name, version)

    return router
