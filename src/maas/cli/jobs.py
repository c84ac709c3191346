"""``maas jobs``: list, show, follow, read the log of, cancel and resume training jobs."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from maas.cli.console import console
from maas.cli.follow import TERMINAL, follow_job, job_summary
from maas.cli.options import DETACH_OPTION, JSON_OPTION, group
from maas.cli.render import number, print_json, when
from maas.cli.target import describe, open_target

__all__ = ["app"]

app = group("Training jobs: list, show, follow, logs, cancel, resume.")

JOB_ID: Any = typer.Argument(..., min=1, help="The job id (maas jobs list shows them).")


@app.command("list")
def list_jobs(
    state: str = typer.Option(None, help="Only jobs in this state (queued, running, ...)."),
    limit: int = typer.Option(20, min=1, max=1000, help="How many, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List jobs, newest first, with their state and progress."""
    with open_target() as target:
        jobs = target.list_jobs(state=state, limit=limit)
    if as_json:
        print_json(jobs)
        return
    if not jobs:
        console.print("no jobs yet: submit one with [bold]maas train -f job.yaml[/]")
        return
    table = Table("id", "state", "model", "epoch", "accuracy", "version", "created", title="jobs")
    for job in jobs:
        accuracy = job.metrics.get("accuracy", job.metrics.get("val_accuracy"))
        table.add_row(
            str(job.id),
            job.state,
            job.model,
            f"{job.epoch}/{job.epochs}",
            number(accuracy),
            str(job.version or "-"),
            when(job.created_at),
        )
    console.print(table)


@app.command("show")
def show(job_id: int = JOB_ID, as_json: bool = JSON_OPTION) -> None:
    """Show a job: state, progress, ETA, latest metrics, error, result version."""
    with open_target() as target:
        job = target.get_job(job_id)
    if as_json:
        print_json(job)
        return
    console.print(job_summary(job))
    if job.eta_s is not None:
        console.print(f"ETA {job.eta_s:.0f} s")
    if job.error:
        console.print(f"[red]error:[/] {escape(job.error)}")
    console.print(
        f"attempts {job.attempts}, last checkpoint after epoch {job.checkpoint_epoch}, "
        f"worker {job.worker or '-'}, submitted by {job.actor} at {when(job.created_at)}"
    )
    if job.metrics:
        table = Table("metric", "value", title="latest metrics")
        for key, value in job.metrics.items():
            table.add_row(key, number(value))
        console.print(table)


@app.command("follow")
def follow(job_id: int = JOB_ID) -> None:
    """Follow a job live until it ends; Ctrl-C detaches (the job goes on)."""
    with open_target() as target:
        job = follow_job(target, job_id)
    if job.state in ("failed", "cancelled"):
        raise typer.Exit(1)


@app.command("logs")
def logs(
    job_id: int = JOB_ID,
    keep_following: bool = typer.Option(
        False, "--follow", help="Keep printing new lines until the job ends."
    ),
) -> None:
    """Print a job's log."""
    with open_target() as target:
        last = 0
        while True:
            for line in target.job_logs(job_id, after=last):
                last = line.id
                console.print(
                    f"{line.at:%H:%M:%S} {line.level:<7} {escape(line.message)}",
                    highlight=False,
                    soft_wrap=True,
                )
            if not keep_following or target.get_job(job_id).state in TERMINAL:
                return
            time.sleep(0.5)


@app.command("cancel")
def cancel(job_id: int = JOB_ID) -> None:
    """Cancel a job: a queued one at once, a running one at its next training step."""
    with open_target() as target:
        job = target.cancel_job(job_id)
    if job.state == "cancelled":
        console.print(f"job {job_id} cancelled")
    else:
        console.print(f"job {job_id} is stopping (it stops at its next training step)")


@app.command("resume")
def resume(job_id: int = JOB_ID, detach: bool = DETACH_OPTION) -> None:
    """Queue a failed or cancelled job again; it continues after its last checkpointed epoch."""
    with open_target() as target:
        job = target.resume_job(job_id)
        where = f"after epoch {job.checkpoint_epoch}" if job.checkpoint_epoch else "from the start"
        console.print(f"job {job_id} queued again on {describe(target)}; it resumes {where}")
        if not detach and follow_job(target, job_id).state in ("failed", "cancelled"):
            raise typer.Exit(1)
