"""Protobuf messages of the KServe V2 gRPC service <-> plain ``maas.protocol`` types.

All protobuf mapping lives here (STYLE habit 2). Tensors arrive either as typed
``contents`` or as ``raw_input_contents`` (one blob per input, all or none, as Triton
requires); responses always carry ``raw_output_contents``, as Triton's do. Raw tensors
are little-endian; raw BYTES elements are each prefixed by a 4-byte little-endian length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
from google.protobuf import json_format  # type: ignore[import-untyped]  # no protobuf stubs
from tritonclient.grpc import model_config_pb2, service_pb2

from maas.errors import InvalidInputError
from maas.protocol.datatypes import check_rank, check_shape, numpy_dtype
from maas.protocol.raw import array_from_raw, raw_from_array
from maas.protocol.types import InferRequest, InferResponse, RequestedOutput, Tensor

__all__ = [
    "infer_error_to_stream",
    "infer_request_from_proto",
    "infer_response_to_proto",
    "model_config_to_proto",
    "model_metadata_to_proto",
    "model_statistics_to_proto",
    "repository_index_to_proto",
    "server_metadata_to_proto",
]

# The typed ``InferTensorContents`` field of each datatype (FP16 has none: raw only).
_CONTENTS_FIELD: Final[dict[str, str]] = {
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


# --- parameters ---------------------------------------------------------------------------


def _parameters_from_proto(parameters: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        values[key] = getattr(parameter, choice) if choice else None
    return values


def _parameters_to_proto(values: Mapping[str, Any], target: Any) -> None:
    for key, value in values.items():
        parameter = target[key]
        if isinstance(value, bool):
            parameter.bool_param = value
        elif isinstance(value, int):
            parameter.int64_param = value
        elif isinstance(value, float):
            parameter.double_param = value
        else:
            parameter.string_param = str(value)


# --- tensors ------------------------------------------------------------------------------


def _shape(tensor: Any, where: str) -> tuple[tuple[int, ...], int]:
    check_rank(len(tensor.shape), where)
    shape = tuple(int(d) for d in tensor.shape)
    if any(d < 0 for d in shape):
        raise InvalidInputError(f"{where}: shape {list(shape)} has a negative dimension")
    check_shape(shape, where)
    return shape, math.prod(shape)


def _dtype(datatype: str, where: str) -> np.dtype:
    try:
        return numpy_dtype(datatype)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}") from None


def _from_raw(tensor: Any, raw: bytes, where: str) -> np.ndarray:
    shape, _ = _shape(tensor, where)
    _dtype(tensor.datatype, where)  # an unknown datatype is named before the bytes
    return array_from_raw(raw, tensor.datatype, shape, where)


def _from_contents(tensor: Any, where: str) -> np.ndarray:
    shape, count = _shape(tensor, where)
    dtype = _dtype(tensor.datatype, where)
    field = _CONTENTS_FIELD.get(tensor.datatype)
    present = [f.name for f, _ in tensor.contents.ListFields()]
    if any(name != field for name in present):
        hint = f"expected {field}" if field else "FP16 has no typed field: use raw contents"
        raise InvalidInputError(f"{where}: {tensor.datatype} data in {', '.join(present)}; {hint}")
    values = getattr(tensor.contents, field) if field else ()
    if len(values) != count:
        raise InvalidInputError(
            f"{where}: {len(values)} elements given but shape {list(shape)} holds {count}"
        )
    if tensor.datatype == "BYTES":
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(shape)
    try:
        return np.array(values, dtype=dtype).reshape(shape)
    except OverflowError:
        raise InvalidInputError(f"{where}: a value is out of range for {tensor.datatype}") from None


def infer_request_from_proto(message: Any) -> InferRequest:
    """``ModelInferRequest`` -> request (its model and version are routed before)."""
    raw = message.raw_input_contents
    if raw and len(raw) != len(message.inputs):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs; "
            "give one per input, in input order, or use typed contents for all"
        )
    inputs: list[Tensor] = []
    for i, tensor in enumerate(message.inputs):
        where = f"input {tensor.name!r}"
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInputError(
                    f"{where}: typed contents cannot be mixed with raw_input_contents"
                )
            data = _from_raw(tensor, raw[i], where)
        else:
            data = _from_contents(tensor, where)
        inputs.append(
            Tensor(tensor.name, tensor.datatype, data, _parameters_from_proto(tensor.parameters))
        )
    outputs = [
        RequestedOutput(o.name, _parameters_from_proto(o.parameters)) for o in message.outputs
    ]
    return InferRequest(
        inputs=inputs,
        outputs=outputs or None,
        id=message.id or None,
        parameters=_parameters_from_proto(message.parameters),
    )


def _raw(tensor: Tensor) -> bytes:
    raw = raw_from_array(tensor.data, tensor.datatype)
    return raw if isinstance(raw, bytes) else raw.tobytes()


def infer_response_to_proto(response: InferResponse) -> Any:
    """``InferResponse`` -> ``ModelInferResponse`` with ``raw_output_contents``."""
    message = service_pb2.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
        raw_output_contents=[_raw(t) for t in response.outputs],
    )
    _parameters_to_proto(response.parameters, message.parameters)
    for tensor in response.outputs:
        output = message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        _parameters_to_proto(tensor.parameters, output.parameters)
    return message


def infer_error_to_stream(request: Any, error_message: str) -> Any:
    """A streamed error answer that still names the model and the request id."""
    return service_pb2.ModelStreamInferResponse(
        error_message=error_message,
        infer_response=service_pb2.ModelInferResponse(
            model_name=request.model_name, model_version=request.model_version, id=request.id
        ),
    )


# --- metadata, config, statistics ---------------------------------------------------------


def server_metadata_to_proto(metadata: Mapping[str, Any]) -> Any:
    return service_pb2.ServerMetadataResponse(
        name=metadata["name"], version=metadata["version"], extensions=metadata["extensions"]
    )


def _tensor_metadata(tensors: Sequence[Mapping[str, Any]]) -> list[Any]:
    return [
        service_pb2.ModelMetadataResponse.TensorMetadata(
            name=t["name"], datatype=t["datatype"], shape=t["shape"]
        )
        for t in tensors
    ]


def model_metadata_to_proto(metadata: Mapping[str, Any]) -> Any:
    return service_pb2.ModelMetadataResponse(
        name=metadata["name"],
        versions=metadata["versions"],
        platform=metadata["platform"],
        inputs=_tensor_metadata(metadata["inputs"]),
        outputs=_tensor_metadata(metadata["outputs"]),
    )


def model_config_to_proto(config: Mapping[str, Any]) -> Any:
    """Triton ``ModelConfig`` JSON -> ``ModelConfigResponse``."""
    message = model_config_pb2.ModelConfig()
    json_format.ParseDict(config, message, ignore_unknown_fields=True)
    return service_pb2.ModelConfigResponse(config=message)


def model_statistics_to_proto(statistics: Mapping[str, Any]) -> Any:
    """Triton ``{"model_stats": [...]}`` JSON -> ``ModelStatisticsResponse``."""
    message = service_pb2.ModelStatisticsResponse()
    json_format.ParseDict(statistics, message, ignore_unknown_fields=True)
    return message


def repository_index_to_proto(models: Sequence[Mapping[str, Any]]) -> Any:
    """The repository index (name, version, state, reason per entry) as its response."""
    return service_pb2.RepositoryIndexResponse(
        models=[
            service_pb2.RepositoryIndexResponse.ModelIndex(
                name=m["name"], version=m["version"], state=m["state"], reason=m["reason"]
            )
            for m in models
        ]
    )
