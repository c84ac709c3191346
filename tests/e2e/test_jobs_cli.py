"""``maas train`` and ``maas jobs`` as a user runs them: real processes, a real registry.

No server is running here (each call gets a free port), so the CLI queues the job in the
registry and starts a worker process itself; ``test_jobs_server`` covers the server.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from maas.registry import Registry
from tests.e2e.test_cli import MAAS, _env, maas, ok, one_error_line, open_registry

pytestmark = pytest.mark.e2e
torch = pytest.importorskip("torch")

SLOW_SPEC = """\
model_name: slow
model: {name: mlp, options: {hidden: [32]}}
dataset: {kind: digits}
hyperparameters: {epochs: 40, batch_size: 4, optimizer: sgd, learning_rate: 0.01}
"""
# Long enough to cancel after its first checkpoint, short enough to resume to the end.
RESUMABLE_SPEC = SLOW_SPEC.replace("epochs: 40, batch_size: 4", "epochs: 8, batch_size: 8")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _job_state(home: Path, job_id: int) -> str:
    registry = open_registry(home)
    try:
        return registry.jobs.get(job_id).state
    finally:
        registry.close()


def _wait_state(home: Path, job_id: int, states: set[str], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while (state := _job_state(home, job_id)) not in states:
        assert time.monotonic() < deadline, f"job {job_id} stuck in {state}"
        time.sleep(0.2)
    return state


def test_train_follows_the_job_to_a_registered_version(tmp_path: Path, home: Path) -> None:
    out = ok(maas(tmp_path, "train", "--epochs", "3", "--name", "quick", timeout_s=180))
    assert "job 1 queued" in out
    assert "epoch   train_loss" in out  # the per-epoch table
    lines = out.splitlines()
    last_row = next(i for i, line in enumerate(lines) if line.startswith("    3 "))
    exporting = next(i for i, line in enumerate(lines) if line.startswith("exporting ONNX"))
    assert last_row < exporting, out  # rows and log lines in the order they happened
    assert "job 1 succeeded: registered quick version 1" in out
    registry: Registry = open_registry(home)
    try:
        [version] = registry.list_versions("quick")
        assert version.lineage["job"] == 1
        assert version.lineage["hyperparameters"]["epochs"] == 3
        assert [e["epoch"] for e in registry.jobs.epochs(1)] == [1, 2, 3]
    finally:
        registry.close()
    listed = ok(maas(tmp_path, "jobs", "list"))
    assert "succeeded" in listed and "quick" in listed
    assert "job 1 succeeded quick epoch 3/3 -> version 1" in ok(maas(tmp_path, "jobs", "show", "1"))
    assert "succeeded: registered version 1" in ok(maas(tmp_path, "jobs", "logs", "1"))


def test_detach_cancel_and_resume_from_the_checkpoint(tmp_path: Path, home: Path) -> None:
    """The job is held at a gate (its model's forward waits while a file exists) once its
    first checkpoint is written, so the cancel lands mid-training however slow the machine:
    without the gate a loaded machine let the job finish first (it succeeded)."""
    gate = tmp_path / "gate"
    spec = tmp_path / "resumable.yaml"
    spec.write_text(
        RESUMABLE_SPEC.replace(
            "model: {name: mlp, options: {hidden: [32]}}",
            f"model: {{name: 'tests.e2e.gated_models:gated_mlp', options: {{gate: '{gate}'}}}}",
        )
    )
    root = str(Path(__file__).resolve().parents[2])  # the worker imports the factory from here
    out = ok(maas(tmp_path, "train", "-f", str(spec), "--detach", timeout_s=120, PYTHONPATH=root))
    assert "maas jobs follow 1" in out
    registry = open_registry(home)
    try:
        deadline = time.monotonic() + 120
        while registry.jobs.get(1).checkpoint_epoch < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        gate.touch()
        assert registry.jobs.get(1).state == "running"
    finally:
        registry.close()
    assert "stopping" in ok(maas(tmp_path, "jobs", "cancel", "1"))
    gate.unlink()
    assert _wait_state(home, 1, {"cancelled", "failed", "succeeded"}) == "cancelled"
    assert "already cancelled" in one_error_line(maas(tmp_path, "jobs", "cancel", "1"))
    resumed = ok(maas(tmp_path, "jobs", "resume", "1", timeout_s=300, PYTHONPATH=root))
    assert "it resumes after epoch" in resumed
    assert "job 1 succeeded: registered slow version 1" in resumed
    logs = ok(maas(tmp_path, "jobs", "logs", "1"))
    assert "resuming from the checkpoint after epoch" in logs


def test_ctrl_c_detaches_without_cancelling(tmp_path: Path, home: Path) -> None:
    """Ctrl-C while following only sets a flag the follow loop reads between polls (it
    never lands inside a database call), so the CLI always exits 0 after detaching; the
    job is shown to go on by an epoch that finishes afterwards."""
    spec = tmp_path / "slow.yaml"
    spec.write_text(SLOW_SPEC)
    process = subprocess.Popen(
        [str(MAAS), "train", "-f", str(spec)],
        cwd=tmp_path,
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # follow until the job has started training
            if line.startswith("epoch "):
                break
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    assert "detached; job 1 goes on" in rest
    # It goes on: another epoch finishes after the CLI has exited (no sleep-and-hope).
    registry = open_registry(home)
    try:
        detached_at = registry.jobs.get(1).epoch
        deadline = time.monotonic() + 120
        while (job := registry.jobs.get(1)).epoch <= detached_at:
            assert job.state == "running", job
            assert time.monotonic() < deadline, "the job stopped progressing after the detach"
            time.sleep(0.2)
    finally:
        registry.close()
    ok(maas(tmp_path, "jobs", "cancel", "1"))
    assert _wait_state(home, 1, {"cancelled"}) == "cancelled"


def test_a_bad_spec_file_is_refused_before_anything_runs(tmp_path: Path, home: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("dataset: {kind: csv, path: missing.csv, label_column: y}\n")
    line = one_error_line(maas(tmp_path, "train", "-f", str(spec)))
    assert line.startswith("error: dataset.path:")
    registry = open_registry(home)
    try:
        registry.upgrade()
        assert registry.jobs.list_jobs() == []
    finally:
        registry.close()


def test_any_spec_field_can_be_set_from_the_command_line(tmp_path: Path, home: Path) -> None:
    import numpy as np

    from maas.training.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "d.npz", x=digits.x_train, y=digits.y_train)
    out = ok(
        maas(
            tmp_path,
            "train",
            "--name", "from-npz",
            "--set", "dataset.kind=npz",
            "--set", "dataset.path=d.npz",  # relative to where the command runs
            "--set", "hyperparameters.epochs=2",
            "--set", "model.options.hidden=[32]",
            timeout_s=180,
        )
    )  # fmt: skip
    assert "from-npz (mlp on npz, 2 epochs)" in out
    registry = open_registry(home)
    try:
        version = registry.get_version("from-npz", 1)
        assert version.lineage["spec"]["dataset"]["path"] == str(tmp_path / "d.npz")
        assert version.lineage["model"] == {"name": "mlp", "options": {"hidden": [32]}}
    finally:
        registry.close()
    refused = one_error_line(maas(tmp_path, "train", "--set", "hyperparameters.epochs=zero"))
    assert refused.startswith("error: hyperparameters.epochs:") and "'zero'" in refused
