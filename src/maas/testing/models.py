"""Tiny ONNX models built in code (no downloads), for tests and examples.

Needs the ``onnx`` package (in the ``torch`` and ``dev`` extras).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = [
    "IDENTITY_TYPES",
    "corrupt_stored_artifact",
    "linear_signature_config",
    "write_affine_model",
    "write_identity_model",
    "write_linear_model",
    "write_nan_model",
    "write_raising_model",
    "write_shadow_pair",
    "write_slow_model",
]

#: V2 datatype -> ONNX element type, for identity models of every datatype.
IDENTITY_TYPES: dict[str, int] = {
    "BOOL": TensorProto.BOOL,
    "UINT8": TensorProto.UINT8,
    "UINT16": TensorProto.UINT16,
    "UINT32": TensorProto.UINT32,
    "UINT64": TensorProto.UINT64,
    "INT8": TensorProto.INT8,
    "INT16": TensorProto.INT16,
    "INT32": TensorProto.INT32,
    "INT64": TensorProto.INT64,
    "FP16": TensorProto.FLOAT16,
    "FP32": TensorProto.FLOAT,
    "FP64": TensorProto.DOUBLE,
    "BYTES": TensorProto.STRING,
}

_OPSET = [helper.make_opsetid("", 17)]


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=_OPSET)
    model.ir_version = 8  # readable by every onnxruntime this project supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_identity_model(path: Path, datatype: str, width: int = 3) -> Path:
    """A model that returns its input ``x`` ([-1, width]) as ``y``, for one V2 datatype."""
    elem = IDENTITY_TYPES[datatype]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        f"identity_{datatype.lower()}",
        [helper.make_tensor_value_info("x", elem, ["batch", width])],
        [helper.make_tensor_value_info("y", elem, ["batch", width])],
    )
    return _save(graph, path)


def write_linear_model(
    path: Path, in_features: int = 4, out_features: int = 3, seed: int = 0
) -> Path:
    """``logits = input @ W + b`` with fixed random weights: FP32 [-1, in] -> [-1, out]."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((in_features, out_features)).astype(np.float32)
    bias = rng.standard_normal(out_features).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", in_features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", out_features])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    return _save(graph, path)


def write_slow_model(path: Path, iterations: int = 200, size: int = 384) -> Path:
    """``y = x + 0 * sum(loop of tanh(S @ W))``: FP32 [-1, 4] -> [-1, 4], slow on purpose.

    The loop runs ``sum(x) * iterations`` times, so an all-zero input answers at once.
    """
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((size, size)) / size).astype(np.float32)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["s_in", "W"], ["sw"]),
            helper.make_node("Tanh", ["sw"], ["s_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("s_in", TensorProto.FLOAT, [size, size]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("s_out", TensorProto.FLOAT, [size, size]),
        ],
    )
    graph = helper.make_graph(
        [
            # The loop's start depends on x, so nothing can be folded at load time.
            helper.make_node("ReduceSum", ["x"], ["x_sum"], keepdims=0),
            helper.make_node("Add", ["S0", "x_sum"], ["s_start"]),
            helper.make_node("Mul", ["x_sum", "per_unit"], ["trips"]),
            helper.make_node("Cast", ["trips"], ["M"], to=TensorProto.INT64),
            helper.make_node("Loop", ["M", "cond", "s_start"], ["s_end"], body=body),
            helper.make_node("ReduceSum", ["s_end"], ["total"], keepdims=0),
            helper.make_node("Mul", ["total", "zero"], ["nothing"]),
            helper.make_node("Add", ["x", "nothing"], ["y"]),
        ],
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(np.zeros((size, size), np.float32), "S0"),
            numpy_helper.from_array(np.array(iterations, np.float32), "per_unit"),
            numpy_helper.from_array(np.array(True), "cond"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    return _save(graph, path)


# -- models that fail in a known way, for promotion-safety tests ------------------------
#
# Each loads fine (so it can be registered) and fails only when run or checked: that is
# what the warm-up before any traffic moves has to catch.


def write_raising_model(path: Path) -> Path:
    """FP32 [-1, 4] -> [-1, 3] that loads but raises on every input: it gathers columns
    4, 5 and 6 of a 4-column input (out of range, known only when it runs)."""
    graph = helper.make_graph(
        [helper.make_node("Gather", ["input", "columns"], ["logits"], axis=1)],
        "raising",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(np.array([4, 5, 6], np.int64), "columns")],
    )
    return _save(graph, path)


def write_nan_model(path: Path, seed: int = 0) -> Path:
    """FP32 [-1, 4] -> [-1, 3]: the linear model's logits times NaN, so every answer is NaN."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["xw"]),
            helper.make_node("Mul", ["xw", "nan"], ["logits"]),
        ],
        "nan",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(np.array(np.nan, np.float32), "nan"),
        ],
    )
    return _save(graph, path)


def linear_signature_config(in_features: int = 4, out_features: int = 3) -> dict[str, object]:
    """A serving config declaring the linear model's signature, FP32 [-1, in] -> [-1, out].

    Registering ``write_linear_model(path, out_features=5)`` with this default config gives
    a version whose outputs ([-1, 5]) contradict its signature ([-1, 3]).
    """
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, in_features]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, out_features]}],
    }


def corrupt_stored_artifact(artifacts_dir: Path, sha256: str) -> Path:
    """Overwrite the stored file of ``sha256`` in a ``LocalStore`` folder with other bytes,
    so that reading it fails its sha256 check (as a disk error or tampering would)."""
    stored = artifacts_dir / "sha256" / sha256[:2] / sha256
    if not stored.is_file():
        raise FileNotFoundError(stored)
    stored.chmod(0o644)  # stored files are read-only
    stored.write_bytes(b"not the bytes that were stored" + bytes(64))
    return stored


def write_affine_model(path: Path, weight: np.ndarray, bias: np.ndarray | None = None) -> Path:
    """``logits = input @ weight + bias`` with the given weights: FP32 [-1, in] -> [-1, out]."""
    weight = np.asarray(weight, np.float32)
    in_features, out_features = weight.shape
    bias = np.zeros(out_features, np.float32) if bias is None else np.asarray(bias, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["logits"]),
        ],
        "affine",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", in_features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", out_features])],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")],
    )
    return _save(graph, path)


def write_shadow_pair(folder: Path) -> tuple[Path, Path]:
    """Two FP32 [-1, 4] -> [-1, 3] models whose labels (argmax) differ exactly on the inputs
    you choose: the primary's logits are ``x[:, :3]``; the candidate's are the same with
    ``x[:, 3]`` added to logit 2. So an input with ``x3 == 0`` gets the same label from
    both, and ``[1, 0, 0, 5]`` gets label 0 from the primary and 2 from the candidate."""
    primary = np.zeros((4, 3), np.float32)
    primary[0, 0] = primary[1, 1] = primary[2, 2] = 1.0
    candidate = primary.copy()
    candidate[3, 2] = 1.0
    return (
        write_affine_model(folder / "shadow-primary.onnx", primary),
        write_affine_model(folder / "shadow-candidate.onnx", candidate),
    )
