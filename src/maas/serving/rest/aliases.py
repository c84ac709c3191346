"""Aliases and promotion: list, set (the gate and the warm-up apply), delete, history,
promote and rollback. A move answers once the new version is warm, or refused."""

from __future__ import annotations

from fastapi import APIRouter, Request

from maas.control.access import Scope
from maas.serving.rest.context import ApiContext, actor
from maas.serving.rest.schemas import AliasIn, AliasMoveOut, AliasOut, PromoteIn, RollbackIn

__all__ = ["aliases_router"]

_MOVE_DOC = (
    "The version must exist, be in service, pass the validation gate (production; unless "
    "forced with a reason) and answer its warm-up request within its signature: only then "
    "does the alias move, and traffic with it. A version that fails is refused (409 "
    "not_servable, with the reason) and the old one keeps serving."
)


def aliases_router(api: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/models/{name}", tags=["aliases and promotion"])
    read, deploy = api.access.allow(Scope.READ), api.access.allow(Scope.DEPLOY)
    aliases = api.control.aliases

    async def move(request: Request, name: str, alias: str, body: AliasIn) -> AliasOut:
        result = await api.call(
            aliases.move,
            name,
            alias,
            body.version,
            actor=actor(request),
            force=body.force,
            reason=body.reason,
        )
        await api.changed()
        return AliasOut.model_validate(result.to_dict())

    @router.get("/aliases", summary="List a model's aliases", dependencies=read)
    async def list_aliases(name: str) -> list[AliasOut]:
        return [
            AliasOut.model_validate(a.to_dict()) for a in await api.call(aliases.list_for, name)
        ]

    @router.put(
        "/aliases/{alias}",
        summary="Set or move an alias",
        description=_MOVE_DOC,
        dependencies=deploy,
    )
    async def set_alias(request: Request, name: str, alias: str, body: AliasIn) -> AliasOut:
        return await move(request, name, alias, body)

    @router.delete(
        "/aliases/{alias}", status_code=204, summary="Remove an alias", dependencies=deploy
    )
    async def delete_alias(request: Request, name: str, alias: str) -> None:
        await api.call(aliases.delete, name, alias, actor=actor(request))
        await api.changed()

    @router.get(
        "/aliases/{alias}/history",
        summary="Every move of an alias, oldest first",
        dependencies=read,
    )
    async def alias_history(name: str, alias: str) -> list[AliasMoveOut]:
        moves = await api.call(aliases.history, name, alias)
        return [AliasMoveOut.model_validate(m.to_dict()) for m in moves]

    @router.post(
        "/promote",
        summary="Promote a version (to production by default)",
        description=_MOVE_DOC,
        dependencies=deploy,
    )
    async def promote(request: Request, name: str, body: PromoteIn) -> AliasOut:
        return await move(request, name, body.alias, body)

    @router.post(
        "/rollback",
        summary="Move an alias back to the version it pointed at before",
        description="Walks the alias's history back one step per call; the version is warmed "
        "first, but not gated again (it was there before).",
        dependencies=deploy,
    )
    async def rollback(request: Request, name: str, body: RollbackIn) -> AliasOut:
        result = await api.call(aliases.rollback, name, body.alias, actor=actor(request))
        await api.changed()
        return AliasOut.model_validate(result.to_dict())

    return router
