"""``/api/models``: models, versions, uploads, archiving, artifacts, configs, the gate."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse

from maas.control.access import Reach, Scope
from maas.errors import InvalidInputError
from maas.registry.idempotency import KEY_HEADER
from maas.serving.rest.body import json_body, json_object, read_body
from maas.serving.rest.context import ApiContext, actor
from maas.serving.rest.schemas import (
    ArchiveIn,
    AuditOut,
    ConfigOut,
    ErrorOut,
    GateIn,
    ModelOut,
    VersionOut,
)

__all__ = ["models_router"]

_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _config_header(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        document = json.loads(value)
    except ValueError as exc:
        raise InvalidInputError(f"X-Maas-Config is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInputError("X-Maas-Config must be a JSON object")
    return document


def models_router(api: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/models", tags=["models"])
    models = api.control.models
    read, deploy = api.access.allow(Scope.READ), api.access.allow(Scope.DEPLOY)

    @router.get(
        "", summary="List models", dependencies=api.access.allow(Scope.READ, reach=Reach.EVERY)
    )
    async def list_models() -> list[ModelOut]:
        found = await api.call(models.list_models)
        return [ModelOut.model_validate(m.to_dict()) for m in found]

    @router.get("/{name}", summary="Show a model, its versions and aliases", dependencies=read)
    async def show_model(name: str) -> ModelOut:
        return ModelOut.model_validate((await api.call(models.get_model, name)).to_dict())

    @router.get("/{name}/versions", summary="List a model's versions", dependencies=read)
    async def list_versions(
        name: str,
        archived: Annotated[bool, Query(description="Include archived versions.")] = False,
    ) -> list[VersionOut]:
        found = await api.call(models.list_versions, name, include_archived=archived)
        return [VersionOut.model_validate(v.to_dict()) for v in found]

    @router.get(
        "/{name}/versions/{ref}",
        summary="Show one version (by number or alias): signature, metrics, lineage",
        dependencies=read,
    )
    async def show_version(name: str, ref: str) -> VersionOut:
        return VersionOut.model_validate((await api.call(models.get_version, name, ref)).to_dict())

    @router.post(
        "/{name}/versions",
        status_code=201,
        summary="Upload a model file as a new version",
        description=(
            "The request body is the raw artifact (`curl -H 'Content-Type: "
            "application/octet-stream' --data-binary @model.onnx`; a form's type is refused). "
            "It is loaded in its runtime before anything is stored; a file that does not "
            "load, or a pickle, is refused with 400 and nothing is registered.\n\n"
            "Retries are safe: with an `Idempotency-Key` header (any 1-255 visible ASCII "
            "characters; the SDK sends a uuid4 per call), the same key for the same model "
            "within 24 hours answers **200** with the version the first request made, even "
            "from another server sharing the registry; the same key with other bytes or "
            "options is 409 `conflict`. Without a key, the same bytes with the same format, "
            "config and description uploaded to the same model within **10 minutes** also "
            "answer 200 with the version they made (still in service) instead of adding a "
            "duplicate; send a new key to register them again on purpose. A new version "
            "answers 201. A full disk is 507 `insufficient_storage`, nothing registered."
        ),
        responses={
            200: {"model": VersionOut, "description": "A retry: the version made before"},
            507: {
                "model": ErrorOut,
                "description": "No space left to keep it (code insufficient_storage)",
            },
        },
        openapi_extra=_UPLOAD_BODY,
        dependencies=deploy,
    )
    async def upload(
        request: Request,
        response: Response,
        name: str,
        artifact_format: Annotated[str, Query(alias="format")] = "onnx",
        description: str = "",
        config: Annotated[
            str | None,
            Header(
                alias="X-Maas-Config",
                description="The version's serving config as JSON (batching, instances, "
                "warmup, inputs/outputs: required for TorchScript).",
            ),
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias=KEY_HEADER,
                description="Makes a retry safe: the same key gives back the version the "
                "first request made (200) instead of a new one.",
            ),
        ] = None,
    ) -> VersionOut:
        document = _config_header(config)
        async with api.uploads:  # a flood of uploads waits here, unread, not in memory
            data = await read_body(request, api.max_upload_bytes)
            uploaded = await api.call(
                models.upload_retryable,
                name,
                data,
                idempotency_key=idempotency_key,
                actor=actor(request),
                artifact_format=artifact_format,
                description=description,
                config=document,
                may_carry_code=api.may_upload_code(request),
            )
        if uploaded.replayed:
            response.status_code = 200
        await api.changed()
        return VersionOut.model_validate(uploaded.version.to_dict())

    @router.post(
        "/{name}/versions/{ref}/archive",
        summary="Archive a version: no longer served or listed; its artifacts are collected",
        description="Refused (409) while an alias or the traffic policy names the version.",
        dependencies=deploy,
    )
    async def archive(request: Request, name: str, ref: str, body: ArchiveIn) -> VersionOut:
        version = await api.call(
            models.archive, name, ref, actor=actor(request), reason=body.reason
        )
        await api.changed()
        return VersionOut.model_validate(version.to_dict())

    @router.get(
        "/{name}/versions/{ref}/artifacts/{artifact_format}",
        summary="Download one of a version's artifacts (onnx, torchscript, ...)",
        response_class=FileResponse,
        responses={200: {"content": {"application/octet-stream": {}}}},
        dependencies=deploy,  # a model's bytes are its owner's: more than a record to read
    )
    async def download_artifact(name: str, ref: str, artifact_format: str) -> FileResponse:
        version, path = await api.call(models.artifact, name, ref, artifact_format)
        suffix = _SUFFIXES.get(artifact_format, f".{artifact_format}")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=f"{name}-{version.version}{suffix}",
        )

    @router.get(
        "/{name}/versions/{ref}/config",
        summary="A version's serving config (batching, instances, warm-up, signature overrides)",
        dependencies=read,
    )
    async def show_config(name: str, ref: str) -> ConfigOut:
        return ConfigOut.model_validate((await api.call(models.get_config, name, ref)).to_dict())

    @router.put(
        "/{name}/versions/{ref}/config",
        summary="Change a version's serving config (recorded as a new revision)",
        openapi_extra=json_body("ModelConfig"),
        dependencies=deploy,
    )
    async def set_config(request: Request, name: str, ref: str) -> ConfigOut:
        document = await json_object(request)
        result = await api.call(models.set_config, name, ref, document, actor=actor(request))
        await api.changed()
        return ConfigOut.model_validate(result.to_dict())

    @router.post(
        "/{name}/versions/{ref}/evaluations",
        status_code=201,
        summary="Record an evaluation of a version (maas evaluate) in the audit log",
        dependencies=deploy,
    )
    async def record_evaluation(request: Request, name: str, ref: str) -> AuditOut:
        details = await json_object(request)
        event = await api.call(models.record_evaluation, name, ref, details, actor=actor(request))
        return AuditOut.model_validate(event.to_dict())

    @router.get("/{name}/gate", summary="The model's validation gate rules", dependencies=read)
    async def show_gate(name: str) -> GateIn:
        return GateIn(rules=await api.call(models.get_gate, name))

    @router.put(
        "/{name}/gate",
        summary="Set the validation gate that versions must pass to become production",
        dependencies=deploy,
    )
    async def set_gate(request: Request, name: str, body: GateIn) -> GateIn:
        rules = await api.call(models.set_gate, name, body.rules, actor=actor(request))
        return GateIn(rules=rules)

    return router
