"""KServe V2 inference through the SDK: JSON and binary tensors give onnxruntime's answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from maas.client import Client, InferResult
from maas.errors import InvalidInputError, NotFoundError
from maas.testing.models import write_identity_model, write_nan_model

X = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)


def _expected(path: Path, x: np.ndarray) -> np.ndarray:
    result: np.ndarray = ort.InferenceSession(str(path)).run(None, {"input": x})[0]
    return result


def _write_two_outputs(path: Path) -> Path:
    """FP32 x [-1, 2] -> y = x, z = -x: a model with two outputs, to pick from."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["z"])],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_equals_onnxruntime_in_process(client: Client, linear: Path, binary: bool) -> None:
    client.upload("lin", linear)
    result = client.infer("lin", {"input": X}, binary=binary, request_id="req-7")
    assert isinstance(result, InferResult)
    assert (result.model_name, result.model_version, result.id) == ("lin", "1", "req-7")
    assert list(result.outputs) == ["logits"]
    assert result["logits"].dtype == np.float32 and result["logits"].shape == (5, 3)
    np.testing.assert_array_equal(result["logits"], _expected(linear, X))


def test_json_and_binary_agree_and_version_picks(
    client: Client, linear: Path, linear_b: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    client.set_alias("lin", "staging", 2)
    by_json = client.infer("lin", {"input": X}, version=1, binary=False)
    by_binary = client.infer("lin", {"input": X}, version=1, timeout_us=30_000_000)
    np.testing.assert_array_equal(by_json["logits"], by_binary["logits"])
    staged = client.infer("lin", {"input": X}, version="staging")
    assert staged.model_version == "2"
    np.testing.assert_array_equal(staged["logits"], _expected(linear_b, X))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_outputs_filter(client: Client, tmp_path: Path, binary: bool) -> None:
    client.upload("two", _write_two_outputs(tmp_path / "two.onnx"))
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    both = client.infer("two", {"x": x}, binary=binary)
    assert sorted(both.outputs) == ["y", "z"]
    only_z = client.infer("two", {"x": x}, outputs=["z"], binary=binary)
    assert list(only_z.outputs) == ["z"]
    np.testing.assert_array_equal(only_z["z"], -x)
    with pytest.raises(InvalidInputError, match="unknown output"):
        client.infer("two", {"x": x}, outputs=["nope"], binary=binary)


ROUND_TRIPS = {
    "BYTES": np.array([[b"a", b"", "\u00e9t\u00e9".encode()], [b"x" * 300, b"y", b"z"]], object),
    "INT64": np.array([[1, -(2**62), 2**62], [0, 7, -7]], np.int64),
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 255, 7], [1, 2, 3]], np.uint8),
    "FP16": np.array([[0.5, -1.25, 1024], [3, 4, 5]], np.float16),
}


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", sorted(ROUND_TRIPS))
def test_datatypes_round_trip(client: Client, tmp_path: Path, datatype: str, binary: bool) -> None:
    name = f"id-{datatype.lower()}"
    client.upload(name, write_identity_model(tmp_path / f"{name}.onnx", datatype))
    sent = ROUND_TRIPS[datatype]
    got = client.infer(name, {"x": sent}, binary=binary)["y"]
    assert got.shape == sent.shape and got.dtype == sent.dtype
    assert got.tolist() == sent.tolist()


def test_str_arrays_are_sent_as_bytes(client: Client, tmp_path: Path) -> None:
    client.upload("id", write_identity_model(tmp_path / "id.onnx", "BYTES"))
    for binary in (True, False):
        got = client.infer("id", {"x": np.array([["a", "bc", "d"]])}, binary=binary)["y"]
        assert got.tolist() == [[b"a", b"bc", b"d"]]
    with pytest.raises(InvalidInputError, match="binary=True"):
        client.infer("id", {"x": np.array([[b"\xff", b"", b""]], object)}, binary=False)


def test_health_readiness_and_metadata(client: Client, linear: Path, tmp_path: Path) -> None:
    assert client.live() is True
    assert client.ready() is True
    client.upload("lin", linear)
    assert client.model_ready("lin") is True
    assert client.model_ready("lin", 1) is True
    metadata = client.model_metadata("lin")
    assert metadata["name"] == "lin" and metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert client.model_metadata("lin", 1) == metadata
    client.upload("lin", write_nan_model(tmp_path / "nan.onnx"))
    assert client.model_ready("lin", 2) is False  # it fails its warm-up: the 503 answer
    with pytest.raises(NotFoundError):
        client.model_ready("nope")
    with pytest.raises(NotFoundError):
        client.model_metadata("lin", 9)
