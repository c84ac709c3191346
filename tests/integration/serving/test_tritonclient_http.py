"""tritonclient.http (sync and asyncio) against a real server: binary and JSON tensors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import orjson
import pytest
import tritonclient.http as triton_http
import tritonclient.http.aio as triton_aio
from tritonclient.utils import InferenceServerException

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.protocol.datatypes import numpy_dtype
from maas.registry import Registry
from maas.testing.models import IDENTITY_TYPES, write_identity_model, write_linear_model
from maas.testing.server import running_server

_HEADER = "Inference-Header-Content-Length"


@pytest.fixture
def url(settings: Settings, local_registry: Registry) -> Iterator[str]:
    """The server's host:port, as tritonclient wants it."""
    with running_server(settings, local_registry) as base:
        yield base.removeprefix("http://")


@pytest.fixture
def linear(tmp_path: Path, local_registry: Registry) -> Path:
    path = write_linear_model(tmp_path / "linear.onnx")
    register_upload(local_registry, "linear", path, actor="test")
    return path


def _identity(datatype: str, registry: Registry, tmp_path: Path) -> str:
    name = f"id-{datatype.lower()}"
    path = write_identity_model(tmp_path / f"{name}.onnx", datatype)
    register_upload(registry, name, path, actor="test")
    return name


def _values(datatype: str) -> np.ndarray:
    """Two rows of three elements, each type's extremes included.

    BYTES are UTF-8: ONNX string tensors hold text (the unit tests cover other bytes).
    """
    if datatype == "BYTES":
        text = [b"a", b"", "b\xe9".encode(), b"zz", b"", b"x y"]
        return np.array(text, dtype=object).reshape(2, 3)
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    dtype = numpy_dtype(datatype)
    if dtype.kind == "f":
        finfo = np.finfo(dtype)
        values = [0.5, -1.25, float(finfo.max), float(finfo.min), float(finfo.tiny), -0.0]
    else:
        iinfo = np.iinfo(dtype)
        values = [int(iinfo.min), int(iinfo.max), 0, 1, 7, int(iinfo.max) - 1]
    return np.array(values, dtype=dtype).reshape(2, 3)


def _assert_same(got: np.ndarray | None, sent: np.ndarray) -> None:
    assert got is not None and got.shape == sent.shape
    if sent.dtype == object:  # JSON BYTES come back as str
        got = np.array([e.encode() if isinstance(e, str) else e for e in got.ravel()], object)
        assert got.tolist() == sent.ravel().tolist()
    else:
        assert got.dtype == sent.dtype
        np.testing.assert_array_equal(got, sent)


_MODES = [(True, True), (False, False), (True, False), (False, True)]


@pytest.mark.parametrize(("binary_in", "binary_out"), _MODES)
@pytest.mark.parametrize("datatype", sorted(IDENTITY_TYPES))
def test_sync_client_round_trips_every_datatype(
    datatype: str,
    binary_in: bool,
    binary_out: bool,
    url: str,
    local_registry: Registry,
    tmp_path: Path,
) -> None:
    model = _identity(datatype, local_registry, tmp_path)
    sent = _values(datatype)
    tensor = triton_http.InferInput("x", [2, 3], datatype)
    tensor.set_data_from_numpy(sent, binary_data=binary_in)
    client = triton_http.InferenceServerClient(url=url)
    try:
        result = client.infer(
            model, [tensor], outputs=[triton_http.InferRequestedOutput("y", binary_data=binary_out)]
        )
    finally:
        client.close()
    (output,) = result.get_response()["outputs"]
    assert ("data" in output) is not binary_out
    assert ("binary_data_size" in output.get("parameters", {})) is binary_out
    _assert_same(result.as_numpy("y"), sent)


async def _aio_infer(url: str, model: str, tensor: Any, binary_out: bool | None) -> Any:
    client = triton_aio.InferenceServerClient(url=url)
    try:
        outputs = (
            None
            if binary_out is None
            else [triton_aio.InferRequestedOutput("y", binary_data=binary_out)]
        )
        return await client.infer(model, [tensor], outputs=outputs)
    finally:
        await client.close()


@pytest.mark.parametrize(("binary_in", "binary_out"), [(True, True), (False, False), (True, None)])
@pytest.mark.parametrize("datatype", sorted(IDENTITY_TYPES))
def test_asyncio_client_round_trips_every_datatype(
    datatype: str,
    binary_in: bool,
    binary_out: bool | None,
    url: str,
    local_registry: Registry,
    tmp_path: Path,
) -> None:
    model = _identity(datatype, local_registry, tmp_path)
    sent = _values(datatype)
    tensor = triton_aio.InferInput("x", [2, 3], datatype)
    tensor.set_data_from_numpy(sent, binary_data=binary_in)
    result = asyncio.run(_aio_infer(url, model, tensor, binary_out))
    _assert_same(result.as_numpy("y"), sent)


def test_non_utf8_bytes_reach_the_runtime_intact(
    url: str, local_registry: Registry, tmp_path: Path
) -> None:
    model = _identity("BYTES", local_registry, tmp_path)
    tensor = triton_http.InferInput("x", [1, 3], "BYTES")
    tensor.set_data_from_numpy(np.array([[b"\xff", b"a", b""]], dtype=object))
    client = triton_http.InferenceServerClient(url=url)
    try:
        with pytest.raises(InferenceServerException, match=r"\[400\].*not UTF-8"):
            client.infer(model, [tensor])
    finally:
        client.close()


def test_no_requested_outputs_come_back_binary(url: str, linear: Path) -> None:
    x = np.random.default_rng(2).standard_normal((16, 4)).astype(np.float32)
    tensor = triton_http.InferInput("input", [16, 4], "FP32")
    tensor.set_data_from_numpy(x)  # binary by default
    client = triton_http.InferenceServerClient(url=url)
    try:
        result = client.infer("linear", [tensor], request_id="r1")
    finally:
        client.close()
    response = result.get_response()
    assert response["id"] == "r1"
    assert response["outputs"][0]["parameters"] == {"binary_data_size": 16 * 3 * 4}
    expected = ort.InferenceSession(str(linear)).run(None, {"input": x})[0]
    np.testing.assert_array_equal(result.as_numpy("logits"), expected)


def _binary_body(x: np.ndarray, size: int | None = None, **parameters: Any) -> tuple[bytes, int]:
    tensor = {
        "name": "input",
        "datatype": "FP32",
        "shape": list(x.shape),
        "parameters": {"binary_data_size": x.nbytes if size is None else size},
    }
    header = orjson.dumps({"inputs": [tensor], "parameters": parameters})
    return header + x.tobytes(), len(header)


def test_raw_http_binary_response_headers(client: httpx.Client, linear: Path) -> None:
    x = np.ones((2, 4), np.float32)
    body, length = _binary_body(x, binary_data_output=True)
    reply = client.post("/v2/models/linear/infer", content=body, headers={_HEADER: str(length)})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/octet-stream"
    json_length = int(reply.headers[_HEADER])
    doc = orjson.loads(reply.content[:json_length])
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 24}
    got = np.frombuffer(reply.content[json_length:], "<f4").reshape(2, 3)
    expected = ort.InferenceSession(str(linear)).run(None, {"input": x})[0]
    np.testing.assert_array_equal(got, expected)

    body, length = _binary_body(x)  # binary input, JSON output
    reply = client.post("/v2/models/linear/infer", content=body, headers={_HEADER: str(length)})
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    assert _HEADER.lower() not in reply.headers
    np.testing.assert_array_equal(np.float32(reply.json()["outputs"][0]["data"]), expected.ravel())


@pytest.mark.parametrize(
    ("cut", "size", "header", "message"),
    [
        (0, None, "10", "malformed JSON"),  # the header cuts the JSON short
        (0, None, "100000", "exceeds"),
        (0, None, "-3", "non-negative integer"),
        (4, None, None, "binary_data_size of inputs 'input' (32) add up to 32 bytes, but 28"),
        (0, 28, None, "binary_data_size of inputs 'input' (28) add up to 28 bytes, but 32"),
        (16, 16, None, "input 'input': shape [2, 4] of FP32 needs 32 bytes"),
    ],
)
def test_lying_sizes_are_400_json_errors(
    client: httpx.Client,
    linear: Path,
    cut: int,
    size: int | None,
    header: str | None,
    message: str,
) -> None:
    x = np.ones((2, 4), np.float32)
    body, length = _binary_body(x, size)
    body = body[: len(body) - cut]
    headers = {_HEADER: header or str(length)}
    reply = client.post("/v2/models/linear/infer", content=body, headers=headers)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["code"] == "invalid_input"
    assert message in reply.json()["error"]


def test_short_bodies_and_compressed_bodies_are_refused(client: httpx.Client, linear: Path) -> None:
    x = np.ones((1, 4), np.float32)
    body, length = _binary_body(x)
    reply = client.post("/v2/models/linear/infer", content=body[:5], headers={_HEADER: "10"})
    assert reply.status_code == 400 and "exceeds the 5-byte body" in reply.json()["error"]
    reply = client.post(
        "/v2/models/linear/infer",
        content=body,
        headers={_HEADER: str(length), "Content-Encoding": "gzip"},
    )
    assert reply.status_code == 400 and "Content-Encoding" in reply.json()["error"]
