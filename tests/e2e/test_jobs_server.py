"""Training jobs through a real ``maas serve`` process: submit, watch, cancel, survive a kill.

Every job here trains for real (digits, fixed seeds) in the worker processes the server
starts; the server keeps answering inference meanwhile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from maas.control.uploads import register_upload
from maas.jobs.runner import pid_alive
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process

pytestmark = [pytest.mark.e2e]
torch = pytest.importorskip("torch")

JOB_TIMEOUT_S = 240.0
QUICK = {"model_name": "quick", "hyperparameters": {"epochs": 5}}
# Many small steps: long enough to cancel or kill half-way, with a checkpoint every epoch.
SLOW = {"model_name": "slow", "hyperparameters": {"epochs": 40, "batch_size": 4}}
RESUMABLE = {"model_name": "resumable", "hyperparameters": {"epochs": 8, "batch_size": 8}}
INFER = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1.0, 2.0, 3.0, 4.0]}]
}


def _home(path: Path) -> Path:
    """A home with a served model (``linear``) to predict with while jobs train."""
    registry = Registry(f"sqlite:///{path}/maas.db", LocalStore(path / "artifacts"))
    try:
        registry.upgrade()
        register_upload(registry, "linear", write_linear_model(path / "linear.onnx"), actor="t")
    finally:
        registry.close()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return _home(tmp_path / "home")


@pytest.fixture
def server(home: Path) -> Iterator[httpx.Client]:
    with (
        open(home / "server.log", "wb") as log,
        serve_process(home, output=log) as process,
        httpx.Client(base_url=process.url, timeout=30) as client,
    ):
        yield client


def _submit(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    reply = client.post("/api/jobs", json=spec)
    assert reply.status_code == 201, reply.text
    job: dict[str, Any] = reply.json()
    return job


def _wait(client: httpx.Client, job_id: int, until: Any, timeout_s: float = JOB_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached the condition; last: {job}")


def _ended(job: dict[str, Any]) -> bool:
    return job["state"] in ("succeeded", "failed", "cancelled")


def test_a_job_trains_registers_and_is_served(server: httpx.Client) -> None:
    job = _submit(server, QUICK)
    assert (job["state"], job["epochs"], job["actor"]) == ("queued", 5, "api:127.0.0.1")
    done = _wait(server, job["id"], _ended)
    assert done["state"] == "succeeded", done["error"]
    assert done["version"] == 1 and done["metrics"]["accuracy"] >= 0.85
    history = server.get(f"/api/jobs/{job['id']}/metrics").json()["epochs"]
    assert [e["epoch"] for e in history] == [1, 2, 3, 4, 5]
    assert history[-1]["val_accuracy"] > history[0]["val_accuracy"]
    lines = [line["message"] for line in server.get(f"/api/jobs/{job['id']}/logs").json()["lines"]]
    assert lines[0] == "queued by api:127.0.0.1" and lines[-1] == "succeeded: registered version 1"
    version = server.get("/api/models/quick/versions/1").json()
    assert version["lineage"]["job"] == job["id"]
    image = np.zeros((1, 64), dtype=np.float32).ravel().tolist()
    request = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": image}]}
    deadline = time.monotonic() + 30  # the server picks new versions up on its refresh
    while (reply := server.post("/v2/models/quick/infer", json=request)).status_code == 404:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert reply.status_code == 200, reply.text


def test_inference_keeps_answering_while_a_job_trains(server: httpx.Client) -> None:
    job = _submit(server, SLOW)
    running = _wait(server, job["id"], lambda j: j["state"] == "running" and j["step"] > 0)
    answered, deadline = 0, time.monotonic() + JOB_TIMEOUT_S
    while answered < 200 or (now := server.get(f"/api/jobs/{job['id']}").json())["epoch"] < 2:
        assert time.monotonic() < deadline, "the job did not get through two epochs"
        reply = server.post("/v2/models/linear/infer", json=INFER, timeout=5)
        assert reply.status_code == 200, reply.text
        answered += 1
        if answered % 50 == 0:
            state = server.get(f"/api/jobs/{job['id']}").json()["state"]
            assert state == "running", f"the job ended ({state}) while we predicted"
    assert now["state"] == "running" and now["epoch"] > running["epoch"]  # it trained meanwhile
    assert now["eta_s"] is None or now["eta_s"] > 0
    server.post(f"/api/jobs/{job['id']}/cancel")


def test_a_running_job_is_cancelled_at_its_next_step(server: httpx.Client, home: Path) -> None:
    job = _submit(server, SLOW)
    running = _wait(server, job["id"], lambda j: j["state"] == "running" and j["step"] > 0)
    worker_pid = int(running["worker"].rsplit(":", 1)[1])
    # The worker trains at a lower CPU priority than the server (MAAS_JOB_NICE, default 10).
    assert os.getpriority(os.PRIO_PROCESS, worker_pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    reply = server.post(f"/api/jobs/{job['id']}/cancel")
    assert reply.status_code == 200 and reply.json()["cancel_requested"] is True
    cancelled = _wait(server, job["id"], _ended, timeout_s=30)
    assert cancelled["state"] == "cancelled"
    deadline = time.monotonic() + 10
    while pid_alive(worker_pid):
        assert time.monotonic() < deadline, "the worker process outlived its cancelled job"
        time.sleep(0.1)
    assert server.get("/api/models/slow").status_code == 404  # nothing was registered
    again = server.post(f"/api/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "conflict"


def test_bad_specs_are_refused_naming_the_field_and_nothing_is_queued(
    server: httpx.Client, home: Path
) -> None:
    csv_file = home / "data.csv"  # the server runs in home: jobs may read below it
    csv_file.write_text("a,b,label\n1,2,x\n3,oops,y\n" * 10)
    cases = {
        "dataset.path": {"dataset": {"kind": "npz", "path": str(home / "missing.npz")}},
        "dataset.label_column": {
            "dataset": {"kind": "csv", "path": str(csv_file), "label_column": "nope"}
        },
        "model.name": {"model": {"name": "transformer"}},
        "hyperparameters.epochs": {"hyperparameters": {"epochs": 0}},
        "init_from": {"init_from": "nope:1"},
    }
    for field, spec in cases.items():
        reply = server.post("/api/jobs", json=spec)
        assert reply.status_code == 400, reply.text
        body = reply.json()
        assert (body["code"], body["details"]["field"]) == ("invalid_input", field), body
        assert body["error"].startswith(field)
    uploaded = server.post("/api/jobs", json={"init_from": "linear:1"})  # ONNX only: no weights
    assert uploaded.status_code == 400 and "no TorchScript weights" in uploaded.json()["error"]
    relative = server.post("/api/jobs", json={"dataset": {"kind": "npz", "path": "x.npz"}})
    assert relative.status_code == 400 and relative.json()["details"]["field"] == "dataset.path"
    assert server.get("/api/jobs").json() == []


def test_a_job_resumes_from_its_checkpoint_after_the_server_is_killed(home: Path) -> None:
    with open(home / "server.log", "ab") as log:
        with serve_process(home, output=log) as first:
            client = httpx.Client(base_url=first.url, timeout=30)
            job = _submit(client, RESUMABLE)
            waiting = _submit(client, QUICK)  # queued behind it: one job at a time
            checkpointed = _wait(client, job["id"], lambda j: j["checkpoint_epoch"] >= 2)
            assert client.get(f"/api/jobs/{waiting['id']}").json()["state"] == "queued"
            os.kill(first.pid, signal.SIGKILL)
            client.close()
        worker_pid = int(checkpointed["worker"].rsplit(":", 1)[1])
        deadline = time.monotonic() + 10
        while pid_alive(worker_pid):  # the worker dies with its server: no orphan training
            assert time.monotonic() < deadline, "the worker outlived the killed server"
            time.sleep(0.1)
        with (
            serve_process(home, output=log) as second,
            httpx.Client(base_url=second.url, timeout=30) as client,
        ):
            done = _wait(client, job["id"], _ended)
            assert done["state"] == "succeeded", done["error"]
            assert done["attempts"] == 2
            history = client.get(f"/api/jobs/{job['id']}/metrics").json()["epochs"]
            assert [e["epoch"] for e in history] == list(range(1, 9))
            lines = [
                line["message"]
                for line in client.get(f"/api/jobs/{job['id']}/logs").json()["lines"]
            ]
            assert any(
                "died with the server process; will resume from its epoch" in m for m in lines
            )
            assert any(m.startswith("resuming from the checkpoint after epoch") for m in lines)
            after = _wait(client, waiting["id"], _ended)  # the queue survived the kill too
            assert (after["state"], after["attempts"]) == ("succeeded", 1), after["error"]


def test_the_cli_submits_to_the_running_server_and_follows_it(
    server: httpx.Client, home: Path, tmp_path: Path
) -> None:
    """The server of this configuration (same home: same registry) gets the job."""
    port = str(server.base_url.port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env.update({"MAAS_HOME": str(home), "MAAS_PORT": port, "COLUMNS": "200"})
    maas = Path(sys.executable).parent / "maas"
    result = subprocess.run(
        [str(maas), "train", "--epochs", "2", "--name", "via-server"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"queued on the server at http://127.0.0.1:{port}" in result.stdout
    assert "registered via-server version 1" in result.stdout
    listed = subprocess.run(
        [str(maas), "--server", str(server.base_url), "jobs", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0 and "via-server" in listed.stdout, listed.stderr
    missing = subprocess.run(
        [str(maas), "--server", str(server.base_url), "jobs", "show", "999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1 and "job 999 not found" in missing.stderr


def test_jobs_over_http_read_only_the_server_data_folders_and_import_no_user_code(
    server: httpx.Client, home: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a,label\n1,x\n")
    escapes = {
        str(outside): "outside the folders this server lets jobs read",
        str(home / ".." / outside.name): "outside the folders",
        "/etc/passwd": "outside the folders",
    }
    link = home / "link.csv"
    link.symlink_to(outside)  # a symlink below home does not make its target readable
    escapes[str(link)] = "outside the folders"
    for path, words in escapes.items():
        spec = {"dataset": {"kind": "csv", "path": path, "label_column": "label"}}
        reply = server.post("/api/jobs", json=spec)
        assert reply.status_code == 400, reply.text
        assert reply.json()["details"]["field"] == "dataset.path" and words in reply.json()["error"]
    factory = server.post("/api/jobs", json={"model": {"name": "os:system"}})
    assert factory.status_code == 400 and factory.json()["details"]["field"] == "model.name"
    assert "MAAS_JOB_FACTORY_MODULES" in factory.json()["error"]
    assert server.get("/api/jobs").json() == []
