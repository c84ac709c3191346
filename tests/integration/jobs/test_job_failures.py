"""A job that fails in a way nobody foresaw records one line, never a traceback, an
exception class or a server path; the whole story goes to the worker's output, which the
server keeps (``<home>/jobs/<id>/worker.log``) and logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from maas.config import Settings
from maas.jobs.runner import LocalJobRunner
from maas.jobs.worker import run_job
from maas.registry import Registry
from maas.registry.entities import Job

pytest.importorskip("torch")

_SPEC = {"model": {"name": "failing_factories:build"}, "hyperparameters": {"epochs": 1}}
_FACTORIES = """
import os, sys

def build(**_):
    raise RuntimeError("cannot open {secret}/weights.bin")

if os.environ.get("DIE_ON_IMPORT"):
    sys.stderr.write('Traceback (most recent call last):\\n  File "{secret}/x.py"\\n')
    sys.stderr.flush()
    os._exit(3)
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    code = tmp_path / "code"
    code.mkdir()
    secret = tmp_path / "server-private"
    (code / "failing_factories.py").write_text(_FACTORIES.format(secret=secret), encoding="utf-8")
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv("PYTHONPATH", str(code))  # for worker processes
    return Settings(home=tmp_path / "home")


@pytest.fixture
def registry(settings: Settings) -> Registry:
    return Registry.from_settings(settings)


def _assert_clean(text: str, tmp_path: Path) -> None:
    for leak in ("Traceback", 'File "', "RuntimeError", str(tmp_path), "server-private"):
        assert leak not in text, (leak, text)


def test_an_unexpected_exception_fails_the_job_in_one_line(
    registry: Registry, settings: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    registry.jobs.submit("m", _SPEC)
    job = registry.jobs.claim("here")
    assert job is not None
    level = logging.getLogger("maas").level
    done = run_job(registry, job, settings.jobs_dir)
    assert logging.getLogger("maas").level == level  # it once stayed at INFO, for the process
    assert done.state == "failed"
    assert done.error == (
        "the job failed unexpectedly: cannot open weights.bin (the job's worker.log says more)"
    )
    _assert_clean(done.error, tmp_path)
    _assert_clean("\n".join(line.message for line in registry.jobs.logs(job.id)), tmp_path)
    assert "Traceback" in capfd.readouterr().err  # the worker's own output keeps it
    registry.close()


def _finished(registry: Registry, job_id: int, timeout_s: float = 120.0) -> Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = registry.jobs.get(job_id)
        if job.state in ("failed", "succeeded", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def test_a_worker_that_dies_fails_its_job_without_its_output(
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The job's error carried the tail of the worker's output: a traceback and paths."""
    monkeypatch.setenv("DIE_ON_IMPORT", "1")
    job = registry.jobs.submit("m", _SPEC)
    runner = LocalJobRunner(registry.jobs, settings, poll_interval_s=0.1)
    with caplog.at_level(logging.WARNING, logger="maas.jobs"):
        runner.start()
        try:
            done = _finished(registry, job.id)
        finally:
            runner.stop()
    assert done.state == "failed"
    assert done.error == (
        "the worker process ended with exit code 3 before finishing the job "
        "(the server's log says why)"
    )
    _assert_clean(done.error, tmp_path)
    assert "server-private" in caplog.text  # the server's log has the worker's last words
    registry.close()
