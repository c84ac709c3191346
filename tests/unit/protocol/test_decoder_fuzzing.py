"""Property tests: whatever bytes arrive, the V2 decoders decode them or refuse them with a
4xx maas error (``InvalidInputError``, ``PayloadTooLargeError``), never anything else.

Hypothesis builds request-shaped documents (so the examples reach past the JSON parser into
tensor heads, data and binary slices), mutates their bytes, and feeds random protobuf
``ModelInferRequest`` messages to the gRPC converter. Examples are bounded and derandomized,
so CI runs the same examples every time; the bugs they found are kept below as explicit
regression tests.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tritonclient.grpc import service_pb2

from maas.errors import InvalidInputError, PayloadTooLargeError
from maas.protocol.binary_codec import decode_request
from maas.protocol.datatypes import DATATYPES, MAX_ELEMENTS, numpy_dtype
from maas.protocol.json_codec import decode_infer_request, tensor_from_json
from maas.protocol.types import InferRequest
from maas.serving.grpc.converters import infer_request_from_proto

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REFUSALS = (InvalidInputError, PayloadTooLargeError)

# --- strategies -----------------------------------------------------------------------------

_HUGE = [2**31, 2**59, 2**62, 2**63 - 1, 2**64, 2**70]
_numbers = (
    st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, -1, 255, 256, 65504, 70000, 1e39, 1.5e308, 2**63, 2**64 - 1])
)
_scalars = st.none() | st.booleans() | _numbers | st.text(max_size=6)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=16,
)
_datatypes = st.sampled_from(sorted(DATATYPES)) | st.text(max_size=6)
_dims = st.integers(min_value=-1, max_value=3) | st.sampled_from(_HUGE)
_shapes = st.lists(_dims, max_size=5) | _json
_data = (
    st.lists(_numbers, max_size=12)
    | st.lists(st.booleans(), max_size=12)
    | st.lists(st.text(max_size=4), max_size=12)
    | st.lists(st.lists(_numbers, max_size=4), max_size=4)
    | _json
)
_parameters = st.dictionaries(
    st.sampled_from(["binary_data_size", "binary_data", "timeout", "x"]),
    st.integers(min_value=-1, max_value=64) | _scalars,
    max_size=2,
)


def _elements(datatype: str) -> st.SearchStrategy[Any]:
    """Values of the kind a datatype holds (and, for numbers, just past its range)."""
    if datatype == "BOOL":
        return st.booleans()
    if datatype == "BYTES":
        return st.text(max_size=4)
    if datatype.startswith("FP"):
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-70000, 70000)
    if datatype in DATATYPES:
        info = np.iinfo(numpy_dtype(datatype))
        return st.integers(min_value=int(info.min) - 1, max_value=int(info.max) + 1)
    return _scalars


def _count(shape: Any) -> int | None:
    """The element count of a well-formed shape, else None."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        return None
    return math.prod(shape)


def _broken(draw: st.DrawFn) -> bool:
    """One field in four is replaced by anything at all; the rest are well-formed, so that
    most examples get past the first check into the ones behind it."""
    return draw(st.integers(min_value=0, max_value=3)) == 0


@st.composite
def _tensors(draw: st.DrawFn) -> dict[str, Any]:
    """A tensor object, its data mostly of the size its shape says."""
    datatype = draw(st.sampled_from(sorted(DATATYPES)) if not _broken(draw) else _datatypes)
    shape = draw(st.lists(_dims, max_size=5) if not _broken(draw) else _shapes)
    name = draw(st.sampled_from(["x", "y", "z"]) if not _broken(draw) else _json)
    doc: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
    count = _count(shape)
    if count is not None and count <= 16 and not _broken(draw):
        doc["data"] = draw(st.lists(_elements(datatype), min_size=count, max_size=count))
    elif draw(st.booleans()):
        doc["data"] = draw(_data)
    if draw(st.booleans()):
        doc["parameters"] = draw(_parameters if not _broken(draw) else _json)
    return doc


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    inputs = draw(st.lists(_tensors(), min_size=1, max_size=3))
    doc: dict[str, Any] = {"inputs": inputs if not _broken(draw) else draw(_json)}
    if draw(st.booleans()):
        outputs = st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=3)}, optional={"parameters": _parameters}
            ),
            max_size=2,
        )
        doc["outputs"] = draw(outputs if not _broken(draw) else _json)
    if draw(st.booleans()):
        doc["id"] = draw(st.text(max_size=4) if not _broken(draw) else _json)
    if draw(st.booleans()):
        parameters = st.dictionaries(
            st.sampled_from(["binary_data_output", "timeout"]), _scalars, max_size=2
        )
        doc["parameters"] = draw(parameters if not _broken(draw) else _json)
    return doc


def _body(document: Any) -> bytes:
    # The standard library writes integers of any size (orjson stops at 64 bits).
    return json.dumps(document).encode()


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A request body with a few bytes replaced, inserted or cut."""
    body = bytearray(_body(draw(_requests())))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not body:
            break
        at = draw(st.integers(min_value=0, max_value=len(body) - 1))
        action = draw(st.sampled_from(["replace", "insert", "cut"]))
        byte = draw(st.integers(min_value=0, max_value=255))
        if action == "replace":
            body[at] = byte
        elif action == "insert":
            body.insert(at, byte)
        else:
            del body[at : at + draw(st.integers(min_value=1, max_value=8))]
    return bytes(body)


def _decodes_or_refuses(decode: Any, *args: Any) -> None:
    try:
        request = decode(*args)
    except REFUSALS:
        return
    assert isinstance(request, InferRequest)
    for tensor in request.inputs:
        assert isinstance(tensor.data, np.ndarray)
        assert list(tensor.data.shape) == [int(d) for d in tensor.data.shape]


# --- the JSON codec -------------------------------------------------------------------------


@FUZZ
@given(_requests())
def test_json_requests_decode_or_are_refused(document: Any) -> None:
    _decodes_or_refuses(decode_infer_request, _body(document))


@FUZZ
@given(_mutated() | st.binary(max_size=64))
def test_mutated_or_random_json_bodies_decode_or_are_refused(body: bytes) -> None:
    _decodes_or_refuses(decode_infer_request, body)


@FUZZ
@given(_tensors() | _json)
def test_json_tensors_decode_or_are_refused(document: Any) -> None:
    _decodes_or_refuses(lambda doc: InferRequest([tensor_from_json(doc)]), document)


# --- the binary tensor extension ------------------------------------------------------------


@st.composite
def _binary_bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A request whose well-formed tensors mostly travel as raw bytes of about their size."""
    document = draw(_requests())
    raw = b""
    for tensor in document["inputs"] if isinstance(document["inputs"], list) else ():
        if not isinstance(tensor, dict):
            continue
        count = _count(tensor.get("shape"))
        datatype = tensor.get("datatype")
        if count is None or datatype not in DATATYPES or not draw(st.booleans()):
            continue
        tensor.pop("data", None)
        itemsize = 4 if datatype == "BYTES" else numpy_dtype(datatype).itemsize
        size = min(count * itemsize, 64)
        chunk = draw(st.binary(min_size=size, max_size=size) | st.binary(max_size=16))
        tensor["parameters"] = {"binary_data_size": len(chunk)}
        raw += chunk
    header = _body(document)
    raw += draw(st.just(b"") | st.binary(max_size=8))
    length = draw(
        st.just(str(len(header)))
        | st.none()
        | st.integers(min_value=-1, max_value=len(header) + len(raw) + 1).map(str)
        | st.text(max_size=4)
    )
    return header + raw, length


@FUZZ
@given(_binary_bodies())
def test_binary_bodies_decode_or_are_refused(body_and_length: tuple[bytes, str | None]) -> None:
    _decodes_or_refuses(decode_request, *body_and_length)


# --- the gRPC converter ---------------------------------------------------------------------

_CONTENTS: dict[str, st.SearchStrategy[Any]] = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(min_value=-(2**31), max_value=2**31 - 1),
    "int64_contents": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "uint_contents": st.integers(min_value=0, max_value=2**32 - 1),
    "uint64_contents": st.integers(min_value=0, max_value=2**64 - 1),
    "fp32_contents": st.floats(width=32),
    "fp64_contents": st.floats(),
    "bytes_contents": st.binary(max_size=6),
}
_proto_dims = st.integers(min_value=-1, max_value=3) | st.sampled_from(
    [-(2**63), 2**31, 2**59, 2**62, 2**63 - 1]
)
_FIELD_OF = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def _set_parameters(draw: st.DrawFn, target: Any) -> None:
    for key in draw(st.lists(st.sampled_from(["binary_data", "timeout", "x"]), max_size=2)):
        choice = draw(st.sampled_from(["bool", "int64", "uint64", "string", "double"]))
        parameter = target[key]
        if choice == "bool":
            parameter.bool_param = draw(st.booleans())
        elif choice == "int64":
            parameter.int64_param = draw(st.integers(min_value=-(2**63), max_value=2**63 - 1))
        elif choice == "uint64":
            parameter.uint64_param = draw(st.integers(min_value=0, max_value=2**64 - 1))
        elif choice == "string":
            parameter.string_param = draw(st.text(max_size=4))
        else:
            parameter.double_param = draw(st.floats())


@st.composite
def _infer_requests(draw: st.DrawFn) -> Any:
    message = service_pb2.ModelInferRequest(model_name="m", id=draw(st.text(max_size=4)))
    _set_parameters(draw, message.parameters)
    count = draw(st.integers(min_value=0, max_value=3))
    raw = draw(st.booleans())
    for _ in range(count):
        datatype = draw(_datatypes)
        shape = draw(st.lists(_proto_dims, max_size=5))
        tensor = message.inputs.add(
            name=draw(st.sampled_from(["x", "y", ""])), datatype=datatype, shape=shape
        )
        _set_parameters(draw, tensor.parameters)
        elements = _count(shape)
        field = _FIELD_OF.get(datatype)
        if raw:
            itemsize = 4 if datatype == "BYTES" else 1
            if datatype in DATATYPES and datatype != "BYTES":
                itemsize = numpy_dtype(datatype).itemsize
            size = min((elements or 0) * itemsize, 64)
            message.raw_input_contents.append(
                draw(st.binary(min_size=size, max_size=size) | st.binary(max_size=16))
            )
        elif field and elements is not None and elements <= 16 and draw(st.booleans()):
            values = st.lists(_CONTENTS[field], min_size=elements, max_size=elements)
            getattr(tensor.contents, field).extend(draw(values))
        else:
            for name in draw(st.lists(st.sampled_from(sorted(_CONTENTS)), max_size=2, unique=True)):
                getattr(tensor.contents, name).extend(draw(st.lists(_CONTENTS[name], max_size=8)))
    if raw and draw(st.booleans()):
        message.raw_input_contents.append(draw(st.binary(max_size=8)))  # one too many
    for name in draw(st.lists(st.text(max_size=3), max_size=2)):
        _set_parameters(draw, message.outputs.add(name=name).parameters)
    return message


@FUZZ
@given(_infer_requests())
def test_grpc_requests_convert_or_are_refused(message: Any) -> None:
    _decodes_or_refuses(infer_request_from_proto, message)


@FUZZ
@given(
    _infer_requests(), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4)
)
def test_mutated_grpc_messages_convert_or_are_refused(
    message: Any, flips: list[tuple[int, int]]
) -> None:
    wire = bytearray(message.SerializeToString())
    for at, byte in flips:
        if wire:
            wire[at % len(wire)] = byte
    try:
        mutated = service_pb2.ModelInferRequest.FromString(bytes(wire))
    except Exception:  # not a message any more: grpc itself refuses it before maas sees it
        return
    _decodes_or_refuses(infer_request_from_proto, mutated)


# --- what the fuzzing found, kept as explicit regressions -----------------------------------

_TOO_LARGE = [[0, 2**62, 4], [0, 2**63 - 1], [0, 2**64 - 1], [2**31, 2**31, 2**31]]


@pytest.mark.parametrize("shape", _TOO_LARGE)
def test_an_empty_tensor_of_an_impossible_shape_is_refused_over_json(shape: list[int]) -> None:
    """numpy raised ValueError ("array is too big") reshaping zero elements: a 500."""
    body = _body({"inputs": [{"name": "x", "datatype": "FP32", "shape": shape, "data": []}]})
    with pytest.raises(InvalidInputError, match="too large for a tensor"):
        decode_infer_request(body)


@pytest.mark.parametrize("shape", _TOO_LARGE)
def test_an_impossible_shape_is_refused_over_the_binary_extension(shape: list[int]) -> None:
    header = _body(
        {
            "inputs": [
                {"name": "x", "datatype": "INT8", "shape": shape},
                {"name": "y", "datatype": "BYTES", "shape": shape},
            ]
        }
    )
    header = header.replace(b'"shape"', b'"parameters": {"binary_data_size": 0}, "shape"')
    with pytest.raises(InvalidInputError, match="too large for a tensor"):
        decode_request(header, str(len(header)))


@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
@pytest.mark.parametrize("shape", [[0, 2**62, 4], [0, 2**63 - 1], [2**31, 2**31, 2**31]])
def test_an_impossible_shape_is_refused_over_grpc(datatype: str, shape: list[int]) -> None:
    message = service_pb2.ModelInferRequest(model_name="m")
    message.inputs.add(name="x", datatype=datatype, shape=shape)
    with pytest.raises(InvalidInputError, match="too large for a tensor"):
        infer_request_from_proto(message)
    message.raw_input_contents.append(b"")
    with pytest.raises(InvalidInputError, match="too large for a tensor"):
        infer_request_from_proto(message)


def test_a_bytes_shape_larger_than_its_bytes_is_refused_before_anything_is_allocated() -> None:
    """A raw BYTES tensor of shape [10**9] with 4 bytes allocated an 8 GB object array
    before it looked at the bytes; now the shape is held against the bytes first."""
    message = service_pb2.ModelInferRequest(model_name="m", raw_input_contents=[b"\0\0\0\0"])
    message.inputs.add(name="x", datatype="BYTES", shape=[10**9])
    with pytest.raises(InvalidInputError, match="4-byte length prefix"):
        infer_request_from_proto(message)


@example(shape=[0, MAX_ELEMENTS])
@example(shape=[0, MAX_ELEMENTS, 2])
@given(shape=st.lists(st.integers(min_value=0, max_value=MAX_ELEMENTS), max_size=4))
@settings(max_examples=50, deadline=None, database=None, derandomize=True)
def test_an_empty_tensor_decodes_exactly_when_its_shape_is_within_the_bound(
    shape: list[int],
) -> None:
    if 0 not in shape:
        shape = [0, *shape]
    body = _body({"inputs": [{"name": "x", "datatype": "FP64", "shape": shape, "data": []}]})
    if math.prod(d for d in shape if d) > MAX_ELEMENTS:
        with pytest.raises(InvalidInputError, match="too large for a tensor"):
            decode_infer_request(body)
        return
    (tensor,) = decode_infer_request(body).inputs  # numpy holds every shape the bound lets in
    assert tensor.data.size == 0 and list(tensor.data.shape) == shape
