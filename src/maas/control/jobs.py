"""Training jobs: submitted, watched, cancelled and resumed through one object.

Submission is checked in full before anything is queued (``maas.jobs.submission``):
over the network under the server's ``SubmissionPolicy`` (what a job may read and
import), locally under none. What starts a queued job is a seam: a server wakes its
runner, the CLI without a server starts a worker process itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from maas.jobs.policy import SubmissionPolicy
from maas.jobs.submission import submit_job
from maas.registry.entities import Job, JobLogLine
from maas.registry.service import Registry

__all__ = ["Jobs"]


class Jobs:
    """>>> control.jobs.submit({"model_name": "digits"}, actor="cli:ann")  # doctest: +SKIP"""

    def __init__(
        self,
        registry: Registry,
        policy: SubmissionPolicy,
        on_queued: Callable[[Job], None],
        on_cancelled: Callable[[Job], None] | None = None,
    ) -> None:
        self._registry = registry
        self._book = registry.jobs
        self._policy = policy
        self._on_queued = on_queued
        self._on_cancelled = on_cancelled or (lambda job: None)

    def submit(self, document: dict[str, Any], *, actor: str) -> Job:
        """Validate the spec (errors name the field; nothing is queued) and queue it."""
        job = submit_job(self._registry, document, actor=actor, policy=self._policy)
        self._on_queued(job)
        return job

    def get(self, job_id: int) -> Job:
        return self._book.get(job_id)

    def list_jobs(self, *, state: str | None = None, limit: int = 100) -> list[Job]:
        return self._book.list_jobs(state=state, limit=limit)

    def epochs(self, job_id: int) -> list[dict[str, Any]]:
        return self._book.epochs(job_id)

    def logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[JobLogLine]:
        return self._book.logs(job_id, after=after, limit=limit)

    def cancel(self, job_id: int, *, actor: str) -> Job:
        """A queued job ends at once; a running one stops at its next training step."""
        job = self._book.cancel(job_id, actor=actor)
        self._on_cancelled(job)
        return job

    def resume(self, job_id: int, *, actor: str) -> Job:
        """Queue a failed or cancelled job again, to continue after its last checkpoint."""
        job = self._book.resume(job_id, actor=actor)
        self._on_queued(job)
        return job
