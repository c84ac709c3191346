"""V2 JSON bodies <-> plain protocol types, validated as they are read.

Every structural problem becomes an ``InvalidInputError`` naming the field, so the
transports can answer 400 without looking inside.

Before a body is parsed its size in structure is bounded (``JsonLimits``): nesting depth,
object keys and values. orjson builds every object of a document at once, holding the
GIL, so a 60 MB body of 3,000,000 keys held the event loop for 2.6 s; the bounds are
checked on the bytes first. A body too short to pass a bound is not counted for it (the
tiny MLP's request is counted for nothing); otherwise counting ``:`` ``,`` ``[`` ``{`` in
the raw bytes (C speed) bounds each quantity from above, since a string may hold those
bytes too; only a body whose raw counts pass a bound is scanned exactly, strings left
out (``_structure``: numpy over 1 MiB blocks, letting go of the GIL between them). The
60 MB body of 3,000,000 keys is refused in about 0.3 s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from maas.errors import InvalidInputError, MaasError
from maas.protocol.datatypes import check_shape, numpy_dtype
from maas.protocol.types import InferRequest, InferResponse, RequestedOutput, Tensor

__all__ = [
    "JSON_LIMITS",
    "InputBuilder",
    "JsonLimits",
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


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """How much structure a JSON body may hold; ``load_json_object`` checks it first.

    ``max_depth``: nesting of arrays and objects (a rank-64 tensor written nested needs
    about 68); ``max_keys``: object keys, all objects together; ``max_elements``: values,
    array elements and object members together (counted by their separators and
    containers, so within one per container of exact). The defaults are those of
    ``MAAS_JSON_MAX_*`` (a test holds them equal: the SDK uses these without settings).

    >>> load_json_object(b'{"a": [[[1]]]}', JsonLimits(max_depth=3))
    Traceback (most recent call last):
    ...
    maas.errors.InvalidInputError: JSON body: nested 4 levels deep, more than the 3 accepted
    """

    max_depth: int = 100
    max_keys: int = 10_000
    max_elements: int = 1 << 23


#: The bounds a decoder applies when it is given none.
JSON_LIMITS = JsonLimits()


def decode_infer_request(
    body: bytes | memoryview, limits: JsonLimits = JSON_LIMITS
) -> InferRequest:
    """Parse a V2 inference request body (JSON tensors)."""
    return request_from_document(load_json_object(body, limits))


def load_json_object(body: bytes | memoryview, limits: JsonLimits = JSON_LIMITS) -> dict[str, Any]:
    """Parse a JSON object, refusing anything else with an ``InvalidInputError``, and a
    body over ``limits`` before it is parsed."""
    text = body if isinstance(body, bytes) else bytes(body)
    _check_limits(text, limits)
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("the request body must be a JSON object")
    return doc


_BLOCK = 1 << 20  # what numpy counts and scans at a time
_NUMPY_COUNT_BYTES = 4096  # past this, numpy counts faster than bytes.count
# Everything but the bytes that make a JSON document's structure: " : , [ ] { }.
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'":,[]{}')))
_NOT_OPENS = bytes(sorted(set(range(256)) - set(b"[{")))
_BACKSLASH = ord("\\")
_QUOTE, _COLON, _COMMA = ord('"'), ord(":"), ord(",")
_OPENS, _CLOSES = np.array([ord("["), ord("{")]), np.array([ord("]"), ord("}")])


def _check_limits(text: bytes, limits: JsonLimits) -> None:
    # A level takes 2 bytes ("[]"), a key 4 ('"":0'), a value 1: a body too short to pass
    # a bound is not counted for it, so a small request costs no count at all.
    size = len(text)
    counts_values = size > limits.max_elements
    if size > _NUMPY_COUNT_BYTES:
        opens = _count(text, b"[") + _count(text, b"{")
    elif size > 2 * limits.max_depth or counts_values:
        opens = len(text.translate(None, _NOT_OPENS))  # one pass for both (1 µs on 1.4 KB)
    else:
        opens = 0
    keys = _count(text, b":") if size > 4 * limits.max_keys else 0
    values = _count(text, b",") + opens if counts_values else 0
    if opens <= limits.max_depth and keys <= limits.max_keys and values <= limits.max_elements:
        return  # counts in the raw bytes bound the real ones from above
    depth, keys, values = _structure(text)
    if depth > limits.max_depth:
        raise InvalidInputError(
            f"JSON body: nested {depth} levels deep, more than the {limits.max_depth} accepted"
        )
    if keys > limits.max_keys:
        raise InvalidInputError(
            f"JSON body: {keys} object keys, more than the {limits.max_keys} accepted"
        )
    if values > limits.max_elements:
        raise InvalidInputError(
            f"JSON body: {values} values, more than the {limits.max_elements} accepted; "
            "send large tensors as binary data"
        )


def _count(text: bytes, byte: bytes) -> int:
    """``text.count(byte)``: ``bytes.count`` runs at about 0.5 GB/s, numpy's comparison
    at about 10 GB/s after a microsecond to start, so past 4 KiB numpy counts, a 1 MiB
    block at a time (letting go of the GIL between blocks)."""
    if len(text) <= _NUMPY_COUNT_BYTES:
        return text.count(byte)
    array, wanted = np.frombuffer(text, np.uint8), ord(byte)
    return sum(int(np.count_nonzero(block == wanted)) for block in _blocks(array))


def _blocks(array: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, array.size, _BLOCK):
        yield array[start : start + _BLOCK]


def _structure(text: bytes) -> tuple[int, int, int]:
    """Depth, keys and values of ``text``, counted outside its strings.

    A block at a time (never ending inside a run of backslashes, so no escape is cut):
    escaped backslashes and escaped quotes are dropped, so every quote left opens or
    closes a string; only structural bytes are kept; numpy finds those outside strings
    by the parity of the quotes before them. Memory stays a few MB whatever the body,
    and the GIL is let go between blocks and inside numpy's loops.
    """
    depth = level = keys = values = 0
    in_string = 0
    for block in _text_blocks(text):
        if b"\\" in block:
            block = block.replace(b"\\\\", b"").replace(b'\\"', b"")
        skeleton = np.frombuffer(block.translate(None, _NOT_STRUCTURE), np.uint8)
        if not skeleton.size:
            continue
        quotes = skeleton == _QUOTE
        parity = (np.cumsum(quotes, dtype=np.uint8) + in_string) & 1
        in_string = int(parity[-1])
        bare = skeleton[(parity == 0) & ~quotes]
        opens = np.isin(bare, _OPENS)
        steps = opens.astype(np.int32) - np.isin(bare, _CLOSES)
        if steps.size:
            levels = np.cumsum(steps) + level
            depth = max(depth, int(levels.max()))
            level = int(levels[-1])
        keys += int(np.count_nonzero(bare == _COLON))
        values += int(np.count_nonzero(bare == _COMMA)) + int(np.count_nonzero(opens))
    return depth, keys, values


def _text_blocks(text: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(text):
        end = min(start + _BLOCK, len(text))
        while end < len(text) and text[end - 1] == _BACKSLASH:
            end += 1
        yield text[start:end]
        start = end


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
    check_shape(shape, where)
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
