"""The KServe V2 / Triton binary tensor extension: a JSON header, then raw tensor bytes.

A body is ``header_length`` bytes of V2 JSON, then the raw data of every input whose
``parameters`` hold ``binary_data_size``, concatenated in input order. Raw data is
little-endian and row-major; BOOL is one byte an element; each BYTES element is a
4-byte little-endian length and then its bytes. Fixed-size tensors are read with
``np.frombuffer``, so they share (read-only) memory with the body instead of copying it.

Responses carry an output as raw bytes when the request asks for it
(``binary_data_output`` at the top, or ``binary_data`` on a requested output, which
wins). The transport sends ``json_length`` in its ``Inference-Header-Content-Length``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maas.errors import InvalidInputError
from maas.protocol.json_codec import (
    JSON_LIMITS,
    JsonLimits,
    TensorHead,
    encode_json,
    load_json_object,
    request_from_document,
    response_document,
    tensor_from_json,
    tensor_to_json,
)
from maas.protocol.raw import array_from_raw, raw_from_array
from maas.protocol.types import InferRequest, InferResponse, Tensor

__all__ = ["EncodedResponse", "decode_request", "encode_response", "wants_binary"]

_SIZE = "binary_data_size"


@dataclass(frozen=True, slots=True)
class EncodedResponse:
    """A response body; ``json_length`` is None when it is plain JSON (no binary output)."""

    body: bytes
    json_length: int | None


def decode_request(
    body: bytes, header_length: str | None, json_limits: JsonLimits = JSON_LIMITS
) -> InferRequest:
    """Decode a V2 request body; without ``header_length`` it is pure JSON (its JSON part
    bounded by ``json_limits``).

    >>> decode_request(b'{"inputs":[{"name":"x","datatype":"INT8","shape":[1],'
    ...                b'"parameters":{"binary_data_size":1}}]}\\x07', "91").inputs[0].data
    array([7], dtype=int8)
    """
    view = memoryview(body)
    json_length = _json_length(header_length, len(view))
    doc = load_json_object(body if header_length is None else view[:json_length], json_limits)
    raw = view[json_length:]
    sizes = _binary_sizes(doc)
    declared = sum(size for _, size in sizes)
    if declared != len(raw):
        named = ", ".join(f"{name!r} ({size})" for name, size in sizes) or "none"
        raise InvalidInputError(
            f"binary_data_size of inputs {named} add up to {declared} bytes, but "
            f"{len(raw)} bytes follow the {json_length}-byte JSON header"
        )
    reader = _RawReader(raw)
    request = request_from_document(doc, reader.build)
    _check_output_flags(request)
    return request


def _json_length(header_length: str | None, body_size: int) -> int:
    if header_length is None:
        return body_size
    text = header_length.strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidInputError(
            f"Inference-Header-Content-Length must be a non-negative integer, not {text!r}"
        )
    length = int(text)
    if length > body_size:
        raise InvalidInputError(
            f"Inference-Header-Content-Length {length} exceeds the {body_size}-byte body"
        )
    return length


def _binary_sizes(doc: dict[str, Any]) -> list[tuple[str, int]]:
    """Every binary input's name and size, checked before any byte is sliced."""
    inputs = doc.get("inputs")
    sizes: list[tuple[str, int]] = []
    for i, tensor in enumerate(inputs if isinstance(inputs, list) else ()):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(parameters, dict) or _SIZE not in parameters:
            continue
        name = tensor.get("name")
        where = f"input {name!r}" if isinstance(name, str) else f"inputs[{i}]"
        size = parameters[_SIZE]
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInputError(f"{where}: binary_data_size must be a non-negative integer")
        if "data" in tensor:
            raise InvalidInputError(f"{where}: has both 'data' and binary_data_size")
        sizes.append((name if isinstance(name, str) else where, size))
    return sizes


class _RawReader:
    """Hands each binary input its slice of the body, in input order."""

    def __init__(self, raw: memoryview) -> None:
        self._raw = raw
        self._offset = 0

    def build(self, head: TensorHead, doc: dict[str, Any]) -> Tensor:
        parameters = dict(head.parameters)
        size = parameters.pop(_SIZE, None)
        if size is None:
            return tensor_from_json(doc)
        chunk = self._raw[self._offset : self._offset + size]
        self._offset += size
        return Tensor(
            head.name,
            head.datatype,
            array_from_raw(chunk, head.datatype, head.shape, head.where),
            parameters,
        )


def _check_output_flags(request: InferRequest) -> None:
    flag = request.parameters.get("binary_data_output", False)
    if not isinstance(flag, bool):
        raise InvalidInputError("request: binary_data_output must be true or false")
    for output in request.outputs or ():
        if not isinstance(output.parameters.get("binary_data", False), bool):
            raise InvalidInputError(f"output {output.name!r}: binary_data must be true or false")


def wants_binary(request: InferRequest) -> frozenset[str] | bool:
    """Which outputs go as raw bytes: a set of names, or a bool meaning every output."""
    default = request.parameters.get("binary_data_output") is True
    if not request.outputs:
        return default
    return frozenset(
        o.name for o in request.outputs if o.parameters.get("binary_data", default) is True
    )


def encode_response(request: InferRequest, response: InferResponse) -> EncodedResponse:
    """Encode ``response`` with the outputs ``request`` wants binary as raw bytes."""
    binary = wants_binary(request)
    docs: list[dict[str, Any]] = []
    chunks: list[Any] = [b""]
    for tensor in response.outputs:
        if binary is True or (isinstance(binary, frozenset) and tensor.name in binary):
            raw = raw_from_array(tensor.data, tensor.datatype)
            chunks.append(raw)
            docs.append(
                {
                    "name": tensor.name,
                    "datatype": tensor.datatype,
                    "shape": list(tensor.data.shape),
                    "parameters": {_SIZE: len(raw) if isinstance(raw, bytes) else raw.nbytes},
                }
            )
        else:
            docs.append(tensor_to_json(tensor))
    header = encode_json(response_document(response, docs))
    if len(chunks) == 1:
        return EncodedResponse(header, None)
    chunks[0] = header
    return EncodedResponse(b"".join(chunks), len(header))
