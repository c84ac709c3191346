"""KServe V2 over gRPC, spoken by tritonclient (sync and asyncio) and by a bare stub."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcclient_aio
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException, deserialize_bytes_tensor

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.protocol.datatypes import numpy_dtype
from maas.registry import Registry
from maas.testing.models import IDENTITY_TYPES, write_identity_model, write_linear_model
from maas.testing.server import Endpoints, serving_endpoints


@pytest.fixture
def endpoints(settings: Settings, local_registry: Registry) -> Iterator[Endpoints]:
    with serving_endpoints(settings, local_registry) as found:
        yield found


@pytest.fixture
def client(endpoints: Endpoints) -> Iterator[Any]:
    triton = grpcclient.InferenceServerClient(endpoints.grpc_address)
    try:
        yield triton
    finally:
        triton.close()


@pytest.fixture
def stub(endpoints: Endpoints) -> Iterator[Any]:
    with grpc.insecure_channel(endpoints.grpc_address) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture
def linear(tmp_path: Path, local_registry: Registry) -> Path:
    path = write_linear_model(tmp_path / "linear.onnx")
    register_upload(local_registry, "linear", path, actor="test")
    return path


def _identity(registry: Registry, tmp_path: Path, datatype: str, width: int = 3) -> str:
    name = f"id-{datatype.lower()}"
    path = write_identity_model(tmp_path / f"{name}.onnx", datatype, width)
    register_upload(registry, name, path, actor="test")
    return name


def _values(datatype: str) -> np.ndarray:
    if datatype == "BYTES":
        return np.array([b"a", "bé".encode(), b"", b"zz", b"0", b"x y"], dtype=object)
    if datatype == "BOOL":
        return np.array([True, False, True, False, True, True])
    dtype = numpy_dtype(datatype)
    if dtype.kind == "f":
        return np.array([0.5, -1.25, 2.0, 3.0, np.finfo(dtype).max, 0.0], dtype)
    info = np.iinfo(dtype)
    return np.array([info.min, info.max, 0, 1, 2, 3], dtype)


def _input(name: str, data: np.ndarray, datatype: str) -> Any:
    tensor = grpcclient.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    return tensor


def _status(exc: InferenceServerException) -> str:
    return str(exc.status())


def test_health_and_metadata(client: Any, linear: Path) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("linear") and client.is_model_ready("linear", "1")
    assert client.get_server_metadata().name == "maas"
    meta = client.get_model_metadata("linear")
    assert meta.name == "linear" and list(meta.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("input", "FP32", [-1, 4])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("logits", "FP32", [-1, 3])
    ]


def test_model_config(client: Any, linear: Path) -> None:
    config = client.get_model_config("linear").config
    assert config.name == "linear" and config.max_batch_size == 32
    assert [(t.name, list(t.dims)) for t in config.input] == [("input", [4])]
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == 0


def test_infer_equals_onnxruntime_and_counts_in_statistics(client: Any, linear: Path) -> None:
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    expected = ort.InferenceSession(str(linear)).run(None, {"input": x})[0]
    for _ in range(3):
        result = client.infer("linear", [_input("input", x, "FP32")], request_id="req-1")
        np.testing.assert_array_equal(result.as_numpy("logits"), expected)
    response = result.get_response()
    assert response.id == "req-1" and response.model_name == "linear"
    assert response.model_version == "1"
    (stats,) = client.get_inference_statistics("linear").model_stats
    assert stats.inference_count >= 15 and stats.inference_stats.success.count == 3
    assert len(client.get_inference_statistics().model_stats) >= 1


@pytest.mark.parametrize("datatype", sorted(IDENTITY_TYPES))
def test_every_datatype_round_trips_raw(
    datatype: str, endpoints: Endpoints, client: Any, local_registry: Registry, tmp_path: Path
) -> None:
    name = _identity(local_registry, tmp_path, datatype)
    data = _values(datatype).reshape(2, 3)
    result = client.infer(name, [_input("x", data, datatype)])
    np.testing.assert_array_equal(result.as_numpy("y"), data)

    async def with_aio() -> Any:
        aio = grpcclient_aio.InferenceServerClient(endpoints.grpc_address)
        try:
            assert await aio.is_server_live() and await aio.is_model_ready(name)
            assert (await aio.get_model_metadata(name)).inputs[0].datatype == datatype
            return (await aio.infer(name, [_input("x", data, datatype)])).as_numpy("y")
        finally:
            await aio.close()

    np.testing.assert_array_equal(asyncio.run(with_aio()), data)


@pytest.mark.parametrize(
    ("datatype", "field"),
    [
        ("FP32", "fp32_contents"),
        ("INT32", "int_contents"),
        ("BOOL", "bool_contents"),
        ("BYTES", "bytes_contents"),
        ("UINT8", "uint_contents"),
        ("INT64", "int64_contents"),
        ("FP64", "fp64_contents"),
    ],
)
def test_typed_contents(
    datatype: str, field: str, stub: Any, local_registry: Registry, tmp_path: Path
) -> None:
    name = _identity(local_registry, tmp_path, datatype)
    data = _values(datatype)
    request = service_pb2.ModelInferRequest(model_name=name, id="typed")
    tensor = request.inputs.add(name="x", datatype=datatype, shape=[2, 3])
    getattr(tensor.contents, field).extend(data.tolist())
    response = stub.ModelInfer(request)
    assert response.id == "typed" and list(response.outputs[0].shape) == [2, 3]
    (raw,) = response.raw_output_contents
    if datatype == "BYTES":
        got = deserialize_bytes_tensor(raw)
    else:
        got = np.frombuffer(raw, numpy_dtype(datatype).newbyteorder("<"))
    np.testing.assert_array_equal(got, data)


def _bad_request(name: str, datatype: str = "FP32") -> Any:
    request = service_pb2.ModelInferRequest(model_name=name)
    request.inputs.add(name="x", datatype=datatype, shape=[1, 3])
    return request


def test_bad_requests_are_invalid_argument(
    stub: Any, local_registry: Registry, tmp_path: Path
) -> None:
    name = _identity(local_registry, tmp_path, "FP32")
    cases: list[tuple[Any, str]] = []
    lie = _bad_request(name)
    lie.raw_input_contents.append(b"\0" * 8)
    cases.append((lie, "shape [1, 3] of FP32 needs 12 bytes, 8 given"))
    too_few = _bad_request(name)
    too_few.inputs[0].contents.fp32_contents.extend([1.0, 2.0])
    cases.append((too_few, "2 elements given but shape [1, 3] holds 3"))
    wrong_field = _bad_request(name)
    wrong_field.inputs[0].contents.int_contents.extend([1, 2, 3])
    cases.append((wrong_field, "expected fp32_contents"))
    missing_raw = _bad_request(name)
    missing_raw.inputs.add(name="z", datatype="FP32", shape=[1])
    missing_raw.raw_input_contents.append(b"\0" * 12)
    cases.append((missing_raw, "raw_input_contents has 1 entries for 2 inputs"))
    u8 = _identity(local_registry, tmp_path, "UINT8")
    overflow = _bad_request(u8, "UINT8")
    overflow.inputs[0].contents.uint_contents.extend([1, 2, 256])
    cases.append((overflow, "out of range for UINT8"))
    deep = _bad_request(name)
    del deep.inputs[0].shape[:]
    deep.inputs[0].shape.extend([1] * 65)
    deep.inputs[0].contents.fp32_contents.append(1.0)
    cases.append((deep, "shape has 65 dimensions, more than the 64"))  # was INTERNAL
    for request, fragment in cases:
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fragment
        assert fragment in caught.value.details()


def test_errors_carry_status_and_message(client: Any, linear: Path) -> None:
    x = np.zeros((1, 5), np.float32)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("nope", [_input("input", x, "FP32")])
    assert _status(caught.value) == "StatusCode.NOT_FOUND" and "nope" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.infer("linear", [_input("input", x, "FP32")])
    assert _status(caught.value) == "StatusCode.INVALID_ARGUMENT"
    assert "shape [1, 5] given, [-1, 4] expected" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata("nope")
    assert _status(caught.value) == "StatusCode.NOT_FOUND"
    with pytest.raises(InferenceServerException) as caught:
        client.unload_model("nope")
    assert _status(caught.value) == "StatusCode.NOT_FOUND"


def test_stream_answers_every_request_and_survives_errors(client: Any, linear: Path) -> None:
    answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: answers.put((result, error)))
    try:
        good = np.ones((2, 4), np.float32)
        for i in range(5):
            client.async_stream_infer("linear", [_input("input", good, "FP32")], request_id=str(i))
        bad = np.ones((2, 5), np.float32)
        client.async_stream_infer("linear", [_input("input", bad, "FP32")], request_id="bad")
        for i in range(5, 8):
            client.async_stream_infer("linear", [_input("input", good, "FP32")], request_id=str(i))
        got = [answers.get(timeout=30) for _ in range(9)]
    finally:
        client.stop_stream()
    errors = [error for result, error in got if error is not None]
    assert len(errors) == 1 and "shape [2, 5] given" in errors[0].message()
    ids = sorted(result.get_response().id for result, error in got if error is None)
    assert ids == sorted(str(i) for i in range(8))
    assert all(r.as_numpy("logits").shape == (2, 3) for r, e in got if e is None)


def test_ten_megabyte_input_goes_through(
    client: Any, local_registry: Registry, tmp_path: Path
) -> None:
    name = _identity(local_registry, tmp_path, "FP32", width=2_621_440)
    data = np.arange(2_621_440, dtype=np.float32).reshape(1, -1)
    result = client.infer(name, [_input("x", data, "FP32")])
    np.testing.assert_array_equal(result.as_numpy("y"), data)


def test_stream_errors_name_the_request(stub: Any, linear: Path) -> None:
    def request(request_id: str, width: int) -> Any:
        message = service_pb2.ModelInferRequest(model_name="linear", id=request_id)
        tensor = message.inputs.add(name="input", datatype="FP32", shape=[1, width])
        tensor.contents.fp32_contents.extend([1.0] * width)
        return message

    replies = list(stub.ModelStreamInfer(iter([request("ok", 4), request("bad", 5)])))
    by_id = {r.infer_response.id: r for r in replies}
    assert set(by_id) == {"ok", "bad"}
    assert by_id["ok"].error_message == "" and len(by_id["ok"].infer_response.outputs) == 1
    assert "shape [1, 5] given" in by_id["bad"].error_message
