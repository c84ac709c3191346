"""What this server holds, and whether models are served: ``/api/deployments``,
``/api/models/{name}/load|unload`` and the V2 model-repository extension
(``/v2/repository/index``, ``/v2/repository/models/{name}/load|unload``) that
tritonclient's ``get_model_repository_index``, ``load_model`` and ``unload_model`` use."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from maas.control.access import Reach, Scope
from maas.errors import InvalidInputError
from maas.serving.repository import ModelRepository
from maas.serving.rest.context import ApiContext, actor
from maas.serving.rest.schemas import DeploymentOut, DeploymentStateOut

__all__ = ["deployments_router"]


class RepositoryEntryOut(BaseModel):
    name: str
    version: str
    state: str = Field(description="READY, LOADING or UNAVAILABLE")
    reason: str


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise InvalidInputError(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInputError("the body must be a JSON object")
    return document


def deployments_router(api: ApiContext, repository: ModelRepository) -> APIRouter:
    router = APIRouter(tags=["deployments"])
    deploy = api.access.allow(Scope.DEPLOY)

    @router.get(
        "/api/deployments",
        summary="Every version this server holds, loads or failed",
        dependencies=api.access.allow(Scope.READ, reach=Reach.EVERY),
    )
    async def deployments(
        model: Annotated[str | None, Query(description="Only this model.")] = None,
    ) -> list[DeploymentOut]:
        await api.deployments.sync()
        return [DeploymentOut.model_validate(row) for row in api.deployments.status(model)]

    @router.post(
        "/api/models/{name}/load",
        summary="Serve the model (again); answers once its default version is warm",
        dependencies=deploy,
    )
    async def load(request: Request, name: str) -> DeploymentStateOut:
        await repository.load(name, actor=actor(request))
        state = await api.call(api.control.deployments.state, name)
        return DeploymentStateOut.model_validate(state.to_dict())

    @router.post(
        "/api/models/{name}/unload",
        summary="Stop serving the model; its versions drain and free their memory",
        dependencies=deploy,
    )
    async def unload(request: Request, name: str) -> DeploymentStateOut:
        await repository.unload(name, actor=actor(request))
        state = await api.call(api.control.deployments.state, name)
        return DeploymentStateOut.model_validate(state.to_dict())

    @router.post(
        "/v2/repository/index",
        summary="Model repository index (V2 extension)",
        dependencies=api.access.allow(Scope.READ, reach=Reach.EVERY),
    )
    async def repository_index(request: Request) -> list[RepositoryEntryOut]:
        body = await _body(request)
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidInputError("ready: must be true or false", {"field": "ready"})
        return [
            RepositoryEntryOut.model_validate(e) for e in await repository.index(ready_only=ready)
        ]

    @router.post(
        "/v2/repository/models/{name}/load",
        summary="Load a model (V2 extension)",
        dependencies=deploy,
    )
    async def repository_load(request: Request, name: str) -> dict[str, Any]:
        parameters = (await _body(request)).get("parameters") or {}
        if parameters:
            raise InvalidInputError(
                "load takes no parameters: maas loads registered versions (upload a new "
                "version to serve another file or config)",
                {"field": "parameters"},
            )
        await repository.load(name, actor=actor(request))
        return {}

    @router.post(
        "/v2/repository/models/{name}/unload",
        summary="Unload a model (V2 extension)",
        dependencies=deploy,
    )
    async def repository_unload(request: Request, name: str) -> dict[str, Any]:
        await _body(request)
        await repository.unload(name, actor=actor(request))
        return {}

    return router
