"""KServe V2 REST with JSON tensors against a real server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from maas.control.uploads import register_upload
from maas.protocol.datatypes import numpy_dtype
from maas.registry import Registry
from maas.testing.models import IDENTITY_TYPES, write_identity_model, write_linear_model


@pytest.fixture
def linear(tmp_path: Path, local_registry: Registry) -> Path:
    path = write_linear_model(tmp_path / "linear.onnx")
    register_upload(local_registry, "linear", path, actor="test")
    return path


def _request(
    data: Any, shape: list[int], name: str = "input", datatype: str = "FP32"
) -> dict[str, Any]:
    return {"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}


def test_health_and_server_metadata(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "maas"


def test_model_metadata_and_readiness(client: httpx.Client, linear: Path) -> None:
    meta = client.get("/v2/models/linear").json()
    assert meta["name"] == "linear"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}]
    assert client.get("/v2/models/linear/versions/1").json() == meta
    assert client.get("/v2/models/linear/ready").json() == {"name": "linear", "ready": True}
    assert client.get("/v2/models/linear/versions/1/ready").status_code == 200


def test_infer_equals_onnxruntime_in_process(client: httpx.Client, linear: Path) -> None:
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    body = _request(x.tolist(), [5, 4])
    body["id"] = "req-1"
    reply = client.post("/v2/models/linear/versions/1/infer", json=body)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["model_name"] == "linear" and doc["model_version"] == "1" and doc["id"] == "req-1"
    (output,) = doc["outputs"]
    assert output["name"] == "logits" and output["datatype"] == "FP32" and output["shape"] == [5, 3]
    expected = ort.InferenceSession(str(linear)).run(None, {"input": x})[0]
    np.testing.assert_array_equal(np.asarray(output["data"], np.float32).reshape(5, 3), expected)


@pytest.mark.parametrize("datatype", sorted(IDENTITY_TYPES))
def test_every_datatype_round_trips_as_json(
    datatype: str, client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    name = f"id-{datatype.lower()}"
    register_upload(
        local_registry, name, write_identity_model(tmp_path / "m.onnx", datatype), actor="t"
    )
    values: dict[str, list[Any]] = {
        "BOOL": [True, False, True, False, True, True],
        "BYTES": ["a", "bé", "", "zz", "0", "x y"],
        "FP16": [0.5, -1.25, 2.0, 3.0, 65504.0, 0.0],
        "FP32": [0.1, -2.5, 3.25, 1e-7, 1e30, 0.0],
        "FP64": [0.1, -2.5, 3.25, 1e-300, 1e300, 0.0],
    }
    dtype = numpy_dtype(datatype)
    if datatype in values:
        data = values[datatype]
    else:
        info = np.iinfo(dtype)
        data = [int(info.min), int(info.max), 0, 1, 2, 3]
    reply = client.post(f"/v2/models/{name}/infer", json=_request(data, [2, 3], "x", datatype))
    assert reply.status_code == 200, reply.text
    (output,) = reply.json()["outputs"]
    assert output["datatype"] == datatype and output["shape"] == [2, 3]
    if datatype == "FP32":  # sent as the shortest text that reads back as the same float32
        assert np.array_equal(np.asarray(output["data"], np.float32), np.asarray(data, np.float32))
    else:
        assert output["data"] == data


def test_requested_outputs(client: httpx.Client, linear: Path) -> None:
    body = _request([0, 0, 0, 0], [1, 4])
    body["outputs"] = [{"name": "logits"}]
    assert (
        client.post("/v2/models/linear/infer", json=body).json()["outputs"][0]["name"] == "logits"
    )
    body["outputs"] = [{"name": "probabilities"}]
    reply = client.post("/v2/models/linear/infer", json=body)
    assert reply.status_code == 400 and "probabilities" in reply.json()["error"]


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/v2/models/nope", "model 'nope'"),
        ("/v2/models/nope/ready", "model 'nope'"),
        ("/v2/models/linear/versions/7", "version 7"),
        ("/v2/models/linear/versions/7/ready", "version 7"),
        ("/v2/models/linear/versions/canary", "canary"),
    ],
)
def test_unknown_model_or_version_is_404(
    client: httpx.Client, linear: Path, path: str, what: str
) -> None:
    reply = client.get(path)
    assert reply.status_code == 404
    assert what in reply.json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/nope/infer", "/v2/models/linear/versions/3/infer"])
def test_infer_on_unknown_model_or_version_is_404(
    client: httpx.Client, linear: Path, path: str
) -> None:
    reply = client.post(path, json=_request([0, 0, 0, 0], [1, 4]))
    assert reply.status_code == 404
    assert reply.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (_request([0, 0, 0, 0], [1, 4], name="pixels"), "unknown input 'pixels'"),
        (_request([0, 0, 0, 0], [1, 4], datatype="INT64"), "datatype INT64 given, FP32 expected"),
        (_request([0, 0, 0, 0, 0], [1, 5]), "shape [1, 5] given, [-1, 4] expected"),
        (_request([0, 0, 0, 0], [4]), "shape [4] given"),
        (_request([0, 0, 0], [1, 4]), "needs 4 elements, 'data' has 3"),
        (_request(["a", "b", "c", "d"], [1, 4]), "not FP32"),
        (_request([[0, 0], [0]], [1, 4]), "ragged"),
        (_request([0, 0, 0, 0], [1, -4]), "non-negative integers"),
        (_request([0], [1] * 70), "shape has 70 dimensions, more than the 64"),  # was 500
        (_request([1e39, 0, 0, 0], [1, 4]), "a value is outside the range of FP32"),  # was inf
        (_request([0, 0, 0, 0], [1, 4], datatype="FLOAT"), "unknown datatype 'FLOAT'"),
        ({"inputs": []}, "'inputs' must be a non-empty list"),
        ({"inputs": "x"}, "'inputs' must be a non-empty list"),
        ({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4]}]}, "'data' is missing"),
        ({"inputs": [7]}, "must be an object"),
        ({"inputs": [{"datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}, "'name'"),
        (
            {
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]
                * 2
            },
            "given twice",
        ),
        ({"inputs": _request([0] * 4, [1, 4])["inputs"], "outputs": {"name": "x"}}, "'outputs'"),
        ({"inputs": _request([0] * 4, [1, 4])["inputs"], "id": 5}, "'id'"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_tensors_and_bodies_are_400_naming_the_problem(
    client: httpx.Client, linear: Path, body: Any, fragment: str
) -> None:
    reply = client.post("/v2/models/linear/infer", json=body)
    assert reply.status_code == 400, reply.text
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b'{"inputs": [1,'])
def test_malformed_json_is_400(client: httpx.Client, linear: Path, raw: bytes) -> None:
    reply = client.post(
        "/v2/models/linear/infer", content=raw, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid_input"


def test_integer_out_of_range_is_400(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    register_upload(
        local_registry, "u8", write_identity_model(tmp_path / "u8.onnx", "UINT8"), actor="t"
    )
    reply = client.post("/v2/models/u8/infer", json=_request([0, 1, 256], [1, 3], "x", "UINT8"))
    assert reply.status_code == 400 and "outside the range of UINT8" in reply.json()["error"]


def test_oversized_body_is_413(client: httpx.Client, linear: Path) -> None:
    reply = client.post("/v2/models/linear/infer", content=b"0" * (2 * 1024 * 1024))
    assert reply.status_code == 413
    assert reply.json()["code"] == "payload_too_large"


def test_model_config_has_the_triton_shape(client: httpx.Client, linear: Path) -> None:
    config = client.get("/v2/models/linear/config").json()
    assert config["name"] == "linear" and config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 32
    assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [4]}]
    assert config["output"] == [{"name": "logits", "data_type": "TYPE_FP32", "dims": [3]}]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 0
    assert config["instance_group"][0]["kind"] == "KIND_CPU"
    assert client.get("/v2/models/linear/versions/1/config").json() == config
    assert client.get("/v2/models/ghost/config").status_code == 404


def test_statistics_count_requests_and_rows(client: httpx.Client, linear: Path) -> None:
    for rows in (1, 3):
        body = _request([0.0] * 4 * rows, [rows, 4])
        assert client.post("/v2/models/linear/infer", json=body).status_code == 200
    client.post("/v2/models/linear/infer", json=_request([0.0] * 5, [1, 5]))
    (stats,) = client.get("/v2/models/linear/stats").json()["model_stats"]
    assert stats["name"] == "linear" and stats["version"] == "1"
    assert stats["inference_count"] == 4
    assert stats["inference_stats"]["success"]["count"] == 2
    assert stats["inference_stats"]["fail"]["count"] == 1
    assert client.get("/v2/models/linear/versions/1/stats").json()["model_stats"] == [stats]
    assert [s["name"] for s in client.get("/v2/models/stats").json()["model_stats"]] == ["linear"]
