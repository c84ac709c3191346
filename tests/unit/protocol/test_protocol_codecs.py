"""V2 datatypes, signatures and the JSON codec, in process."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from maas.errors import InvalidInputError
from maas.protocol.binary_codec import decode_request
from maas.protocol.datatypes import DATATYPES, datatype_of, numpy_dtype
from maas.protocol.json_codec import decode_infer_request, encode_infer_response
from maas.protocol.signature import Signature, TensorSpec
from maas.protocol.types import InferResponse, Tensor


@pytest.mark.parametrize("datatype", sorted(DATATYPES))
def test_datatype_round_trips_through_numpy(datatype: str) -> None:
    assert datatype_of(numpy_dtype(datatype)) == datatype


def test_unknown_datatype_and_dtype_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown datatype 'FP8'"):
        numpy_dtype("FP8")
    with pytest.raises(InvalidInputError, match="no V2 datatype"):
        datatype_of(np.dtype(np.complex64))
    assert datatype_of(np.dtype("U3")) == "BYTES"


def test_signature_round_trips_and_validates() -> None:
    signature = Signature((TensorSpec("x", "FP32", (-1, 3)),), (TensorSpec("y", "INT64", (-1,)),))
    assert Signature.from_dict(signature.to_dict()) == signature
    with pytest.raises(InvalidInputError, match="unknown datatype"):
        TensorSpec("x", "FLOAT", (1,))
    with pytest.raises(InvalidInputError, match="dims must be >= -1"):
        TensorSpec("x", "FP32", (-2,))


def test_decode_reads_nested_data_parameters_and_outputs() -> None:
    body = {
        "id": "a",
        "parameters": {"p": 1},
        "inputs": [{"name": "x", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [3, 4]]}],
        "outputs": [{"name": "y", "parameters": {"binary_data": False}}],
    }
    request = decode_infer_request(orjson.dumps(body))
    (tensor,) = request.inputs
    assert tensor.data.dtype == np.int32 and tensor.data.tolist() == [[1, 2], [3, 4]]
    assert request.id == "a" and request.parameters == {"p": 1}
    assert request.outputs is not None and request.outputs[0].name == "y"


def test_uint64_extremes_are_read_exactly() -> None:
    body = {"inputs": [{"name": "x", "datatype": "UINT64", "shape": [2], "data": [2**64 - 1, 1]}]}
    (tensor,) = decode_infer_request(orjson.dumps(body)).inputs
    assert tensor.data.tolist() == [2**64 - 1, 1]


@pytest.mark.parametrize(
    ("datatype", "data", "fragment"),
    [
        ("INT8", [1.5], "non-integers"),
        ("INT8", [128], "outside the range of INT8"),
        ("UINT8", [-1], "outside the range of UINT8"),
        ("BOOL", [1], "not BOOL"),
        ("FP32", [True], "not FP32"),
        ("BYTES", [1], "BYTES elements must be strings"),
    ],
)
def test_decode_refuses_elements_of_the_wrong_kind(
    datatype: str, data: list[object], fragment: str
) -> None:
    body = {"inputs": [{"name": "x", "datatype": datatype, "shape": [1], "data": data}]}
    with pytest.raises(InvalidInputError, match=fragment):
        decode_infer_request(orjson.dumps(body))


def test_empty_tensor_is_allowed() -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [0, 4], "data": []}]}
    assert decode_infer_request(orjson.dumps(body)).inputs[0].data.shape == (0, 4)


def test_encode_response_carries_ids_and_decodes_bytes() -> None:
    response = InferResponse(
        "m", "3", [Tensor("t", "BYTES", np.array([b"hi", b"there"], dtype=object))], id="r"
    )
    doc = orjson.loads(encode_infer_response(response))
    assert doc == {
        "model_name": "m",
        "model_version": "3",
        "id": "r",
        "outputs": [{"name": "t", "datatype": "BYTES", "shape": [2], "data": ["hi", "there"]}],
    }


def test_a_shape_of_more_dimensions_than_a_tensor_may_have_is_refused() -> None:
    # numpy cannot build an array of more than 64 dims: the decoder said 500 before.
    def body(rank: int) -> bytes:
        tensor = {"name": "x", "datatype": "FP32", "shape": [1] * rank, "data": [1.0]}
        return orjson.dumps({"inputs": [tensor]})

    assert decode_infer_request(body(64)).inputs[0].data.ndim == 64
    with pytest.raises(InvalidInputError, match="shape has 65 dimensions, more than the 64"):
        decode_infer_request(body(65))
    header = orjson.dumps(
        {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1] * 65,
                     "parameters": {"binary_data_size": 4}}]}
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="shape has 65 dimensions"):
        decode_request(header + b"\0" * 4, str(len(header)))


@pytest.mark.parametrize(
    ("datatype", "value"), [("FP32", 1e39), ("FP32", -1e39), ("FP16", 70000.0), ("FP16", 70000)]
)
def test_a_number_beyond_the_range_of_a_float_type_is_refused(datatype: str, value: float) -> None:
    # JSON has no inf: a value that overflows the declared type became inf silently before.
    body = {"inputs": [{"name": "x", "datatype": datatype, "shape": [2], "data": [1.0, value]}]}
    with pytest.raises(InvalidInputError, match=f"a value is outside the range of {datatype}"):
        decode_infer_request(orjson.dumps(body))


def test_the_largest_float_of_each_type_is_read_as_given() -> None:
    inputs = [
        {"name": "a", "datatype": "FP32", "shape": [1], "data": [3.4e38]},
        {"name": "b", "datatype": "FP16", "shape": [1], "data": [65504.0]},
        {"name": "c", "datatype": "FP64", "shape": [1], "data": [1e300]},
    ]
    decoded = decode_infer_request(orjson.dumps({"inputs": inputs})).inputs
    assert [float(t.data[0]) for t in decoded] == [float(np.float32(3.4e38)), 65504.0, 1e300]
    assert [t.data.dtype for t in decoded] == [np.float32, np.float16, np.float64]


def test_non_finite_outputs_are_null_in_json() -> None:
    # The documented policy (docs/architecture.md): JSON cannot hold NaN or inf.
    values = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=np.float32)
    response = InferResponse("m", "1", [Tensor("y", "FP32", values)])
    doc = orjson.loads(encode_infer_response(response))
    assert doc["outputs"][0]["data"] == [None, None, None, 1.5]
