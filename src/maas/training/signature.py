"""Read a model's V2 signature back from its ONNX graph, so it cannot drift from the file."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import onnxruntime as ort

from maas.errors import InvalidArtifactError
from maas.protocol.signature import Signature, TensorSpec

__all__ = ["onnx_signature"]

_ONNX_TO_V2: Final[dict[str, str]] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def _spec(arg: ort.NodeArg) -> TensorSpec:
    try:
        datatype = _ONNX_TO_V2[arg.type]
    except KeyError:
        raise InvalidArtifactError(
            f"tensor {arg.name!r} has ONNX type {arg.type}, which has no V2 datatype"
        ) from None
    # Symbolic ("batch") and unknown (None) dims are variable: -1 in V2.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def onnx_signature(path: Path) -> Signature:
    """The inputs and outputs ONNX Runtime sees in the model at ``path``.

    >>> onnx_signature(Path("digits.onnx")).inputs  # doctest: +SKIP
    (TensorSpec(name='input', datatype='FP32', shape=(-1, 64)),)
    """
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return Signature(
        inputs=tuple(_spec(arg) for arg in session.get_inputs()),
        outputs=tuple(_spec(arg) for arg in session.get_outputs()),
    )
