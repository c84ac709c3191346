"""V2 JSON bodies <-> plain protocol types, validated as they are read.

Every structural problem becomes an ``InvalidInputError`` naming the field, so the
transports can answer 400 without looking inside.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from maas.errors import InvalidInputError, MaasError
from maas.protocol.datatypes import check_rank, numpy_dtype
from maas.protocol.types import InferRequest, InferResponse, RequestedOutput, Tensor

__all__ = [
    "InputBuilder",
    "TensorHead",
    "decode_infer_request",
    "encode_infer_response",
    "encode_json",
    "load_json_object",
    "request_from_document",
    "response_document",
    "tensor_from_json",
    "tensor_head",
    "tensor_to_json",
]


def encode_json(value: Any) -> bytes:
    """Serialise a JSON-able value (numpy arrays included) in one pass."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_infer_request(body: bytes | memoryview) -> InferRequest:
    """Parse a V2 inference request body (JSON tensors)."""
    return request_from_document(load_json_object(body))


def load_json_object(body: bytes | memoryview) -> dict[str, Any]:
    """Parse a JSON object, refusing anything else with an ``InvalidInputError``."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("the request body must be a JSON object")
    return doc


@dataclass(frozen=True, slots=True)
class TensorHead:
    """A tensor's validated metadata, before its data is read (from JSON or raw bytes)."""

    name: str
    datatype: str
    dtype: np.dtype
    shape: list[int]
    parameters: dict[str, Any]

    @property
    def where(self) -> str:
        return f"input {self.name!r}"

    @property
    def size(self) -> int:
        return math.prod(self.shape)


#: Builds one input tensor from its head and its JSON object (the binary codec swaps this).
InputBuilder = Callable[[TensorHead, dict[str, Any]], Tensor]


def request_from_document(doc: dict[str, Any], build: InputBuilder | None = None) -> InferRequest:
    """Build a request from its parsed JSON; ``build`` reads each input's data, in order."""
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("'inputs' must be a non-empty list of tensors")
    outputs = doc.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        raise InvalidInputError("'outputs' must be a list")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError("'id' must be a string")
    build = build or _from_json_data
    tensors = []
    for i, t in enumerate(inputs):
        head = tensor_head(t, f"inputs[{i}]")
        tensors.append(build(head, t))
    return InferRequest(
        inputs=tensors,
        outputs=None
        if outputs is None
        else [_requested_output(o, f"outputs[{i}]") for i, o in enumerate(outputs)],
        id=request_id,
        parameters=_parameters(doc, "request"),
    )


def _parameters(doc: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = doc.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidInputError(f"{where}: 'parameters' must be an object")
    return parameters


def _requested_output(doc: Any, where: str) -> RequestedOutput:
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise InvalidInputError(f"{where}: must be an object with a string 'name'")
    return RequestedOutput(doc["name"], _parameters(doc, where))


def tensor_from_json(doc: Any, where: str = "tensor") -> Tensor:
    """Build a tensor from its V2 JSON form, checking datatype, shape and element count."""
    return _from_json_data(tensor_head(doc, where), doc)


def tensor_head(doc: Any, where: str = "tensor") -> TensorHead:
    """Validate a tensor object's name, datatype, shape and parameters (not its data)."""
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{where}: must be an object")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{where}: 'name' must be a non-empty string")
    where = f"input {name!r}"
    datatype = doc.get("datatype")
    if not isinstance(datatype, str):
        raise InvalidInputError(f"{where}: 'datatype' must be a string")
    try:
        dtype = numpy_dtype(datatype)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from None
    shape = doc.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise InvalidInputError(f"{where}: 'shape' must be a list of non-negative integers")
    check_rank(len(shape), where)
    return TensorHead(name, datatype, dtype, shape, _parameters(doc, where))


def _from_json_data(head: TensorHead, doc: dict[str, Any]) -> Tensor:
    where = head.where
    if "data" not in doc:
        raise InvalidInputError(f"{where}: 'data' is missing")
    flat = _flat_array(doc["data"], head.datatype, head.dtype, where)
    if flat.size != head.size:
        raise InvalidInputError(
            f"{where}: shape {head.shape} needs {head.size} elements, 'data' has {flat.size}"
        )
    return Tensor(head.name, head.datatype, flat.reshape(head.shape), head.parameters)


def _flat_array(data: Any, datatype: str, dtype: np.dtype, where: str) -> np.ndarray:
    if not isinstance(data, list):
        data = [data]
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).ravel()
        if not all(isinstance(e, str) for e in flat):
            raise InvalidInputError(f"{where}: BYTES elements must be strings")
        return np.fromiter((e.encode("utf-8") for e in flat), dtype=object, count=flat.size)
    try:
        raw = np.asarray(data)
    except ValueError:
        raise InvalidInputError(f"{where}: 'data' is a ragged nested list") from None
    raw = raw.ravel()
    if raw.size == 0:
        return raw.astype(dtype)
    if dtype.kind in "iu" and raw.dtype.kind in "fO":
        return _exact_integers(data, datatype, dtype, where)
    if not _kind_fits(raw.dtype.kind, dtype.kind):
        raise InvalidInputError(
            f"{where}: 'data' holds {_describe(raw.dtype.kind)}, not {datatype} elements"
        )
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidInputError(f"{where}: a value is outside the range of {datatype}")
    elif dtype.kind == "f" and dtype.itemsize < raw.dtype.itemsize:
        # JSON has no NaN or Infinity: an infinite element here is a number that overflowed
        # the narrower type (1e39 as FP32), which the model must not see as inf.
        try:
            with np.errstate(over="raise"):
                return raw.astype(dtype)
        except FloatingPointError:
            raise InvalidInputError(
                f"{where}: a value is outside the range of {datatype}"
            ) from None
    return raw.astype(dtype, copy=False)


def _exact_integers(data: list[Any], datatype: str, dtype: np.dtype, where: str) -> np.ndarray:
    # numpy reads a list mixing values beyond int64 (UINT64) as floats; re-read exactly.
    values = np.asarray(data, dtype=object).ravel().tolist()
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InvalidInputError(f"{where}: 'data' holds non-integers, not {datatype} elements")
    info = np.iinfo(dtype)
    if min(values) < info.min or max(values) > info.max:
        raise InvalidInputError(f"{where}: a value is outside the range of {datatype}")
    return np.array(values, dtype=dtype)


def _kind_fits(found: str, wanted: str) -> bool:
    if wanted == "b":
        return found == "b"
    if wanted in "iu":
        return found in "iu"
    return found in "iuf"  # floats accept integers written without a decimal point


def _describe(kind: str) -> str:
    return {"b": "booleans", "i": "integers", "u": "integers", "f": "floats"}.get(kind, "text")


def encode_infer_response(response: InferResponse) -> bytes:
    """Serialise a response with JSON tensors."""
    return encode_json(response_document(response, [tensor_to_json(t) for t in response.outputs]))


def response_document(response: InferResponse, outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON object of a response, around already-encoded output objects."""
    doc: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.id is not None:
        doc["id"] = response.id
    if response.parameters:
        doc["parameters"] = response.parameters
    return doc


def tensor_to_json(tensor: Tensor) -> dict[str, Any]:
    """An output tensor as a V2 JSON object with ``data`` (BYTES must be UTF-8 text)."""
    data: Any = np.ascontiguousarray(tensor.data).ravel()
    if tensor.datatype == "BYTES":
        try:
            data = [bytes(e).decode("utf-8") for e in data]
        except UnicodeDecodeError:
            raise MaasError(
                f"output {tensor.name!r} holds bytes that are not UTF-8 text "
                "and cannot be sent as JSON"
            ) from None
    return {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.data.shape),
        "data": data,
    }
