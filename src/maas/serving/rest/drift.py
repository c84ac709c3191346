"""``/api/models/{name}/versions/{ref}/reference`` (a version's input reference) and
``/api/models/{name}/drift`` (how this server's live inputs compare with it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from maas.control.access import Scope
from maas.monitoring.drift import FORMAT, QUANTILE_POINTS
from maas.serving.drift import DriftMonitor
from maas.serving.rest.body import json_body, json_object
from maas.serving.rest.context import ApiContext, actor

__all__ = [
    "DriftOut",
    "ReferenceDocument",
    "ReferenceOut",
    "VersionDriftOut",
    "drift_router",
]


class ReferenceSourceOut(BaseModel):
    kind: str = Field(description="training (the version's training split) or dataset")
    description: str = ""
    dataset: str | None = Field(None, description="The dataset's name (digits, a file's name).")
    sha256: str | None = Field(None, description="The dataset's content hash.")
    split: str | None = Field(None, description="The split the rows came from (train).")


class InputFeaturesDoc(BaseModel):
    name: str = Field(description="The V2 input's name.")
    row_shape: list[int] = Field(description="One row's shape (the batch axis left out).")
    reduce: str = Field(
        description="elements: each element is a feature (rows of up to 256 elements); "
        "channel_mean: the mean of each entry of the first axis (images)."
    )
    features: int


class FeatureStatsDoc(BaseModel):
    name: str = Field(description="e.g. input[12] (element 12), pixels[c0] (channel 0's mean)")
    quantiles: list[float] = Field(
        description=f"{QUANTILE_POINTS} quantiles, at 0, 1, ..., 100 %; not decreasing."
    )
    edges: list[float] = Field(description="PSI cut points, increasing strictly.")
    proportions: list[float] = Field(
        description="The share of reference rows in each bin (one more than the edges)."
    )


class ReferenceDocument(BaseModel):
    """A version's input reference, as ``maas models reference`` builds it (the SDK's
    and training's ``maas.monitoring.drift.Reference.to_dict``); validated strictly."""

    format: str = Field(description=f"Always {FORMAT!r}.")
    rows: int = Field(description="Rows the statistics were computed from.")
    source: ReferenceSourceOut
    inputs: list[InputFeaturesDoc]
    features: list[FeatureStatsDoc]


class ReferenceOut(BaseModel):
    model: str
    version: int
    revision: int = Field(description="1, then one more at each replacement.")
    actor: str
    updated_at: datetime
    reference: dict[str, Any] = Field(description="The reference document (ReferenceDocument).")


class ReferenceSummaryOut(BaseModel):
    source: ReferenceSourceOut
    rows: int
    features: int
    revision: int


class FeatureDriftOut(BaseModel):
    name: str
    psi: float = Field(description="Population stability index against the reference.")
    ks: float = Field(description="Kolmogorov-Smirnov statistic against the reference.")


class VersionDriftOut(BaseModel):
    model: str
    version: int
    window_rows: int = Field(description="The live window's size in rows (MAAS_DRIFT_WINDOW_ROWS).")
    rows: int = Field(description="Live rows in the window, as last scored.")
    sampled_every: int = Field(description="1: every request is kept; k: every k-th.")
    reference: ReferenceSummaryOut | None = Field(
        description="The reference the window is compared with (None: the version has none)."
    )
    score: float | None = Field(
        description="The largest per-feature PSI (None until the window holds min_rows rows)."
    )
    threshold: float | None = Field(description="Above it, the inputs have drifted.")
    drifted: bool | None
    min_rows: int | None
    computed_at: datetime | None = Field(description="When this server last scored it.")
    features: list[FeatureDriftOut]


class DriftOut(BaseModel):
    model: str
    versions: list[VersionDriftOut] = Field(description="The versions this server holds loaded.")


def drift_router(api: ApiContext, drift: DriftMonitor) -> APIRouter:
    router = APIRouter(prefix="/api/models/{name}", tags=["drift"])
    references = api.control.references
    read, deploy = api.access.allow(Scope.READ), api.access.allow(Scope.DEPLOY)

    @router.get(
        "/versions/{ref}/reference",
        summary="A version's input reference: the statistics drift is measured against",
        dependencies=read,
    )
    async def show_reference(name: str, ref: str) -> ReferenceOut:
        found = await api.call(references.get, name, ref)
        return ReferenceOut.model_validate(found.to_dict())

    @router.put(
        "/versions/{ref}/reference",
        summary="Set (or replace) a version's input reference",
        description="The body is a reference document, as `maas models reference NAME "
        "VERSION --dataset ...` builds it from a dataset on the caller's machine. A bad "
        "document is 400 naming the field; its inputs must be the version's. Audited; this "
        "server starts a fresh live window for the version at once, others within "
        "MAAS_DRIFT_INTERVAL_S.",
        openapi_extra=json_body("ReferenceDocument"),
        dependencies=deploy,
    )
    async def set_reference(request: Request, name: str, ref: str) -> ReferenceOut:
        document = await json_object(request)
        stored = await api.call(references.set, name, ref, document, actor=actor(request))
        await drift.sync()
        return ReferenceOut.model_validate(stored.to_dict())

    @router.get(
        "/drift",
        summary="Input drift of the model's loaded versions on this server",
        description="Per version: the live window (size, rows held, sampling), the reference "
        "it is compared with, the summary score (the largest per-feature PSI) and its "
        "threshold, per-feature PSI and KS, and when they were computed (every "
        "MAAS_DRIFT_INTERVAL_S). With several worker processes, the worker that answers "
        "reports its own window.",
        dependencies=read,
    )
    async def show_drift(name: str) -> DriftOut:
        versions = [VersionDriftOut.model_validate(v.to_dict()) for v in drift.status(name)]
        return DriftOut(model=name, versions=versions)

    return router
