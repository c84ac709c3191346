"""The jobs API (JSON under /api/jobs): submit training and optimisation jobs, watch them,
cancel, resume."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from maas.control.access import Reach, Scope
from maas.registry.entities import Job
from maas.registry.jobs import MAX_JOB_ID
from maas.serving.rest.context import ApiContext, actor

__all__ = ["jobs_router"]

#: A job id in the path: a positive 64-bit integer (a larger one answers 400, not 500).
JobId = Annotated[int, Path(ge=1, le=MAX_JOB_ID, description="The job's id.")]


class JobOut(BaseModel):
    id: int
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    model: str = Field(description="The model name the result is registered under.")
    spec: dict[str, Any] = Field(description="The validated spec, defaults filled in.")
    actor: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    epoch: int = Field(description="Epochs finished.")
    epochs: int
    step: int = Field(description="Steps finished in the current epoch.")
    steps: int = Field(description="Steps per epoch.")
    eta_s: float | None = Field(description="Seconds left, estimated (early stopping may cut it).")
    metrics: dict[str, Any] = Field(description="The latest epoch's metrics.")
    error: str
    version: int | None = Field(description="The version registered when it succeeded.")
    cancel_requested: bool
    checkpoint_epoch: int = Field(description="Last epoch checkpointed; resume starts after it.")
    worker: str = Field(description="host:pid of the worker process while running.")


class JobMetricsOut(BaseModel):
    job: int
    epochs: list[dict[str, Any]] = Field(
        description="One entry per epoch: epoch, train_loss, val_loss, val_accuracy, seconds."
    )


class JobLogLineOut(BaseModel):
    id: int
    at: datetime
    level: str
    message: str


class JobLogsOut(BaseModel):
    job: int
    lines: list[JobLogLineOut]


def _job_out(job: Job) -> JobOut:
    return JobOut.model_validate(job.to_dict())


def jobs_router(api: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/jobs", tags=["jobs"])
    jobs = api.control.jobs
    # A job names its model in its spec, not its path: model-limited keys have no jobs.
    train = api.access.allow(Scope.TRAIN, reach=Reach.EVERY)
    read = api.access.allow(Scope.READ, reach=Reach.EVERY)

    @router.post(
        "", status_code=201, summary="Submit a training or optimisation job", dependencies=train
    )
    async def submit(request: Request, document: dict[str, Any]) -> JobOut:
        """The body is a job spec (the fields of a spec file, as JSON) whose ``kind`` is
        ``train`` (the default), ``quantize``, ``prune`` or ``distill``; an optimisation
        names its ``parent`` (``teacher`` for distill) as NAME:VERSION or NAME:ALIAS, pinned
        to a version number at submission, and its result is registered as a new version
        with a report against that parent. It is validated in full first (datasets read,
        networks checked): a bad spec is refused with 400 and the field named in
        ``details.field``; nothing is queued. Dataset paths must be absolute and inside the
        server's MAAS_JOB_DATA_DIRS; factories must come from its MAAS_JOB_FACTORY_MODULES."""
        return _job_out(await api.call(jobs.submit, document, actor=actor(request)))

    @router.get("", summary="List jobs, newest first", dependencies=read)
    async def list_jobs(
        state: Annotated[str | None, Query(description="Only jobs in this state.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[JobOut]:
        return [_job_out(job) for job in await api.call(jobs.list_jobs, state=state, limit=limit)]

    @router.get(
        "/{job_id}",
        summary="A job's state, progress, ETA and latest metrics",
        dependencies=read,
    )
    async def show(job_id: JobId) -> JobOut:
        return _job_out(await api.call(jobs.get, job_id))

    @router.get("/{job_id}/metrics", summary="A job's metrics, epoch by epoch", dependencies=read)
    async def metrics(job_id: JobId) -> JobMetricsOut:
        return JobMetricsOut(job=job_id, epochs=await api.call(jobs.epochs, job_id))

    @router.get("/{job_id}/logs", summary="A job's log lines", dependencies=read)
    async def logs(
        job_id: JobId,
        after: Annotated[
            int, Query(ge=0, le=MAX_JOB_ID, description="Only lines with a larger id.")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> JobLogsOut:
        lines = await api.call(jobs.logs, job_id, after=after, limit=limit)
        return JobLogsOut(
            job=job_id, lines=[JobLogLineOut.model_validate(line.to_dict()) for line in lines]
        )

    @router.post("/{job_id}/cancel", summary="Cancel a queued or running job", dependencies=train)
    async def cancel(request: Request, job_id: JobId) -> JobOut:
        """A queued job is cancelled at once; a running one stops at its next training step
        (the reply shows ``cancel_requested``). 409 when the job has already ended."""
        return _job_out(await api.call(jobs.cancel, job_id, actor=actor(request)))

    @router.post(
        "/{job_id}/resume",
        summary="Queue a failed or cancelled job again",
        dependencies=train,
    )
    async def resume(request: Request, job_id: JobId) -> JobOut:
        """It continues after its last checkpointed epoch. 409 unless failed or cancelled."""
        return _job_out(await api.call(jobs.resume, job_id, actor=actor(request)))

    return router
