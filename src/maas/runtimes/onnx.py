"""ONNX Runtime: the default runtime; it releases the GIL while a batch runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort

from maas.errors import InvalidArtifactError, InvalidInputError, describe
from maas.protocol.signature import Signature, TensorSpec
from maas.runtimes.base import LoadOptions, Runtime
from maas.runtimes.safety import refuse_executable_formats

__all__ = ["OnnxRuntime"]

_DATATYPES: Final[dict[str, str]] = {
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


def _spec(node: Any) -> TensorSpec:
    datatype = _DATATYPES.get(node.type)
    if datatype is None:
        raise InvalidArtifactError(f"tensor {node.name!r} has unsupported ONNX type {node.type}")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (node.shape or []))
    return TensorSpec(node.name, datatype, shape)


def _signature(session: ort.InferenceSession) -> Signature:
    return Signature(
        tuple(_spec(n) for n in session.get_inputs()),
        tuple(_spec(n) for n in session.get_outputs()),
    )


class OnnxRuntime(Runtime):
    """Runs an ONNX model on CPU (or CUDA when onnxruntime-gpu provides it)."""

    format = "onnx"
    platform = "onnxruntime_onnx"

    def __init__(self, session: ort.InferenceSession) -> None:
        super().__init__(_signature(session))
        self._session = session
        self._output_names: Sequence[str] = [o.name for o in self.signature.outputs]
        self._string_inputs = {t.name for t in self.signature.inputs if t.datatype == "BYTES"}
        self._string_outputs = {t.name for t in self.signature.outputs if t.datatype == "BYTES"}

    @classmethod
    def load(cls, path: Path, options: LoadOptions = LoadOptions()) -> OnnxRuntime:
        refuse_executable_formats(path)
        session_options = ort.SessionOptions()
        session_options.log_severity_level = 3  # errors only: its warnings are not the user's
        if options.intra_op_threads is not None:
            session_options.intra_op_num_threads = options.intra_op_threads
        # By default the threads spin only while a run is going on, and stop when it returns:
        # spinning after every run (ONNX Runtime's default) kept a core busy per version, so
        # a canary halved the tiny MLP's throughput on 2 cores; never spinning made the CNN's
        # threads sleep and wake between its operators, 10% slower (docs/performance.md,
        # "Thread spinning").
        if not options.spinning:
            session_options.add_session_config_entry("session.force_spinning_stop", "1")
        providers = [
            p
            for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
            if p in ort.get_available_providers()
        ]
        try:
            session = ort.InferenceSession(str(path), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises several unrelated types for bad files
            first_line = describe(exc)  # one line, no server path
            raise InvalidArtifactError(f"not a loadable ONNX model: {first_line}") from exc
        return cls(session)

    @property
    def on_cpu(self) -> bool:
        providers: list[str] = self._session.get_providers()
        return providers[0] == "CPUExecutionProvider"

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {
            name: (_bytes_to_str(array) if name in self._string_inputs else array)
            for name, array in inputs.items()
        }
        results = self._session.run(self._output_names, feed)
        return {
            name: (_str_to_bytes(result) if name in self._string_outputs else result)
            for name, result in zip(self._output_names, results, strict=True)
        }


def _bytes_to_str(array: np.ndarray) -> np.ndarray:
    # ONNX string tensors hold text; V2 BYTES elements arrive as bytes.
    try:
        return np.asarray(np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array))
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"a BYTES element is not UTF-8 text: {exc.reason}") from None


def _str_to_bytes(array: np.ndarray) -> np.ndarray:
    return np.asarray(np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array))
