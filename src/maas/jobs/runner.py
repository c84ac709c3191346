"""Running queued jobs: the interface the server drives, and a runner of local worker processes.

``JobRunner`` is all the server knows; a Ray backend implements the same three calls
(claim from the same table, run the worker module as a Ray task). ``LocalJobRunner``
keeps at most ``settings.job_concurrency`` worker processes (``python -m
maas.jobs.worker``) going from a background thread: training never holds the serving
process's GIL or event loop, so inference keeps being answered while a job trains.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from maas.config import Settings
from maas.registry.jobs import JobBook

__all__ = ["JobRunner", "LocalJobRunner", "pid_alive", "spawn_worker"]

_log = logging.getLogger("maas.jobs")
CANCEL_GRACE_S: Final = 15.0
STOP_GRACE_S: Final = 5.0
_OUTPUT_TAIL_BYTES: Final = 2000


class JobRunner(Protocol):
    """What the server needs from whatever executes jobs."""

    def start(self) -> None:
        """Recover jobs a dead process left running, then start taking queued jobs."""

    def wake(self) -> None:
        """A job was queued or cancelled: look now rather than at the next poll."""

    def stop(self) -> None:
        """Stop running jobs (they go back to the queue, to resume from a checkpoint)."""


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (and is not a zombie of ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return status != "Z"


def spawn_worker(
    job_id: int, settings: Settings, *, parent: int | None, claim: bool = False
) -> subprocess.Popen[bytes]:
    """Start ``python -m maas.jobs.worker``; its raw output goes to ``<job dir>/worker.log``.

    The worker gets its own session, so a Ctrl-C meant for the server (or the CLI that
    started it) does not reach it; with ``parent`` it still dies with that process.
    """
    folder = settings.jobs_dir / str(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "maas.jobs.worker", str(job_id)]
    if parent is not None:
        command += ["--parent", str(parent)]
    if claim:
        command.append("--claim")
    with open(folder / "worker.log", "ab") as output:
        return subprocess.Popen(
            command,
            # A job runs user code (a factory, a dataset reader): it gets no API key.
            env={k: v for k, v in os.environ.items() if k != "MAAS_API_KEY"}
            | settings.as_environment(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, path.stat().st_size - _OUTPUT_TAIL_BYTES))
            return file.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


@dataclass
class _Running:
    process: subprocess.Popen[bytes]
    cancel_seen_at: float | None = None


class LocalJobRunner:
    """Runs queued jobs in worker processes on this host, ``concurrency`` at a time.

    >>> runner = LocalJobRunner(registry.jobs, settings)  # doctest: +SKIP
    >>> runner.start(); ...; runner.stop()  # doctest: +SKIP
    """

    def __init__(self, jobs: JobBook, settings: Settings, *, poll_interval_s: float = 1.0) -> None:
        self._jobs = jobs
        self._settings = settings
        self._concurrency = settings.job_concurrency
        self._poll_interval_s = poll_interval_s
        self._host = socket.gethostname()
        self._running: dict[int, _Running] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._concurrency == 0:
            return  # another process sharing the database runs (and recovers) the jobs
        for job in self._jobs.recover(self._host, pid_alive):
            _log.warning(
                "job %d: its worker died with a previous server; now %s", job.id, job.state
            )
        self._thread = threading.Thread(target=self._loop, name="maas-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        for job_id, running in self._running.items():
            self._terminate(running.process)
            self._jobs.requeue(job_id, "the server stopped; it resumes when a server starts again")
        self._running.clear()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._tick()
            except Exception:  # the database may be briefly unavailable: try again later
                _log.exception("job runner: this pass failed; retrying")
            self._wake.wait(self._poll_interval_s)
            self._wake.clear()

    def _tick(self) -> None:
        self._reap()
        self._enforce_cancels()
        while len(self._running) < self._concurrency and not self._stopping.is_set():
            job = self._jobs.claim(self._host)
            if job is None:
                return
            process = spawn_worker(job.id, self._settings, parent=os.getpid())
            self._jobs.attach(job.id, process.pid)
            self._running[job.id] = _Running(process)
            _log.info("job %d (%s): started worker %d", job.id, job.model_name, process.pid)

    def _reap(self) -> None:
        """A worker that exited while its job is still running died abnormally."""
        for job_id, running in list(self._running.items()):
            code = running.process.poll()
            if code is None:
                continue
            del self._running[job_id]
            job = self._jobs.get(job_id)
            if job.state != "running":
                continue
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            if job.cancel_requested:
                self._jobs.finish(job_id, "cancelled")
                continue
            # Its output (a traceback, paths) is for the server's log, not the job's record.
            tail = _tail(self._settings.jobs_dir / str(job_id) / "worker.log")
            _log.warning(
                "job %d: its worker ended with %s; its output ends:\n%s", job_id, how, tail
            )
            error = f"the worker process ended with {how} before finishing the job"
            self._jobs.finish(job_id, "failed", error=error + " (the server's log says why)")

    def _enforce_cancels(self) -> None:
        """A cancelled job stops at its next step; one that does not within the grace is killed."""
        now = time.monotonic()
        for job_id, running in self._running.items():
            if running.cancel_seen_at is None:
                if self._jobs.get(job_id).cancel_requested:
                    running.cancel_seen_at = now
            elif now - running.cancel_seen_at > CANCEL_GRACE_S:
                running.process.kill()

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
