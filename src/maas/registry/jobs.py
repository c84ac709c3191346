"""Training jobs in the registry database: the queue, each job's progress, metrics and log.

The database is the one source of truth about a job, so that a server restart loses
nothing: the runner claims queued jobs here, the worker process writes its progress
here, and a cancel request is a flag here that the worker reads back with every
progress write. States only move forward::

    queued -> running -> succeeded | failed | cancelled
    running -> queued            (its worker died with the server: resumed from a checkpoint)
    failed | cancelled -> queued (``resume``)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from maas.errors import ConflictError, InvalidInputError, NotFoundError
from maas.registry import repository as repo
from maas.registry.entities import Job, JobLogLine
from maas.registry.names import check_json_object, check_model_name
from maas.registry.tables import JobEpochRow, JobLogRow, JobRow, utc_now
from maas.registry.transactions import transaction

__all__ = ["JOB_STATES", "MAX_JOB_ID", "TERMINAL_STATES", "JobBook"]

JOB_STATES: Final = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES: Final = frozenset({"succeeded", "failed", "cancelled"})
MAX_ATTEMPTS: Final = 3
#: Ids are 64-bit signed integers in every database maas runs on; a larger one names no
#: job (and must not reach the driver, which cannot bind it).
MAX_JOB_ID: Final = 2**63 - 1


def _to_job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        state=row.state,
        model_name=row.model_name,
        spec=dict(row.spec),
        actor=row.actor,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        attempts=row.attempts,
        epoch=row.epoch,
        epochs=row.epochs,
        step=row.step,
        steps=row.steps,
        eta_s=row.eta_s,
        metrics=dict(row.metrics),
        error=row.error,
        version=row.result_version,
        cancel_requested=row.cancel_requested,
        checkpoint_epoch=row.checkpoint_epoch,
        worker=f"{row.worker_host}:{row.worker_pid}" if row.worker_pid else "",
    )


def _require(session: Session, job_id: int, *, lock: bool = False) -> JobRow:
    if not 1 <= int(job_id) <= MAX_JOB_ID:
        raise NotFoundError(f"job {job_id} not found", {"job": job_id})
    query = select(JobRow).where(JobRow.id == int(job_id))
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"job {job_id} not found", {"job": job_id})
    return row


def _log(session: Session, row: JobRow, message: str, level: str = "info") -> None:
    session.add(JobLogRow(job_id=row.id, at=utc_now(), level=level, message=message))


class JobBook:
    """The registry's jobs: submitted, claimed, reported on and finished through here.

    >>> job = registry.jobs.submit("digits", {"model": {"name": "mlp"}})  # doctest: +SKIP
    >>> registry.jobs.claim("host-a").id == job.id  # doctest: +SKIP
    True
    """

    def __init__(self, reads: sessionmaker[Session], writes: sessionmaker[Session]) -> None:
        self._reads = reads
        self._writes = writes

    # -- submitting and reading -------------------------------------------------------

    def submit(
        self,
        model_name: str,
        spec: dict[str, Any],
        *,
        actor: str = "cli",
        epochs: int | None = None,
    ) -> Job:
        """Queue a job for an already validated ``spec``; audited under the model's name.
        ``epochs`` (what its progress counts to) defaults to the spec's hyper-parameters'."""
        check_model_name(model_name)
        spec = check_json_object("spec", spec)
        if epochs is None:
            epochs = spec.get("hyperparameters", {}).get("epochs", 0)
        with transaction(self._writes) as session:
            now = utc_now()
            row = JobRow(
                state="queued",
                model_name=model_name,
                spec=spec,
                actor=actor,
                created_at=now,
                updated_at=now,
                attempts=0,
                epoch=0,
                epochs=int(epochs) if isinstance(epochs, int) else 0,
                step=0,
                steps=0,
                metrics={},
                error="",
                cancel_requested=False,
                checkpoint_epoch=0,
                worker_host="",
            )
            session.add(row)
            session.flush()
            _log(session, row, f"queued by {actor}")
            repo.add_event(session, "job.submit", model_name, actor=actor, details={"job": row.id})
            return _to_job(row)

    def get(self, job_id: int) -> Job:
        with transaction(self._reads) as session:
            return _to_job(_require(session, job_id))

    def list_jobs(self, *, state: str | None = None, limit: int = 100) -> list[Job]:
        """The newest ``limit`` jobs, newest first, optionally only those in ``state``."""
        if state is not None and state not in JOB_STATES:
            raise InvalidInputError(
                f"state: unknown {state!r}; choose one of {', '.join(JOB_STATES)}",
                {"field": "state"},
            )
        query = select(JobRow).order_by(JobRow.id.desc()).limit(max(0, limit))
        if state is not None:
            query = query.where(JobRow.state == state)
        with transaction(self._reads) as session:
            return [_to_job(row) for row in session.scalars(query)]

    def epochs(self, job_id: int) -> list[dict[str, Any]]:
        """Per-epoch metrics, oldest first: ``{"epoch": 1, "train_loss": ..., ...}``."""
        with transaction(self._reads) as session:
            _require(session, job_id)
            rows = session.scalars(
                select(JobEpochRow).where(JobEpochRow.job_id == job_id).order_by(JobEpochRow.epoch)
            )
            return [{"epoch": row.epoch, **row.metrics} for row in rows]

    def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (every state named, 0 included): for metrics."""
        query = select(JobRow.state, func.count()).group_by(JobRow.state)
        with transaction(self._reads) as session:
            found = {str(state): int(count) for state, count in session.execute(query)}
        return {state: found.get(state, 0) for state in JOB_STATES}

    def epoch_seconds(
        self, *, after: int = 0, limit: int = 10_000
    ) -> list[tuple[int, float | None]]:
        """``(row id, seconds)`` of the epochs recorded after row ``after``, oldest first
        (poll with the last id seen); seconds None where the metrics hold none."""
        query = (
            select(JobEpochRow.id, JobEpochRow.metrics)
            .where(JobEpochRow.id > min(after, MAX_JOB_ID))
            .order_by(JobEpochRow.id)
            .limit(max(0, limit))
        )
        with transaction(self._reads) as session:
            rows = list(session.execute(query))
        found: list[tuple[int, float | None]] = []
        for row_id, metrics in rows:
            seconds = metrics.get("seconds") if isinstance(metrics, dict) else None
            if not isinstance(seconds, int | float) or isinstance(seconds, bool):
                seconds = None
            found.append((int(row_id), None if seconds is None else float(seconds)))
        return found

    def logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[JobLogLine]:
        """Log lines with id > ``after``, oldest first (poll with the last id seen)."""
        with transaction(self._reads) as session:
            _require(session, job_id)
            rows = session.scalars(
                select(JobLogRow)
                .where(JobLogRow.job_id == job_id, JobLogRow.id > min(after, MAX_JOB_ID))
                .order_by(JobLogRow.id)
                .limit(max(0, limit))
            )
            return [JobLogLine(row.id, row.at, row.level, row.message) for row in rows]

    # -- the runner's side ----------------------------------------------------------

    def claim(self, host: str, *, job_id: int | None = None) -> Job | None:
        """Take the oldest queued job (or ``job_id`` if still queued) for a worker on ``host``;
        it becomes ``running``. None when there is nothing to take."""
        with transaction(self._writes) as session:
            query = select(JobRow).where(JobRow.state == "queued").order_by(JobRow.id).limit(1)
            if job_id is not None:
                query = query.where(JobRow.id == job_id)
            row = session.scalars(query.with_for_update(skip_locked=True)).one_or_none()
            if row is None:
                return None
            now = utc_now()
            row.state, row.attempts = "running", row.attempts + 1
            row.started_at = row.started_at or now
            row.updated_at = row.heartbeat_at = now
            row.worker_host, row.worker_pid = host, None
            row.eta_s = None
            _log(session, row, f"started on {host} (attempt {row.attempts})")
            return _to_job(row)

    def attach(self, job_id: int, pid: int) -> None:
        """Record the worker process that runs the job (how recovery tells it is alive)."""
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            row.worker_pid = pid

    def report(
        self,
        job_id: int,
        *,
        epoch: int,
        epochs: int,
        step: int,
        steps: int,
        eta_s: float | None,
        metrics: dict[str, Any] | None = None,
    ) -> bool:
        """Write the worker's progress; returns whether a cancel was requested meanwhile."""
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            if row.state != "running":
                return True  # finished or taken back under the worker: it must stop
            row.epoch, row.epochs, row.step, row.steps, row.eta_s = (
                epoch,
                epochs,
                step,
                steps,
                eta_s,
            )
            if metrics is not None:
                row.metrics = metrics
            row.updated_at = row.heartbeat_at = utc_now()
            return row.cancel_requested

    def record_epoch(
        self, job_id: int, epoch: int, metrics: dict[str, Any], *, checkpointed: bool
    ) -> None:
        """Keep one epoch's metrics in the history (a re-run epoch replaces its old row)."""
        metrics = check_json_object("metrics", metrics)
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            session.execute(
                delete(JobEpochRow).where(JobEpochRow.job_id == job_id, JobEpochRow.epoch >= epoch)
            )
            session.add(JobEpochRow(job_id=job_id, epoch=epoch, metrics=metrics, at=utc_now()))
            row.metrics = metrics
            if checkpointed:
                row.checkpoint_epoch = epoch
            row.updated_at = row.heartbeat_at = utc_now()

    def log(self, job_id: int, message: str, level: str = "info") -> None:
        with transaction(self._writes) as session:
            _log(session, _require(session, job_id), message, level)

    def finish(
        self,
        job_id: int,
        state: str,
        *,
        error: str = "",
        version: int | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> Job:
        """End a running job in a terminal ``state``; a job already ended stays as it was.

        ``metrics`` (a succeeded job's evaluation) replace the last epoch's."""
        if state not in TERMINAL_STATES:
            raise InvalidInputError(f"state: {state!r} is not a terminal state")
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            if row.state in TERMINAL_STATES:
                return _to_job(row)
            now = utc_now()
            row.state, row.error, row.result_version = state, error, version
            if metrics is not None:
                row.metrics = check_json_object("metrics", metrics)
            row.finished_at = row.updated_at = now
            row.eta_s = None
            message = {"succeeded": f"succeeded: registered version {version}"}.get(
                state, f"{state}{': ' + error if error else ''}"
            )
            _log(session, row, message, "error" if state == "failed" else "info")
            repo.add_event(
                session,
                f"job.{state}",
                row.model_name,
                actor=row.actor,
                version=version,
                details={"job": row.id} | ({"error": error} if error else {}),
            )
            return _to_job(row)

    def requeue(self, job_id: int, reason: str) -> Job:
        """Put a running job back in the queue (its worker is gone, not its fault)."""
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            if row.state != "running":
                return _to_job(row)
            row.state, row.worker_pid, row.eta_s = "queued", None, None
            row.updated_at = utc_now()
            _log(session, row, f"requeued: {reason}", "warning")
            return _to_job(row)

    def recover(
        self,
        host: str,
        is_alive: Callable[[int], bool],
        *,
        stale_after: timedelta = timedelta(minutes=2),
    ) -> list[Job]:
        """Deal with running jobs whose worker is gone (the server was killed).

        A job whose worker ran on ``host`` and is no longer alive, or which has not
        reported for ``stale_after`` (another host's worker), goes back to the queue to
        resume from its last checkpoint; after ``MAX_ATTEMPTS`` it fails instead.
        """
        recovered = []
        with transaction(self._writes) as session:
            rows = session.scalars(
                select(JobRow).where(JobRow.state == "running").with_for_update()
            ).all()
            now = utc_now()
            for row in rows:
                stale = row.heartbeat_at is None or now - row.heartbeat_at > stale_after
                local_dead = row.worker_host == host and (
                    (row.worker_pid is not None and not is_alive(row.worker_pid))
                    or (row.worker_pid is None and stale)
                )
                if not (local_dead or stale):
                    continue
                where = f"from its epoch {row.checkpoint_epoch} checkpoint"
                if not row.checkpoint_epoch:
                    where = "from the start (no checkpoint yet)"
                if row.attempts >= MAX_ATTEMPTS:
                    row.state, row.finished_at = "failed", now
                    row.error = (
                        f"its worker died while running, {row.attempts} times "
                        "(last: the server process stopped)"
                    )
                    _log(session, row, f"failed: {row.error}", "error")
                else:
                    row.state = "queued"
                    _log(
                        session,
                        row,
                        f"its worker {row.worker_host}:{row.worker_pid} died with the server "
                        f"process; will resume {where}",
                        "warning",
                    )
                row.worker_pid, row.eta_s, row.updated_at = None, None, now
                recovered.append(_to_job(row))
        return recovered

    # -- the user's side ------------------------------------------------------------

    def cancel(self, job_id: int, *, actor: str = "cli") -> Job:
        """Cancel a job: a queued one at once, a running one at its next step (409 if ended)."""
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            if row.state in TERMINAL_STATES:
                raise ConflictError(
                    f"job {job_id} already {row.state}; nothing to cancel",
                    {"job": job_id, "state": row.state},
                )
            if row.state == "queued":
                row.state = "cancelled"
                row.finished_at = utc_now()
                repo.add_event(
                    session, "job.cancelled", row.model_name, actor=actor, details={"job": row.id}
                )
            row.cancel_requested = True
            row.updated_at = utc_now()
            _log(session, row, f"cancel requested by {actor}")
            return _to_job(row)

    def resume(self, job_id: int, *, actor: str = "cli") -> Job:
        """Queue a failed or cancelled job again; it continues from its last checkpoint."""
        with transaction(self._writes) as session:
            row = _require(session, job_id, lock=True)
            if row.state not in ("failed", "cancelled"):
                raise ConflictError(
                    f"job {job_id} is {row.state}; only a failed or cancelled job can be resumed",
                    {"job": job_id, "state": row.state},
                )
            row.state, row.cancel_requested, row.error = "queued", False, ""
            row.finished_at, row.attempts = None, 0
            row.updated_at = utc_now()
            where = f"epoch {row.checkpoint_epoch}" if row.checkpoint_epoch else "the start"
            _log(session, row, f"resumed by {actor} from {where}")
            repo.add_event(
                session, "job.resume", row.model_name, actor=actor, details={"job": row.id}
            )
            return _to_job(row)
