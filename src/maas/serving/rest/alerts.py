"""``GET /api/alerts``: the alerts pending and firing now, those resolved lately, and the
rules loaded (``serving.alerts.AlertService``)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from maas.control.access import Reach, Scope
from maas.serving.alerts import AlertService
from maas.serving.rest.context import ApiContext

__all__ = ["alerts_router"]


class AlertRuleOut(BaseModel):
    name: str
    kind: str = Field(
        description="latency_p99, error_rate, drift, load_failure or queue_rejections"
    )
    threshold: float
    window_s: float
    for_s: float
    model: str | None = Field(description="Only this model (null: every model).")
    severity: str
    webhooks: list[str] = Field(description="Where it notifies (scheme, host and port only).")


class AlertOut(BaseModel):
    rule: str
    kind: str
    state: str = Field(description="pending, firing or resolved")
    model: str
    version: str
    value: float | None = Field(description="The rule's value at the last evaluation.")
    threshold: float
    labels: dict[str, str]
    annotations: dict[str, str]
    since: str = Field(description="When the condition started holding (ISO 8601, UTC).")
    fired_at: str | None
    resolved_at: str | None


class AlertsOut(BaseModel):
    evaluated_at: str | None = Field(description="The last evaluation (null: none yet).")
    interval_s: float
    rules: list[AlertRuleOut]
    current: list[AlertOut] = Field(description="Pending and firing, firing first.")
    recent: list[AlertOut] = Field(description="Resolved lately, newest first.")
    notifications: dict[str, int] = Field(description="Webhook deliveries: sent, failed.")


def alerts_router(api: ApiContext, alerts: AlertService) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["monitoring"])

    @router.get(
        "/alerts",
        summary="Alerts firing and pending, recently resolved, and the rules loaded",
        dependencies=api.access.allow(Scope.READ, reach=Reach.EVERY),
    )
    async def list_alerts() -> AlertsOut:
        return AlertsOut.model_validate(await alerts.report())

    return router
