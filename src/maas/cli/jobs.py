"""``maas jobs``: list, show, follow, read the log of, cancel and resume training jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.markup import escape
from rich.table import Table

from maas.cli.console import console, fail
from maas.cli.follow import TERMINAL, follow_job, job_summary
from maas.cli.job_client import JobClient, job_client

__all__ = ["SERVER_OPTION", "app"]

app = typer.Typer(
    help="Training jobs: list, show, follow, logs, cancel, resume.", no_args_is_help=True
)

SERVER_OPTION = typer.Option(
    None,
    "--server",
    help="A maas server URL. Default: this configuration's server (MAAS_HOST, MAAS_PORT) "
    "if it answers, else the registry database directly.",
)
JOB_ID = typer.Argument(..., min=1, help="The job id (maas jobs list shows them).")


@contextmanager
def _client(server: str | None) -> Iterator[JobClient]:
    client = job_client(server)
    try:
        yield client
    finally:
        client.close()


@app.command("list")
def list_jobs(
    state: str = typer.Option(None, help="Only jobs in this state (queued, running, ...)."),
    limit: int = typer.Option(20, min=1, max=1000, help="How many, newest first."),
    server: str = SERVER_OPTION,
) -> None:
    """List jobs, newest first, with their state and progress."""
    with _client(server) as client:
        jobs = client.list_jobs(state, limit)
    if not jobs:
        console.print("no jobs yet: submit one with [bold]maas train -f job.yaml[/]")
        return
    table = Table("id", "state", "model", "epoch", "accuracy", "version", "created", title="jobs")
    for job in jobs:
        accuracy = job["metrics"].get("accuracy", job["metrics"].get("val_accuracy"))
        table.add_row(
            str(job["id"]),
            job["state"],
            job["model"],
            f"{job['epoch']}/{job['epochs']}",
            "-" if accuracy is None else f"{accuracy:.4f}",
            str(job["version"] or "-"),
            job["created_at"][:19].replace("T", " "),
        )
    console.print(table)


@app.command("show")
def show(job_id: int = JOB_ID, server: str = SERVER_OPTION) -> None:
    """Show a job: state, progress, ETA, latest metrics, error, result version."""
    with _client(server) as client:
        job = client.get(job_id)
    console.print(job_summary(job))
    if job["eta_s"] is not None:
        console.print(f"ETA {job['eta_s']:.0f} s")
    if job["error"]:
        console.print(f"[red]error:[/] {escape(job['error'])}")
    console.print(
        f"attempts {job['attempts']}, last checkpoint after epoch {job['checkpoint_epoch']}, "
        f"worker {job['worker'] or '-'}, submitted by {job['actor']} at {job['created_at']}"
    )
    if job["metrics"]:
        table = Table("metric", "value", title="latest metrics")
        for key, value in job["metrics"].items():
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(table)


@app.command("follow")
def follow(job_id: int = JOB_ID, server: str = SERVER_OPTION) -> None:
    """Follow a job live until it ends; Ctrl-C detaches (the job goes on)."""
    with _client(server) as client:
        job = follow_job(client, job_id)
    if job["state"] in ("failed", "cancelled"):
        raise typer.Exit(1)


@app.command("logs")
def logs(
    job_id: int = JOB_ID,
    keep_following: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new lines until the job ends."
    ),
    server: str = SERVER_OPTION,
) -> None:
    """Print a job's log."""
    with _client(server) as client:
        last = 0
        while True:
            for line in client.logs(job_id, last):
                last = line["id"]
                console.print(
                    f"{line['at'][11:19]} {line['level']:<7} {escape(line['message'])}",
                    highlight=False,
                    soft_wrap=True,
                )
            if not keep_following or client.get(job_id)["state"] in TERMINAL:
                return
            time.sleep(0.5)


@app.command("cancel")
def cancel(job_id: int = JOB_ID, server: str = SERVER_OPTION) -> None:
    """Cancel a job: a queued one at once, a running one at its next training step."""
    with _client(server) as client:
        job = client.cancel(job_id)
    if job["state"] == "cancelled":
        console.print(f"job {job_id} cancelled")
    else:
        console.print(f"job {job_id} is stopping (it stops at its next training step)")


@app.command("resume")
def resume(
    job_id: int = JOB_ID,
    detach: bool = typer.Option(False, "--detach", "-d", help="Do not follow it."),
    server: str = SERVER_OPTION,
) -> None:
    """Queue a failed or cancelled job again; it continues after its last checkpointed epoch."""
    with _client(server) as client:
        job = client.resume(job_id)
        where = (
            f"after epoch {job['checkpoint_epoch']}"
            if job["checkpoint_epoch"]
            else "from the start"
        )
        console.print(f"job {job_id} queued again on {client.where}; it resumes {where}")
        if not detach:
            final = follow_job(client, job_id)
            if final["state"] in ("failed", "cancelled"):
                fail(f"job {job_id} {final['state']}")
