"""The binary tensor extension codec, in process: round trips, malformed bodies, truncations."""

from __future__ import annotations

import contextlib
import re
import struct
from typing import Any

import numpy as np
import orjson
import pytest

from maas.errors import InvalidInputError
from maas.protocol.binary_codec import decode_request, encode_response, wants_binary
from maas.protocol.datatypes import DATATYPES, numpy_dtype
from maas.protocol.types import InferRequest, InferResponse, RequestedOutput, Tensor

_BYTES_VALUES = [b"a", b"", b"\xff\xfe\x00", "bé".encode(), b"", b"zz"]


def _sample(datatype: str) -> np.ndarray:
    """Two rows of three elements of ``datatype``, including each type's extremes."""
    if datatype == "BYTES":
        return np.array(_BYTES_VALUES, dtype=object).reshape(2, 3)
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    dtype = numpy_dtype(datatype)
    if dtype.kind == "f":
        info = np.finfo(dtype)
        values = [0.5, -1.25, float(info.max), float(info.min), float(info.tiny), -0.0]
    else:
        iinfo = np.iinfo(dtype)
        values = [int(iinfo.min), int(iinfo.max), 0, 1, 7, int(iinfo.max) - 1]
    return np.array(values, dtype=dtype).reshape(2, 3)


def _raw(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(e)) + e for e in array.ravel())
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _body(inputs: list[dict[str, Any]], raw: bytes, **extra: Any) -> tuple[bytes, str]:
    header = orjson.dumps({"inputs": inputs, **extra})
    return header + raw, str(len(header))


def _binary_input(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size},
    }


def _split(body: bytes, json_length: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A response's JSON header and each binary output's raw bytes, by name."""
    doc = orjson.loads(body[:json_length])
    raw: dict[str, bytes] = {}
    offset = json_length
    for output in doc["outputs"]:
        size = output.get("parameters", {}).get("binary_data_size")
        if size is not None:
            assert "data" not in output
            raw[output["name"]] = body[offset : offset + size]
            offset += size
    assert offset == len(body)
    return doc, raw


def _from_raw(raw: bytes, datatype: str, shape: list[int]) -> np.ndarray:
    if datatype != "BYTES":
        return np.frombuffer(raw, numpy_dtype(datatype).newbyteorder("<")).reshape(shape)
    elements, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        elements.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return np.array(elements, dtype=object).reshape(shape)


@pytest.mark.parametrize("datatype", sorted(DATATYPES))
def test_every_datatype_decodes_from_raw_bytes(datatype: str) -> None:
    values = _sample(datatype)
    raw = _raw(values, datatype)
    body, length = _body([_binary_input("x", datatype, [2, 3], len(raw))], raw)
    (tensor,) = decode_request(body, length).inputs
    assert tensor.name == "x" and tensor.datatype == datatype
    assert tensor.data.dtype == numpy_dtype(datatype) and tensor.data.shape == (2, 3)
    assert tensor.parameters == {}  # binary_data_size is the transport's business
    np.testing.assert_array_equal(tensor.data, values)
    if datatype == "BYTES":
        assert tensor.data.tolist() == values.tolist()  # exact bytes, non-UTF-8 included


@pytest.mark.parametrize("datatype", sorted(DATATYPES))
def test_every_datatype_encodes_to_raw_bytes(datatype: str) -> None:
    values = _sample(datatype)
    request = InferRequest([], parameters={"binary_data_output": True})
    response = InferResponse("m", "1", [Tensor("y", datatype, values)], id="r")
    encoded = encode_response(request, response)
    assert encoded.json_length is not None
    doc, raw = _split(encoded.body, encoded.json_length)
    assert doc["model_name"] == "m" and doc["id"] == "r"
    assert doc["outputs"][0]["shape"] == [2, 3] and doc["outputs"][0]["datatype"] == datatype
    got = _from_raw(raw["y"], datatype, [2, 3])
    assert got.tolist() == values.tolist()


def test_fixed_size_inputs_share_the_body_and_mix_with_json_inputs() -> None:
    image = np.random.default_rng(0).standard_normal((3, 224, 224)).astype(np.float32)
    raw = image.tobytes()
    inputs = [
        {"name": "scale", "datatype": "INT32", "shape": [1], "data": [2]},
        _binary_input("image", "FP32", [3, 224, 224], len(raw)),
        _binary_input("empty", "FP16", [0, 3], 0),
    ]
    body, length = _body(inputs, raw, id="a", outputs=[{"name": "y"}])
    request = decode_request(body, length)
    scale, decoded, empty = request.inputs
    assert scale.data.tolist() == [2] and empty.data.shape == (0, 3)
    np.testing.assert_array_equal(decoded.data, image)
    assert np.shares_memory(decoded.data, np.frombuffer(body, np.uint8))  # zero copy
    assert request.id == "a" and request.outputs == [RequestedOutput("y")]


def test_a_body_without_the_header_is_plain_json() -> None:
    body = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]})
    assert decode_request(body, None).inputs[0].data.tolist() == [1.0]


def test_per_output_binary_data_wins_over_the_top_level_flag() -> None:
    outputs = [Tensor("a", "FP32", np.ones(2, np.float32)), Tensor("b", "INT8", np.ones(2, "i1"))]
    response = InferResponse("m", "1", outputs)
    top = {"binary_data_output": True}
    request = InferRequest([], [RequestedOutput("a", {"binary_data": False}), RequestedOutput("b")])
    request.parameters = top
    assert wants_binary(request) == frozenset({"b"})
    encoded = encode_response(request, response)
    assert encoded.json_length is not None
    doc, raw = _split(encoded.body, encoded.json_length)
    assert doc["outputs"][0]["data"] == [1.0, 1.0] and raw == {"b": b"\x01\x01"}

    plain = encode_response(InferRequest([]), response)
    assert plain.json_length is None
    assert [o["data"] for o in orjson.loads(plain.body)["outputs"]] == [[1.0, 1.0], [1, 1]]
    only_a = InferRequest([], [RequestedOutput("a", {"binary_data": True})])
    assert wants_binary(only_a) == frozenset({"a"})


def test_outputs_are_sent_little_endian_and_c_contiguous() -> None:
    data = np.arange(6, dtype=">i4").reshape(2, 3).T  # big-endian and Fortran-ordered
    response = InferResponse("m", "1", [Tensor("y", "INT32", data)])
    encoded = encode_response(InferRequest([], parameters={"binary_data_output": True}), response)
    assert encoded.json_length is not None
    _, raw = _split(encoded.body, encoded.json_length)
    assert np.frombuffer(raw["y"], "<i4").reshape(3, 2).tolist() == data.tolist()


def _fp32(size: int = 8, shape: list[int] | None = None) -> dict[str, Any]:
    return _binary_input("x", "FP32", shape or [2], size)


def _bytes_input(raw: bytes, shape: list[int]) -> tuple[bytes, str]:
    return _body([_binary_input("s", "BYTES", shape, len(raw))], raw)


_HEADER = orjson.dumps({"inputs": [_fp32()]})
_MALFORMED: dict[str, tuple[bytes, str, str]] = {
    "header not an integer": (_HEADER + bytes(8), "ten", "must be a non-negative integer"),
    "header negative": (_HEADER + bytes(8), "-1", "must be a non-negative integer"),
    "header past the body": (_HEADER, str(len(_HEADER) + 1), "exceeds"),
    "header cuts the JSON": (_HEADER + bytes(8), "10", "malformed JSON"),
    "size too short": (*_body([_fp32()], bytes(7)), "'x' (8) add up to 8 bytes, but 7"),
    "trailing bytes": (*_body([_fp32()], bytes(9)), "'x' (8) add up to 8 bytes, but 9"),
    "size not shape": (*_body([_fp32(4)], bytes(4)), "input 'x': shape [2] of FP32 needs 8"),
    "bool not 0 or 1": (*_body([_binary_input("x", "BOOL", [1], 1)], b"\x02"), "input 'x'"),
    "bytes prefix cut": (*_bytes_input(b"\x01\x00", [1]), "length prefix"),
    "bytes past end": (*_bytes_input(b"\x05\x00\x00\x00ab", [1]), "runs past"),
    "bytes too few": (*_bytes_input(b"\x01\x00\x00\x00a", [2]), "length prefix"),
    "bytes trailing": (*_bytes_input(b"\x01\x00\x00\x00ab", [1]), "1 bytes follow"),
    "bytes too many": (*_bytes_input(b"\x00\x00\x00\x00" * 2, [1]), "4 bytes follow"),
}


@pytest.mark.parametrize("case", sorted(_MALFORMED))
def test_malformed_bodies_are_invalid_input(case: str) -> None:
    body, length, message = _MALFORMED[case]
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        decode_request(body, length)


@pytest.mark.parametrize("size", ["8", -1, True, 1.5, None])
def test_binary_data_size_must_be_a_non_negative_integer(size: object) -> None:
    tensor = {**_fp32(), "parameters": {"binary_data_size": size}}
    with pytest.raises(InvalidInputError, match="input 'x': binary_data_size must be"):
        decode_request(*_body([tensor], bytes(8)))


def test_an_input_cannot_have_both_data_and_binary_data_size() -> None:
    tensor = {**_fp32(), "data": [1.0, 2.0]}
    with pytest.raises(InvalidInputError, match="input 'x': has both 'data' and binary_data_size"):
        decode_request(*_body([tensor], bytes(8)))


def test_output_flags_must_be_booleans() -> None:
    with pytest.raises(InvalidInputError, match="binary_data_output must be"):
        decode_request(*_body([_fp32()], bytes(8), parameters={"binary_data_output": 1}))
    outputs = [{"name": "y", "parameters": {"binary_data": "yes"}}]
    with pytest.raises(InvalidInputError, match="output 'y': binary_data must be"):
        decode_request(*_body([_fp32()], bytes(8), outputs=outputs))


def test_every_truncation_and_header_length_is_refused_cleanly() -> None:
    strings = np.array([b"hello", b"", b"\x80"], dtype=object).reshape(1, 3)
    numbers = np.arange(6, dtype=np.int64).reshape(2, 3)
    raw = _raw(numbers, "INT64") + _raw(strings, "BYTES")
    inputs = [
        _binary_input("n", "INT64", [2, 3], len(_raw(numbers, "INT64"))),
        _binary_input("s", "BYTES", [1, 3], len(_raw(strings, "BYTES"))),
    ]
    body, length = _body(inputs, raw)
    assert len(decode_request(body, length).inputs) == 2
    for cut in range(len(body)):
        with pytest.raises(InvalidInputError):
            decode_request(body[:cut], length)
    for wrong in range(len(body) + 2):
        if wrong != int(length):
            with pytest.raises(InvalidInputError):
                decode_request(body, str(wrong))
    # A valid frame whose BYTES payload is corrupted byte by byte still fails only cleanly.
    start = len(body) - len(_raw(strings, "BYTES"))
    for index in range(start, len(body)):
        for value in (0, 1, 0xFF):
            mutated = body[:index] + bytes([value]) + body[index + 1 :]
            with contextlib.suppress(InvalidInputError):
                decode_request(mutated, length)
