"""The jobs API through the SDK, on jobs queued in the registry (this server trains none)."""

from __future__ import annotations

import pytest

from maas.client import Client, Job, JobLogLine
from maas.errors import ConflictError, InvalidInputError, NotFoundError
from maas.registry import Registry

SPEC = {"model_name": "digits", "hyperparameters": {"epochs": 3}}


def test_queued_jobs_read_cancel_and_resume(client: Client, registry: Registry) -> None:
    first = registry.jobs.submit("digits", SPEC, actor="alice")
    second = registry.jobs.submit("letters", SPEC, actor="bob")

    job = client.get_job(first.id)
    assert isinstance(job, Job)
    assert (job.id, job.state, job.model, job.actor) == (first.id, "queued", "digits", "alice")
    assert (job.epoch, job.epochs, job.attempts, job.version) == (0, 3, 0, None)
    assert job.started_at is None and job.finished_at is None and job.eta_s is None
    assert job.created_at.tzinfo is not None and not job.cancel_requested
    assert job.spec == first.spec and job.error == "" and job.worker == ""
    assert [j.id for j in client.list_jobs()] == [second.id, first.id]  # newest first
    assert [j.id for j in client.list_jobs(limit=1)] == [second.id]
    assert client.job_epochs(first.id) == []
    [line] = client.job_logs(first.id)
    assert isinstance(line, JobLogLine) and line.message == "queued by alice"
    assert client.job_logs(first.id, after=line.id) == []

    cancelled = client.cancel_job(first.id)
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    assert [j.id for j in client.list_jobs(state="cancelled")] == [first.id]
    with pytest.raises(ConflictError):
        client.cancel_job(first.id)
    resumed = client.resume_job(first.id)
    assert resumed.state == "queued"
    assert [j.id for j in client.list_jobs(state="queued")] == [second.id, first.id]
    assert len(client.job_logs(first.id, limit=10)) >= 3


def test_submit_queues_a_validated_job(client: Client) -> None:
    job = client.submit_job({"model_name": "quick", "hyperparameters": {"epochs": 2}})
    assert (job.state, job.model, job.epochs) == ("queued", "quick", 2)
    assert job.actor.startswith("api")
    assert job.spec["hyperparameters"]["epochs"] == 2  # the spec, defaults filled in
    assert client.get_job(job.id) == job


def test_job_errors_come_back_typed(client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.get_job(999)
    with pytest.raises(InvalidInputError) as refused:
        client.submit_job({"model_name": "digits", "no_such_field": 1})
    assert refused.value.code == "invalid_input"
    assert client.list_jobs() == []
