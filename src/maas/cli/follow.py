"""Following a job in the terminal: a live progress bar, one table row per epoch, its log.

Polls the job (through either target) until it ends. Ctrl-C detaches: the job goes on,
and ``maas jobs follow ID`` picks it up again. Ctrl-C does not raise into whatever call is
under way (a database read, an HTTP request): while following, SIGINT only sets a flag
that the loop reads between polls, so detaching always happens at the same safe point.
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from maas.cli.console import console

if TYPE_CHECKING:
    from maas.client import Job, JobLogLine

__all__ = ["TERMINAL", "JobSource", "follow_job", "job_summary"]

TERMINAL: Final = frozenset({"succeeded", "failed", "cancelled"})
_POLL_S: Final = 0.5
_EPOCH_COLUMNS: Final = ("train_loss", "val_loss", "val_accuracy", "seconds")
_EPOCH_LINE: Final = re.compile(r"epoch (\d+)/\d+: ")
_STATE_STYLE: Final = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


class JobSource(Protocol):
    """What following needs (both targets have it)."""

    def get_job(self, job_id: int) -> Job: ...
    def job_epochs(self, job_id: int) -> list[dict[str, Any]]: ...
    def job_logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[JobLogLine]: ...


@contextmanager
def _interrupt_flag() -> Iterator[threading.Event]:
    """While inside: Ctrl-C sets the event instead of raising KeyboardInterrupt."""
    pressed = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.set())
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def _eta(job: Job) -> str:
    if job.eta_s is None:
        return ""
    minutes, seconds = divmod(int(job.eta_s), 60)
    return f"ETA {minutes}:{seconds:02d}"


def _epoch_row(epoch: dict[str, Any]) -> str:
    cells = [f"{epoch['epoch']:>5}"] + [
        f"{epoch[name]:>12.4f}" if isinstance(epoch.get(name), int | float) else f"{'-':>12}"
        for name in _EPOCH_COLUMNS
    ]
    return " ".join(cells)


def job_summary(job: Job) -> str:
    """One line: id, state, model, progress."""
    style = _STATE_STYLE.get(job.state, "white")
    progress = f"epoch {job.epoch}/{job.epochs}"
    if job.state == "running" and job.steps:
        progress += f", step {job.step}/{job.steps}"
    result = f" -> version {job.version}" if job.version else ""
    return f"job {job.id} [{style}]{job.state}[/] {job.model} {progress}{result}"


def _final_table(job: Job) -> Table:
    table = Table("metric", "value", title=f"{job.model} version {job.version}")
    for key, value in job.metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
    return table


def follow_job(source: JobSource, job_id: int) -> Job:
    """Show the job live until it ends (or Ctrl-C detaches); returns its last state.

    Log lines and epoch rows print in the order they happened: an ``epoch N/M`` log line
    is where the rows up to epoch N go.
    """
    job = source.get_job(job_id)
    shown_epochs, last_log = 0, 0
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with _interrupt_flag() as pressed, Progress(*columns, console=console, transient=True) as bar:

        def print_epochs(up_to: int) -> None:
            nonlocal shown_epochs
            if up_to <= shown_epochs:
                return
            for epoch in source.job_epochs(job_id)[shown_epochs:]:
                if shown_epochs == 0:
                    names = "".join(f"{name:>13}" for name in _EPOCH_COLUMNS)
                    bar.console.print(f"[bold]epoch{names}[/]")
                bar.console.print(_epoch_row(epoch), highlight=False)
                shown_epochs = epoch["epoch"]

        task = bar.add_task(f"job {job_id}", total=max(1, job.epochs), detail="")
        while not pressed.is_set():
            for line in source.job_logs(job_id, after=last_log):
                last_log = line.id
                epoch_line = _EPOCH_LINE.match(line.message)
                if epoch_line:
                    print_epochs(int(epoch_line.group(1)))
                    continue
                style = {"error": "red", "warning": "yellow"}.get(line.level, "dim")
                bar.console.print(f"[{style}]{escape(line.message)}[/]", highlight=False)
            fraction = job.step / job.steps if job.steps else 0.0
            bar.update(
                task,
                total=max(1, job.epochs),
                completed=job.epoch + fraction,
                description=f"job {job_id} {job.state}",
                detail=_eta(job),
            )
            if job.state in TERMINAL:
                print_epochs(job.epoch)
                break
            if pressed.wait(_POLL_S):
                break
            job = source.get_job(job_id)
    if pressed.is_set() and job.state not in TERMINAL:
        console.print(
            f"\ndetached; job {job_id} goes on. Follow it again with "
            f"[bold]maas jobs follow {job_id}[/], stop it with [bold]maas jobs cancel {job_id}[/]"
        )
        return job
    if job.state == "succeeded":
        console.print(_final_table(job))
        console.print(
            f"job {job_id} [green]succeeded[/]: registered [bold]{job.model}[/] "
            f"version [bold]{job.version}[/]"
        )
    else:
        console.print(job_summary(job) + (f": {escape(job.error)}" if job.error else ""))
    return job
