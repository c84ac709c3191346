"""The client's side of V2 inference: encode requests, decode responses.

The server's side (``maas.protocol.binary_codec``) decodes requests and encodes
responses; this is the other half, over the same raw tensor layout
(``maas.protocol.raw``) and JSON tensor rules (``maas.protocol.json_codec``).

With ``binary=True`` every input travels as raw bytes after a JSON header (the binary
tensor extension, header ``Inference-Header-Content-Length``) and every output is asked
for the same way, so no float is printed and parsed as text; ``binary=False`` sends and
receives plain JSON, which any V2 server understands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from maas.errors import InvalidInputError, MaasError
from maas.protocol.datatypes import datatype_of
from maas.protocol.json_codec import encode_json, load_json_object, tensor_from_json
from maas.protocol.raw import array_from_raw, raw_from_array

from ._types import InferResult

__all__ = ["HEADER_LENGTH", "EncodedRequest", "decode_response", "encode_request"]

#: The binary tensor extension's header: the length of the JSON part of a body.
HEADER_LENGTH: Final = "Inference-Header-Content-Length"
_SIZE: Final = "binary_data_size"


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A request body and the headers that say how to read it."""

    body: bytes
    headers: dict[str, str]


def encode_request(
    inputs: Mapping[str, Any],
    *,
    outputs: Sequence[str] | None = None,
    binary: bool = True,
    timeout_us: int | None = None,
    request_id: str | None = None,
) -> EncodedRequest:
    """Encode numpy inputs; the V2 datatype of each comes from its dtype.

    >>> encoded = encode_request({"x": np.array([[1, 2]], np.int8)})
    >>> encoded.headers[HEADER_LENGTH], encoded.body[-2:]
    ('134', b'\\x01\\x02')
    """
    if not inputs:
        raise InvalidInputError("infer needs at least one input")
    documents: list[dict[str, Any]] = []
    chunks: list[Any] = [b""]
    for name, value in inputs.items():
        array = np.asarray(value)
        datatype = datatype_of(array.dtype if array.dtype.isnative else array.dtype.newbyteorder())
        head: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary:
            raw = raw_from_array(array, datatype)
            chunks.append(raw)
            head["parameters"] = {_SIZE: len(raw) if isinstance(raw, bytes) else raw.nbytes}
        else:
            head["data"] = _json_data(name, array, datatype)
        documents.append(head)
    document: dict[str, Any] = {"inputs": documents}
    if request_id is not None:
        document["id"] = request_id
    parameters: dict[str, Any] = {}
    if timeout_us is not None:
        parameters["timeout"] = timeout_us
    if outputs is not None:
        document["outputs"] = [{"name": o, "parameters": {"binary_data": binary}} for o in outputs]
    elif binary:
        parameters["binary_data_output"] = True
    if parameters:
        document["parameters"] = parameters
    header = encode_json(document)
    if not binary:
        return EncodedRequest(header, {"Content-Type": "application/json"})
    chunks[0] = header
    return EncodedRequest(
        b"".join(chunks),
        {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))},
    )


def _json_data(name: str, array: np.ndarray, datatype: str) -> Any:
    flat = np.ascontiguousarray(array).ravel()
    if datatype != "BYTES":
        return flat.tolist()
    try:
        return [e.decode("utf-8") if isinstance(e, bytes) else str(e) for e in flat.tolist()]
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"input {name!r}: BYTES elements that are not UTF-8 text cannot be sent as "
            "JSON; send them with binary=True"
        ) from None


def decode_response(body: bytes, header_length: str | None) -> InferResult:
    """Decode a V2 response; with ``header_length`` its outputs may be raw bytes.

    A response that does not follow the protocol is a ``MaasError`` (the server's fault,
    not the caller's), never an ``InvalidInputError``.
    """
    try:
        return _decode(body, header_length)
    except InvalidInputError as exc:
        raise MaasError(f"malformed inference response: {exc.message}") from None


def _decode(body: bytes, header_length: str | None) -> InferResult:
    view = memoryview(body)
    json_length = len(view)
    if header_length is not None:
        text = header_length.strip()
        if not text.isdigit() or int(text) > len(view):
            raise InvalidInputError(f"{HEADER_LENGTH} {text!r} does not fit the body")
        json_length = int(text)
    document = load_json_object(view[:json_length])
    raw = view[json_length:]
    offset = 0
    outputs: dict[str, np.ndarray] = {}
    for doc in _list(document.get("outputs"), "outputs"):
        parameters = doc.get("parameters") if isinstance(doc, dict) else None
        size = parameters.get(_SIZE) if isinstance(parameters, dict) else None
        if size is None:
            tensor = tensor_from_json(doc, "output")
            outputs[tensor.name] = tensor.data
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(raw):
            raise InvalidInputError(f"output {doc.get('name')!r}: bad binary_data_size {size!r}")
        name, datatype, shape = str(doc.get("name")), doc.get("datatype"), doc.get("shape")
        if not isinstance(datatype, str) or not isinstance(shape, list):
            raise InvalidInputError(f"output {name!r}: needs a datatype and a shape")
        where = f"output {name!r}"
        outputs[name] = array_from_raw(raw[offset : offset + size], datatype, shape, where)
        offset += size
    if offset != len(raw):
        raise InvalidInputError(f"{len(raw) - offset} bytes follow the last binary output")
    request_id = document.get("id")
    parameters = document.get("parameters")
    return InferResult(
        model_name=str(document.get("model_name", "")),
        model_version=str(document.get("model_version", "")),
        id=None if request_id is None else str(request_id),
        outputs=outputs,
        parameters=parameters if isinstance(parameters, dict) else {},
    )


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInputError(f"{field!r} must be a list")
    return value
