"""``/api/keys``: API keys, created (the token shown once), listed and revoked; admin only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from maas.control.access import Reach, Scope
from maas.serving.rest.context import ApiContext, actor
from maas.serving.rest.schemas import KeyCreatedOut, KeyIn, KeyOut

__all__ = ["keys_router"]


def keys_router(api: ApiContext) -> APIRouter:
    router = APIRouter(
        prefix="/api/keys",
        tags=["access"],
        dependencies=api.access.allow(Scope.ADMIN, reach=Reach.EVERY),
    )
    keys = api.control.keys

    @router.post("", status_code=201, summary="Create an API key (its token is shown only now)")
    async def create(request: Request, body: KeyIn) -> KeyCreatedOut:
        created = await api.call(
            keys.create,
            body.name,
            body.scopes,
            models=body.models,
            rate_per_s=body.rate_per_s,
            actor=actor(request),
        )
        await api.keys_changed()
        return KeyCreatedOut.model_validate({**created.key.to_dict(), "token": created.token})

    @router.get("", summary="List API keys (never their tokens)")
    async def list_keys(
        revoked: Annotated[bool, Query(description="Include revoked keys.")] = False,
    ) -> list[KeyOut]:
        found = await api.call(keys.list, include_revoked=revoked)
        return [KeyOut.model_validate(key.to_dict()) for key in found]

    @router.delete("/{key_id}", summary="Revoke an API key; it stops working at once here")
    async def revoke(request: Request, key_id: str) -> KeyOut:
        key = await api.call(keys.revoke, key_id, actor=actor(request))
        await api.keys_changed()
        return KeyOut.model_validate(key.to_dict())

    return router
