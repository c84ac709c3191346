"""``/api/audit`` (who changed what, newest first) and ``/api/registry`` (its identity)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from maas import __version__
from maas.control.access import Reach, Scope
from maas.serving.rest.context import ApiContext
from maas.serving.rest.schemas import AuditOut, RegistryOut

__all__ = ["audit_router"]


def audit_router(api: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["audit"])

    @router.get(
        "/audit",
        summary="The audit log, newest first",
        dependencies=api.access.allow(Scope.READ, reach=Reach.EVERY),
    )
    async def audit(
        model: Annotated[str | None, Query(description="Only this model's events.")] = None,
        action: Annotated[
            str | None, Query(description="One kind (alias.set) or a family (alias).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[
            int | None, Query(ge=1, le=2**63 - 1, description="Events older than this id.")
        ] = None,
    ) -> list[AuditOut]:
        events = await api.call(api.control.audit, model, action=action, limit=limit, before=before)
        return [AuditOut.model_validate(e.to_dict()) for e in events]

    @router.get(
        "/registry",
        summary="Which registry this server serves",
        description="Clients compare the id with their own configuration's registry before "
        "they act through this server.",
        dependencies=api.access.allow(Scope.READ, Scope.PREDICT, reach=Reach.NONE),
    )
    async def registry() -> RegistryOut:
        return RegistryOut(id=await api.call(api.control.registry_id), maas_version=__version__)

    return router
