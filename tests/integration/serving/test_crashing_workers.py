"""A version whose worker process keeps dying, on a real server: restarted with a growing
delay, then taken out of service with the reason in readiness and the deployments API,
while another model goes on answering."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server

BODY = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def _workers() -> list[int]:
    """This process's worker children (spawned by multiprocessing)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


def _kill_the_worker(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while not (pids := _workers()):
        assert time.monotonic() < deadline, "no worker process came up"
        client.post("/v2/models/crashy/infer", json=BODY)  # the next call starts one
        time.sleep(0.05)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)


def test_a_crash_looping_worker_is_taken_out_of_service_and_others_keep_serving(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    process = {"instances": {"kind": "process"}}
    register_upload(
        local_registry, "crashy", write_linear_model(tmp_path / "c.onnx"), actor="t", config=process
    )
    register_upload(local_registry, "steady", write_linear_model(tmp_path / "s.onnx"), actor="t")
    quick = settings.model_copy(update={"worker_restart_delay_s": 0.2, "worker_max_crashes": 3})
    with running_server(quick, local_registry) as url, httpx.Client(base_url=url, timeout=30) as c:
        assert c.post("/v2/models/crashy/infer", json=BODY).status_code == 200
        answers = []
        for _ in range(3):
            _kill_the_worker(c)
            answers.append(c.post("/v2/models/crashy/infer", json=BODY))
            time.sleep(0.3)  # past the restart delay
        assert all(a.status_code == 503 for a in answers[1:]), [a.text for a in answers]
        deadline = time.monotonic() + 10
        while "failures" not in (ready := c.get("/v2/health/ready").json()):
            assert time.monotonic() < deadline, ready
            time.sleep(0.1)
        (failure,) = ready["failures"]  # the server stays ready: the other model serves
        assert failure["model"] == "crashy" and "3 times in a row" in failure["reason"]
        model_ready = c.get("/v2/models/crashy/versions/1/ready")
        assert model_ready.status_code == 503 and "in a row" in model_ready.json()["reason"]
        rows = c.get("/api/deployments", params={"model": "crashy"}).json()
        assert any("in a row" in (row.get("reason") or "") for row in rows), rows
        assert c.post("/v2/models/steady/infer", json=BODY).status_code == 200
