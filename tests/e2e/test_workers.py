"""``maas serve --workers 2``: several processes share the REST port and all answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir():
        children = (task / "children").read_text().split()
        found.extend(int(c) for c in children)
    return found


def test_two_worker_processes_serve_the_same_port(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    registry.upgrade()
    register_upload(registry, "lin", write_linear_model(tmp_path / "m.onnx"), actor="t")
    registry.close()
    with serve_process(tmp_path, workers=2) as server:
        body = {
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]
        }
        for _ in range(20):  # new connections each time: the kernel spreads them over workers
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.post("/v2/models/lin/infer", json=body).status_code == 200
        workers = _children(server.pid)  # uvicorn's supervisor forks one child per worker
        assert len(workers) >= 2
