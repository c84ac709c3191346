"""``/api/models/{name}/traffic``: the model's traffic policy (split, sticky, shadow) and
what this server sees of it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from maas.control.access import Scope
from maas.errors import NotFoundError
from maas.serving.rest.body import json_body, json_object
from maas.serving.rest.context import ApiContext, actor
from maas.serving.rest.schemas import TrafficOut

__all__ = ["traffic_router"]


def traffic_router(api: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/models/{name}/traffic", tags=["traffic"])
    traffic = api.control.traffic

    async def answer(name: str) -> TrafficOut:
        stored = await api.call(traffic.get, name)
        try:
            serving = api.deployments.traffic(name)
        except NotFoundError:
            serving = None
        return TrafficOut(
            model=name,
            policy=None if stored is None else stored.policy,
            actor=None if stored is None else stored.actor,
            updated_at=None if stored is None else stored.updated_at,
            serving=serving,
        )

    @router.get(
        "",
        summary="The model's traffic policy, and how this server applies it",
        dependencies=api.access.allow(Scope.READ),
    )
    async def show(name: str) -> TrafficOut:
        return await answer(name)

    @router.put(
        "",
        summary="Set the model's traffic policy",
        description="Every version the policy names must answer its warm-up request first; "
        "requests that name a version or an alias are not affected by the policy.",
        openapi_extra=json_body("TrafficPolicySpec"),
        dependencies=api.access.allow(Scope.DEPLOY),
    )
    async def set_policy(request: Request, name: str) -> TrafficOut:
        document = await json_object(request)
        await api.call(traffic.set, name, document, actor=actor(request))
        await api.changed()
        return await answer(name)

    @router.delete(
        "",
        status_code=204,
        summary="Remove the traffic policy",
        dependencies=api.access.allow(Scope.DEPLOY),
    )
    async def clear(request: Request, name: str) -> None:
        await api.call(traffic.clear, name, actor=actor(request))
        await api.changed()

    return router
