"""The real server in its own process on a free loopback port, driven by httpx and tritonclient."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton_http

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_identity_model, write_linear_model
from maas.testing.processes import serve_process

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home folder with a linear model (v1, v2) and an FP16 identity model registered."""
    home = tmp_path_factory.mktemp("home")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    try:
        linear = write_linear_model(home / "linear.onnx", seed=1)
        register_upload(
            registry, "linear", write_linear_model(home / "old.onnx", seed=0), actor="t"
        )
        register_upload(registry, "linear", linear, actor="test")
        register_upload(registry, "half", write_identity_model(home / "h.onnx", "FP16"), actor="t")
    finally:
        registry.close()
    return home, linear


@pytest.fixture(scope="module")
def server_url(models: tuple[Path, Path]) -> Iterator[str]:
    home, _ = models
    with serve_process(home) as server:
        yield server.url


def test_httpx_prediction_equals_onnxruntime(server_url: str, models: tuple[Path, Path]) -> None:
    _, linear = models
    x = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [3, 4], "data": x.ravel().tolist()}
        ]
    }
    reply = httpx.post(f"{server_url}/v2/models/linear/infer", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["model_version"] == "2"  # no production alias: the newest version is served
    expected = ort.InferenceSession(str(linear)).run(None, {"input": x})[0]
    got = np.asarray(doc["outputs"][0]["data"], np.float32).reshape(doc["outputs"][0]["shape"])
    np.testing.assert_array_equal(got, expected)


def test_tritonclient_http_live_metadata_and_json_infer(
    server_url: str, models: tuple[Path, Path]
) -> None:
    _, linear = models
    client = triton_http.InferenceServerClient(url=server_url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("linear")
        assert client.is_model_ready("linear", "1")
        meta = client.get_model_metadata("linear")
        assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
        assert meta["versions"] == ["1", "2"]

        x = np.random.default_rng(4).standard_normal((2, 4)).astype(np.float32)
        tensor = triton_http.InferInput("input", [2, 4], "FP32")
        tensor.set_data_from_numpy(x, binary_data=False)
        wanted = [triton_http.InferRequestedOutput("logits", binary_data=False)]
        result = client.infer("linear", [tensor], outputs=wanted, request_id="r7")
        expected = ort.InferenceSession(str(linear)).run(None, {"input": x})[0]
        np.testing.assert_array_equal(result.as_numpy("logits"), expected)
        assert result.get_response()["id"] == "r7"

        half = triton_http.InferInput("x", [1, 3], "FP16")
        values = np.array([[0.5, -2.0, 1024.0]], np.float16)
        half.set_data_from_numpy(values, binary_data=False)
        out = client.infer(
            "half", [half], outputs=[triton_http.InferRequestedOutput("y", binary_data=False)]
        )
        np.testing.assert_array_equal(out.as_numpy("y"), values)
    finally:
        client.close()


def test_tritonclient_sees_v2_errors(server_url: str) -> None:
    client = triton_http.InferenceServerClient(url=server_url.removeprefix("http://"))
    try:
        with pytest.raises(Exception, match="model 'ghost' not found"):
            client.get_model_metadata("ghost")
        tensor = triton_http.InferInput("input", [1, 5], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 5), np.float32), binary_data=False)
        with pytest.raises(Exception, match=r"shape \[1, 5\] given, \[-1, 4\] expected"):
            client.infer(
                "linear",
                [tensor],
                outputs=[triton_http.InferRequestedOutput("logits", binary_data=False)],
            )
        binary = triton_http.InferInput("input", [1, 4], "FP32")
        binary.set_data_from_numpy(np.zeros((1, 4), np.float32), binary_data=True)
        assert client.infer("linear", [binary]).as_numpy("logits").shape == (1, 3)
    finally:
        client.close()


def test_alias_moved_by_another_process_is_followed(
    server_url: str, models: tuple[Path, Path]
) -> None:
    home, _ = models
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    try:
        registry.aliases.set("linear", "production", 1, actor="test")
        deadline = time.monotonic() + 15
        body = {
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 0]}]
        }
        served = None
        while time.monotonic() < deadline:
            served = httpx.post(f"{server_url}/v2/models/linear/infer", json=body).json()[
                "model_version"
            ]
            if served == "1":
                break
            time.sleep(0.2)
        assert served == "1"
    finally:
        registry.aliases.delete("linear", "production", actor="test")
        registry.close()
