"""The job queue and its state machine on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from maas.errors import ConflictError, InvalidInputError, NotFoundError
from maas.registry import Registry
from maas.registry.jobs import MAX_ATTEMPTS

SPEC = {"model_name": "digits", "hyperparameters": {"epochs": 3}}


def test_a_submitted_job_is_queued_logged_and_audited(registry: Registry) -> None:
    job = registry.jobs.submit("digits", SPEC, actor="alice")
    assert (job.state, job.epochs, job.attempts, job.version) == ("queued", 3, 0, None)
    assert [line.message for line in registry.jobs.logs(job.id)] == ["queued by alice"]
    [event] = registry.audit_log("digits")
    assert (event.action, event.details) == ("job.submit", {"job": job.id})


def test_claim_takes_the_oldest_queued_job_once(registry: Registry) -> None:
    first = registry.jobs.submit("a", SPEC)
    second = registry.jobs.submit("b", SPEC)
    claimed = registry.jobs.claim("host-a")
    assert claimed is not None and claimed.id == first.id
    assert (claimed.state, claimed.attempts) == ("running", 1)
    again = registry.jobs.claim("host-b")
    assert again is not None and again.id == second.id
    assert registry.jobs.claim("host-c") is None


def test_claim_of_a_named_job_ignores_the_others(registry: Registry) -> None:
    registry.jobs.submit("a", SPEC)
    wanted = registry.jobs.submit("b", SPEC)
    claimed = registry.jobs.claim("h", job_id=wanted.id)
    assert claimed is not None and claimed.id == wanted.id
    assert registry.jobs.claim("h", job_id=wanted.id) is None


def test_progress_epochs_and_success(registry: Registry) -> None:
    job = registry.jobs.submit("digits", SPEC)
    registry.jobs.claim("h")
    registry.jobs.attach(job.id, 4242)
    cancel = registry.jobs.report(job.id, epoch=0, epochs=3, step=5, steps=23, eta_s=2.5)
    assert cancel is False
    shown = registry.jobs.get(job.id)
    assert (shown.step, shown.steps, shown.eta_s, shown.worker) == (5, 23, 2.5, "h:4242")
    for epoch in (1, 2):
        registry.jobs.record_epoch(job.id, epoch, {"val_accuracy": 0.5 * epoch}, checkpointed=True)
    registry.jobs.record_epoch(job.id, 2, {"val_accuracy": 0.9}, checkpointed=True)  # re-run
    assert registry.jobs.epochs(job.id) == [
        {"epoch": 1, "val_accuracy": 0.5},
        {"epoch": 2, "val_accuracy": 0.9},
    ]
    done = registry.jobs.finish(job.id, "succeeded", version=7, metrics={"accuracy": 0.97})
    assert (done.state, done.version, done.metrics, done.checkpoint_epoch) == (
        "succeeded",
        7,
        {"accuracy": 0.97},
        2,
    )
    assert done.finished_at is not None
    # A terminal state is final: a late finish from a stale worker changes nothing.
    assert registry.jobs.finish(job.id, "failed", error="late").state == "succeeded"
    assert registry.audit_log("digits")[0].action == "job.succeeded"


def test_cancel_a_queued_job_at_once_and_a_running_one_through_its_worker(
    registry: Registry,
) -> None:
    queued = registry.jobs.submit("a", SPEC)
    running = registry.jobs.submit("b", SPEC)
    registry.jobs.claim("h", job_id=running.id)
    assert registry.jobs.cancel(queued.id).state == "cancelled"
    asked = registry.jobs.cancel(running.id)
    assert (asked.state, asked.cancel_requested) == ("running", True)
    # The worker learns it from its next progress write.
    assert registry.jobs.report(running.id, epoch=0, epochs=3, step=1, steps=2, eta_s=None)
    assert registry.jobs.finish(running.id, "cancelled").state == "cancelled"
    with pytest.raises(ConflictError, match="already cancelled"):
        registry.jobs.cancel(running.id)


def test_resume_requeues_only_failed_or_cancelled_jobs(registry: Registry) -> None:
    job = registry.jobs.submit("a", SPEC)
    with pytest.raises(ConflictError, match="only a failed or cancelled job"):
        registry.jobs.resume(job.id)
    registry.jobs.claim("h")
    registry.jobs.record_epoch(job.id, 1, {"val_loss": 1.0}, checkpointed=True)
    registry.jobs.finish(job.id, "failed", error="boom")
    resumed = registry.jobs.resume(job.id, actor="bob")
    assert (resumed.state, resumed.error, resumed.checkpoint_epoch) == ("queued", "", 1)
    assert registry.jobs.logs(job.id)[-1].message == "resumed by bob from epoch 1"


def test_recover_requeues_jobs_whose_worker_died_and_leaves_live_ones(registry: Registry) -> None:
    dead = registry.jobs.submit("a", SPEC)
    alive = registry.jobs.submit("b", SPEC)
    elsewhere = registry.jobs.submit("c", SPEC)
    for job, host, pid in ((dead, "here", 111), (alive, "here", 222), (elsewhere, "there", 333)):
        registry.jobs.claim(host, job_id=job.id)
        registry.jobs.attach(job.id, pid)
    registry.jobs.record_epoch(dead.id, 1, {}, checkpointed=True)
    recovered = registry.jobs.recover("here", lambda pid: pid == 222)
    assert [job.id for job in recovered] == [dead.id]
    assert registry.jobs.get(dead.id).state == "queued"
    assert registry.jobs.get(alive.id).state == "running"
    assert registry.jobs.get(elsewhere.id).state == "running"  # fresh heartbeat, other host
    assert "resume from its epoch 1 checkpoint" in registry.jobs.logs(dead.id)[-1].message


def test_recover_gives_up_after_the_last_attempt(registry: Registry) -> None:
    job = registry.jobs.submit("a", SPEC)
    for _ in range(MAX_ATTEMPTS):
        registry.jobs.claim("here", job_id=job.id)
        registry.jobs.attach(job.id, 111)
        registry.jobs.recover("here", lambda pid: False)
    final = registry.jobs.get(job.id)
    assert final.state == "failed"
    assert f"{MAX_ATTEMPTS} times" in final.error


def test_unknown_jobs_and_states_are_refused(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="job 99 not found"):
        registry.jobs.get(99)
    with pytest.raises(InvalidInputError, match="state: unknown 'done'"):
        registry.jobs.list_jobs(state="done")
    with pytest.raises(InvalidInputError):
        registry.jobs.submit("bad name!", SPEC)


def test_list_is_newest_first_and_filters_by_state(registry: Registry) -> None:
    ids = [registry.jobs.submit("m", SPEC).id for _ in range(3)]
    registry.jobs.claim("h")
    assert [job.id for job in registry.jobs.list_jobs()] == ids[::-1]
    assert [job.id for job in registry.jobs.list_jobs(state="running")] == [ids[0]]
    assert [job.id for job in registry.jobs.list_jobs(limit=1)] == [ids[2]]
