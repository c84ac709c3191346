"""``python -m maas.jobs.worker JOB_ID``: run one job (training or an optimisation) and report
it to the registry.

The worker owns the job while it runs: it writes progress (epoch, step, ETA) at most
every ``REPORT_INTERVAL_S``, each epoch's metrics, its log, and a checkpoint after every
epoch (``<home>/jobs/<id>/checkpoint.pt``, written atomically and read back with
``torch.load(weights_only=True)``: tensors and plain values only, never arbitrary
pickles). Each progress write returns the job's cancel flag; a cancelled job stops at
its next step. With ``--parent PID`` the worker dies with that process (the server), so
a killed server leaves no orphan training; the restarted server resumes the job.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import torch

from maas.config import Settings
from maas.errors import MaasError, describe
from maas.jobs.kinds import TrainSpec, parse_job
from maas.optimize.jobs import run_optimization
from maas.registry.entities import Job
from maas.registry.jobs import JobBook
from maas.registry.service import Registry
from maas.training.language.pipeline import train_language_model
from maas.training.language.spec import LanguageModelSpec
from maas.training.pipeline import TrainingHooks, train_job
from maas.training.trainer import EpochReport

__all__ = ["JobCancelled", "checkpoint_path", "run_job"]

REPORT_INTERVAL_S: Final = 0.5
_PR_SET_PDEATHSIG: Final = 1


class JobCancelled(Exception):
    """Raised from the training loop's step hook when the job's cancel flag is set."""


def checkpoint_path(jobs_dir: Path, job_id: int) -> Path:
    return jobs_dir / str(job_id) / "checkpoint.pt"


class _JobLogHandler(logging.Handler):
    """``maas.*`` log records at INFO and above become lines of the job's log."""

    def __init__(self, jobs: JobBook, job_id: int) -> None:
        super().__init__(logging.INFO)
        self._jobs, self._job_id = jobs, job_id

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._jobs.log(self._job_id, record.getMessage(), record.levelname.lower())
        except Exception:
            self.handleError(record)


class _Reporter:
    """The training hooks of one job: progress, epoch history, checkpoints, cancellation."""

    def __init__(self, jobs: JobBook, job: Job, checkpoint: Path) -> None:
        self._jobs, self._job, self._checkpoint = jobs, job, checkpoint
        self._started = time.monotonic()
        self._steps_done = 0
        self._steps = 0
        self._last_report = 0.0
        self._last_epoch: EpochReport | None = None

    def _eta_s(self, epoch: int, step: int) -> float:
        """Seconds left at this attempt's pace so far (early stopping may end sooner)."""
        remaining = (self._job.epochs - epoch) * self._steps + (self._steps - step)
        elapsed = time.monotonic() - self._started
        return round(elapsed / max(1, self._steps_done) * max(0, remaining), 1)

    def on_step(self, epoch: int, step: int, steps: int) -> None:
        self._steps_done += 1
        self._steps = steps
        now = time.monotonic()
        if now - self._last_report < REPORT_INTERVAL_S:
            return
        self._last_report = now
        cancelled = self._jobs.report(
            self._job.id,
            epoch=epoch - 1,
            epochs=self._job.epochs,
            step=step,
            steps=steps,
            eta_s=self._eta_s(epoch, step),
        )
        if cancelled:
            raise JobCancelled

    def on_epoch(self, report: EpochReport) -> None:
        self._last_epoch = report

    def checkpoint(self, epoch: int, state: dict[str, Any]) -> None:
        """Save the resumable state, then record the epoch (so history never runs ahead)."""
        self._checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = self._checkpoint.with_suffix(".tmp")
        torch.save(state, partial)
        os.replace(partial, self._checkpoint)
        report = self._last_epoch
        metrics = {} if report is None else asdict(report)
        for key in ("epoch", "epochs"):
            metrics.pop(key, None)
        self._jobs.record_epoch(self._job.id, epoch, metrics, checkpointed=True)
        logging.getLogger("maas.jobs").info(
            "epoch %d/%d: train_loss %.4f  val_loss %.4f  val_accuracy %.4f  (%.1f s)",
            epoch,
            self._job.epochs,
            metrics.get("train_loss", float("nan")),
            metrics.get("val_loss", float("nan")),
            metrics.get("val_accuracy", float("nan")),
            metrics.get("seconds", float("nan")),
        )
        if self._jobs.report(
            self._job.id,
            epoch=epoch,
            epochs=self._job.epochs,
            step=0,
            steps=self._steps,
            eta_s=self._eta_s(epoch, self._steps),
            metrics=metrics,
        ):
            raise JobCancelled


def _resume_state(job: Job, path: Path) -> dict[str, Any] | None:
    if not job.checkpoint_epoch or not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, weights_only=True)
    logging.getLogger("maas.jobs").info(
        "resuming from the checkpoint after epoch %d", state["epoch"]
    )
    return state


def run_job(registry: Registry, job: Job, jobs_dir: Path) -> Job:
    """Run ``job`` (already claimed, state running) to its end state, which is returned."""
    jobs = registry.jobs
    path = checkpoint_path(jobs_dir, job.id)
    handler = _JobLogHandler(jobs, job.id)
    logger = logging.getLogger("maas")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        spec = parse_job(job.spec)
        reporter = _Reporter(jobs, job, path)
        hooks = TrainingHooks(
            on_epoch=reporter.on_epoch,
            on_step=reporter.on_step,
            checkpoint=reporter.checkpoint,
            resume_from=_resume_state(job, path),
            lineage={"job": job.id},
        )
        if isinstance(spec, TrainSpec):
            version = train_job(registry, spec, hooks=hooks)
        elif isinstance(spec, LanguageModelSpec):
            version = train_language_model(registry, spec, hooks)
        else:
            version = run_optimization(registry, spec, hooks)
    except JobCancelled:
        return jobs.finish(job.id, "cancelled")
    except MaasError as error:
        return jobs.finish(job.id, "failed", error=error.message)
    except Exception as error:
        # The job's record (its error and log, which the API shows) gets one line; the
        # traceback goes to this process's stderr, the worker.log the server keeps.
        traceback.print_exc()
        said = f"the job failed unexpectedly: {describe(error)} (the job's worker.log says more)"
        jobs.log(job.id, said, "error")
        return jobs.finish(job.id, "failed", error=said)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)  # as it was: run_job also runs inside other processes (tests)
    scalars = {k: v for k, v in version.metrics.items() if isinstance(v, int | float)}
    return jobs.finish(job.id, "succeeded", version=version.version, metrics=scalars)


def _die_with(parent: int) -> None:
    """Ask Linux to SIGKILL this process when ``parent`` dies; then check it has not already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        raise SystemExit(f"parent {parent} is gone before the job started")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m maas.jobs.worker", description=__doc__)
    parser.add_argument("job_id", type=int, help="The job to run.")
    parser.add_argument(
        "--parent", type=int, help="Die when this process dies (the server that started us)."
    )
    parser.add_argument(
        "--claim", action="store_true", help="Claim the job from the queue first (CLI runs)."
    )
    args = parser.parse_args(argv)
    if args.parent:
        _die_with(args.parent)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if settings.job_nice:
        os.nice(settings.job_nice)  # inference in the server goes first on a busy machine
    registry = Registry.from_settings(settings, upgrade=False)
    try:
        if args.claim:
            job = registry.jobs.claim(socket.gethostname(), job_id=args.job_id)
            if job is None:
                return  # someone else (a server's runner) took it first
            registry.jobs.attach(job.id, os.getpid())
        else:
            job = registry.jobs.get(args.job_id)
        if job.state != "running":
            return
        run_job(registry, job, settings.jobs_dir)
    finally:
        registry.close()


if __name__ == "__main__":
    main()
