"""The management API (JSON under /api): models, versions, uploads, aliases, audit log."""

from __future__ import annotations

import asyncio
import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from maas.errors import InvalidInputError
from maas.registry.entities import Alias, ModelVersion
from maas.registry.service import Registry
from maas.serving.deployments import Deployments
from maas.serving.model_config import parse_model_config
from maas.serving.rest.body import read_body
from maas.serving.uploads import register_upload_bytes

__all__ = ["management_router"]


class TensorOut(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class SignatureOut(BaseModel):
    inputs: list[TensorOut]
    outputs: list[TensorOut]


class ArtifactOut(BaseModel):
    sha256: str
    size_bytes: int


class VersionOut(BaseModel):
    model: str
    version: int
    artifact_sha256: str
    format: str
    size_bytes: int
    artifacts: dict[str, ArtifactOut] = Field(
        description="Every artifact by format: the served one and extras such as torchscript."
    )
    signature: SignatureOut
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime


class AliasOut(BaseModel):
    model: str
    alias: str
    version: int
    updated_at: datetime


class ModelOut(BaseModel):
    name: str
    created_at: datetime
    description: str
    versions: list[int]
    aliases: dict[str, int]


class AliasIn(BaseModel):
    version: int = Field(ge=1, description="The version number the alias should point at.")
    force: bool = Field(False, description="Move production past a failing validation gate.")
    reason: str = Field("", description="Why the gate is forced; required with force.")


class GateIn(BaseModel):
    rules: list[dict[str, Any]] = Field(
        description='e.g. [{"metric": "accuracy", "min": 0.95}, '
        '{"metric": "accuracy", "max_drop_vs_production": 0.01}]; [] removes the gate.'
    )


class ConfigOut(BaseModel):
    model: str
    version: int
    revision: int = Field(description="0 when the version never had a config of its own.")
    config: dict[str, Any] = Field(description="The effective config, defaults filled in.")


class AuditOut(BaseModel):
    id: int
    at: datetime
    action: str
    model: str
    version: int | None
    actor: str
    details: dict[str, Any]


def _version_out(v: ModelVersion) -> VersionOut:
    return VersionOut.model_validate(v.to_dict())


def _alias_out(a: Alias) -> AliasOut:
    return AliasOut(model=a.model_name, alias=a.name, version=a.version, updated_at=a.updated_at)


_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


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


def management_router(
    registry: Registry, deployments: Deployments, max_upload_bytes: int
) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["management"])

    def model_out(name: str) -> ModelOut:
        model = registry.get_model(name)
        return ModelOut(
            name=model.name,
            created_at=model.created_at,
            description=model.description,
            versions=[v.version for v in registry.list_versions(name)],
            aliases={a.name: a.version for a in registry.list_aliases(name)},
        )

    @router.get("/models", summary="List models")
    async def list_models() -> list[ModelOut]:
        def read() -> list[ModelOut]:
            return [model_out(m.name) for m in registry.list_models()]

        return await asyncio.to_thread(read)

    @router.get("/models/{name}", summary="Show a model, its versions and aliases")
    async def show_model(name: str) -> ModelOut:
        return await asyncio.to_thread(model_out, name)

    @router.get("/models/{name}/versions", summary="List a model's versions")
    async def list_versions(name: str) -> list[VersionOut]:
        versions = await asyncio.to_thread(registry.list_versions, name)
        return [_version_out(v) for v in versions]

    @router.get(
        "/models/{name}/versions/{ref}",
        summary="Show one version (by number or alias): signature, metrics, lineage",
    )
    async def show_version(name: str, ref: str) -> VersionOut:
        return _version_out(await asyncio.to_thread(registry.resolve, name, ref))

    @router.post(
        "/models/{name}/versions",
        status_code=201,
        summary="Upload a model file as a new version",
        description=(
            "The request body is the raw artifact (`curl --data-binary @model.onnx`). "
            "It is loaded in its runtime before anything is stored; a file that does not "
            "load, or a pickle, is refused with 400 and nothing is registered."
        ),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def upload(
        request: Request,
        name: str,
        artifact_format: Annotated[str, Query(alias="format")] = "onnx",
        description: str = "",
        config: Annotated[
            str | None,
            Header(
                alias="X-Maas-Config",
                description="The version's serving config as JSON (batching, instances, "
                "inputs/outputs: required for TorchScript).",
            ),
        ] = None,
    ) -> VersionOut:
        document = _config_header(config)
        data = await read_body(request, max_upload_bytes)
        version = await asyncio.to_thread(
            register_upload_bytes,
            registry,
            name,
            data,
            artifact_format=artifact_format,
            actor="api",
            description=description,
            config=document,
        )
        await deployments.sync()
        return _version_out(version)

    @router.put("/models/{name}/aliases/{alias}", summary="Set or move an alias")
    async def set_alias(name: str, alias: str, body: AliasIn) -> AliasOut:
        result = await asyncio.to_thread(
            functools.partial(
                registry.set_alias,
                name,
                alias,
                body.version,
                actor="api",
                force=body.force,
                reason=body.reason,
            )
        )
        await deployments.sync()
        return _alias_out(result)

    @router.delete("/models/{name}/aliases/{alias}", status_code=204, summary="Remove an alias")
    async def delete_alias(name: str, alias: str) -> None:
        await asyncio.to_thread(registry.delete_alias, name, alias, actor="api")
        await deployments.sync()

    @router.get(
        "/models/{name}/versions/{ref}/artifacts/{artifact_format}",
        summary="Download one of a version's artifacts (onnx, torchscript, ...)",
        response_class=FileResponse,
        responses={
            200: {"content": {"application/octet-stream": {}}},
            404: {"description": "No such model, version or artifact format"},
        },
    )
    async def download_artifact(name: str, ref: str, artifact_format: str) -> FileResponse:
        def find() -> tuple[ModelVersion, Path]:
            version = registry.resolve(name, ref)
            return version, registry.artifact_path(version, artifact_format)

        version, path = await asyncio.to_thread(find)
        suffix = _SUFFIXES.get(artifact_format, f".{artifact_format}")
        return FileResponse(
            path,
            media_type="application/octet-stream",
            filename=f"{name}-{version.version}{suffix}",
        )

    def config_out(name: str, ref: str) -> ConfigOut:
        version = registry.resolve(name, ref)
        revision = registry.get_config(name, version.version)
        effective = parse_model_config(revision.config if revision else None)
        return ConfigOut(
            model=name,
            version=version.version,
            revision=revision.revision if revision else 0,
            config=effective.model_dump(),
        )

    @router.get(
        "/models/{name}/versions/{ref}/config",
        summary="A version's serving config (batching, instances, signature overrides)",
    )
    async def show_config(name: str, ref: str) -> ConfigOut:
        return await asyncio.to_thread(config_out, name, ref)

    @router.put(
        "/models/{name}/versions/{ref}/config",
        summary="Change a version's serving config (recorded as a new revision)",
    )
    async def set_config(name: str, ref: str, document: dict[str, Any]) -> ConfigOut:
        parse_model_config(document)  # refuse before recording: errors name the field

        def record() -> ConfigOut:
            version = registry.resolve(name, ref)
            registry.set_config(name, version.version, document, actor="api")
            return config_out(name, str(version.version))

        result = await asyncio.to_thread(record)
        await deployments.sync()
        return result

    @router.get("/models/{name}/gate", summary="The model's validation gate rules")
    async def show_gate(name: str) -> GateIn:
        return GateIn(rules=await asyncio.to_thread(registry.get_gate, name))

    @router.put(
        "/models/{name}/gate",
        summary="Set the validation gate that versions must pass to become production",
    )
    async def set_gate(name: str, body: GateIn) -> GateIn:
        rules = await asyncio.to_thread(
            functools.partial(registry.set_gate, name, body.rules, actor="api")
        )
        return GateIn(rules=rules)

    @router.get("/audit", summary="The audit log, newest first")
    async def audit(
        model: str | None = None, limit: int = Query(100, ge=1, le=1000)
    ) -> list[AuditOut]:
        events = await asyncio.to_thread(registry.audit_log, model, limit)
        return [
            AuditOut(
                id=e.id,
                at=e.at,
                action=e.action,
                model=e.model_name,
                version=e.version,
                actor=e.actor,
                details=e.details,
            )
            for e in events
        ]

    return router
