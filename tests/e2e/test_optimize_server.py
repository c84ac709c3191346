"""Optimisation jobs through a real ``maas serve``: submitted with ``POST /api/jobs`` and a
``kind``, run by the server's job workers, registered as versions that answer over V2 REST
(tritonclient.http) and gRPC (tritonclient.grpc), gated against their parent, promoted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.processes import ServerProcess, serve_process
from maas.training.datasets import load_digits

pytestmark = [pytest.mark.e2e]
pytest.importorskip("torch")

JOB_TIMEOUT_S = 240.0
JOBS: dict[str, dict[str, Any]] = {
    "quantize": {"kind": "quantize", "parent": "digits:1", "method": "static"},
    "prune": {"kind": "prune", "parent": "digits:1", "amount": 0.5, "fine_tune": {"epochs": 2}},
    "distill": {
        "kind": "distill",
        "teacher": "digits:1",
        "student": {"name": "mlp", "options": {"hidden": [32]}},
        "hyperparameters": {"epochs": 20},
    },
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server over a home where ``digits`` v1 (a CNN) was trained by a job of its own."""
    home = tmp_path_factory.mktemp("home")
    Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts")).upgrade()
    with open(home / "server.log", "wb") as log, serve_process(home, output=log) as process:
        with httpx.Client(base_url=process.url, timeout=30) as client:
            parent = _submit(
                client,
                {
                    "model_name": "digits",
                    "model": {"name": "cnn", "options": {"channels": [32, 64]}},
                    "hyperparameters": {"epochs": 8},
                },
            )
            assert _finished(client, parent["id"])["version"] == 1
        yield process


def _submit(client: httpx.Client, document: dict[str, Any]) -> dict[str, Any]:
    reply = client.post("/api/jobs", json=document)
    assert reply.status_code == 201, reply.text
    job: dict[str, Any] = reply.json()
    return job


def _finished(client: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            assert job["state"] == "succeeded", job
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {JOB_TIMEOUT_S:g} s")


def _rows() -> np.ndarray:
    return np.ascontiguousarray(load_digits().x_val[:8], dtype=np.float32)


def _labels_over_rest(server: ServerProcess, version: int) -> np.ndarray:
    client = httpclient.InferenceServerClient(server.http)
    try:
        tensor = httpclient.InferInput("input", [8, 64], "FP32")
        tensor.set_data_from_numpy(_rows(), binary_data=True)
        result = client.infer("digits", [tensor], model_version=str(version))
        labels: np.ndarray = result.as_numpy("label")
        return labels
    finally:
        client.close()


def _labels_over_grpc(server: ServerProcess, version: int) -> np.ndarray:
    client: Any = grpcclient.InferenceServerClient(server.grpc)
    try:
        tensor = grpcclient.InferInput("input", [8, 64], "FP32")
        tensor.set_data_from_numpy(_rows())
        labels: np.ndarray = client.infer("digits", [tensor], model_version=str(version)).as_numpy(
            "label"
        )
        return labels
    finally:
        client.close()


@pytest.mark.parametrize("kind", list(JOBS))
def test_each_method_makes_a_version_that_serves_over_rest_and_grpc(
    server: ServerProcess, kind: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job = _finished(client, _submit(client, JOBS[kind])["id"])
        version = client.get(f"/api/models/digits/versions/{job['version']}").json()
    assert version["lineage"]["parent"]["version"] == 1
    assert version["lineage"]["source"] == kind
    report = version["metrics"]["optimization"]
    assert report["dataset"]["rows"] > 300 and 0.0 < report["agreement"] <= 1.0
    assert version["metrics"]["accuracy"] > 0.85, report
    expected = load_digits().y_val[:8]
    for labels in (
        _labels_over_rest(server, job["version"]),
        _labels_over_grpc(server, job["version"]),
    ):
        assert labels.shape == (8,)
        assert (labels == expected).mean() >= 0.75


def test_promotion_is_gated_on_the_drop_against_the_parent(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        crude = _finished(
            client, _submit(client, {"kind": "prune", "parent": "digits:1", "amount": 0.85})["id"]
        )
        gate = {"rules": [{"metric": "accuracy", "max_drop_vs_parent": 0.01}]}
        assert client.put("/api/models/digits/gate", json=gate).status_code == 200
        refused = client.put(
            "/api/models/digits/aliases/production", json={"version": crude["version"]}
        )
        assert refused.status_code == 409, refused.text
        assert "below its parent's" in refused.json()["error"]
        good = _finished(client, _submit(client, JOBS["quantize"])["id"])
        moved = client.put(
            "/api/models/digits/aliases/production", json={"version": good["version"]}
        )
        assert moved.status_code == 200, moved.text


def test_a_running_optimisation_can_be_cancelled_and_registers_nothing(
    server: ServerProcess,
) -> None:
    slow = {
        "kind": "distill",
        "teacher": "digits:1",
        "model_name": "never",
        "hyperparameters": {"epochs": 300, "batch_size": 4},
    }
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job = _submit(client, slow)
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (seen := client.get(f"/api/jobs/{job['id']}").json())["step"] == 0:
            assert seen["state"] in ("queued", "running"), seen
            assert time.monotonic() < deadline, seen
            time.sleep(0.2)
        assert seen["epochs"] == 300
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (seen := client.get(f"/api/jobs/{job['id']}").json())["state"] == "running":
            assert time.monotonic() < deadline, seen
            time.sleep(0.2)
        assert seen["state"] == "cancelled", seen
        assert client.get("/api/models/never").status_code == 404
