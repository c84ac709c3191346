"""``GET /metrics``: the server's Prometheus families in the text format (docs/metrics.md).

It needs ``read`` over every model (a Prometheus scrape config sends the key as its
bearer token); with ``MAAS_METRICS=false`` it answers 404. The families are gathered on
the event loop (where the counters are written) and rendered to text in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter
from starlette.responses import Response

from maas.control.access import Reach, Scope
from maas.errors import NotFoundError
from maas.monitoring.metrics import CONTENT_TYPE, render
from maas.serving.metrics import ServerMetrics
from maas.serving.rest.access import RouteAccess

__all__ = ["metrics_router"]

_TEXT: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The Prometheus text exposition format",
        "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
    }
}


def metrics_router(metrics: ServerMetrics, access: RouteAccess) -> APIRouter:
    router = APIRouter(tags=["monitoring"])

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        description="Requests, latencies, batches, queues, loads, traffic, jobs, drift and "
        "alerts, summed over the server's worker processes (docs/metrics.md); 404 when "
        "MAAS_METRICS is false.",
        response_class=Response,
        responses=_TEXT,
        dependencies=access.allow(Scope.READ, reach=Reach.EVERY),
    )
    async def scrape() -> Response:
        if not metrics.enabled:
            raise NotFoundError("metrics are off on this server (MAAS_METRICS=false)")
        await metrics.refresh()
        body = await asyncio.to_thread(render, metrics.collect())
        return Response(body, media_type=CONTENT_TYPE)

    return router
