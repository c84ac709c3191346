"""A Rich progress bar that follows a training run epoch by epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from maas.cli.console import console
from maas.training.trainer import EpochReport

__all__ = ["epoch_progress"]


@contextmanager
def epoch_progress(title: str, epochs: int) -> Iterator[Callable[[EpochReport], None]]:
    """Yield an ``on_epoch`` callback that advances a bar and prints loss and accuracy."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(title, total=epochs, stats="")

        def on_epoch(report: EpochReport) -> None:
            progress.update(
                task,
                completed=report.epoch,
                stats=f"loss {report.train_loss:.4f}  val_acc {report.val_accuracy:.4f}",
            )

        yield on_epoch
