"""Which operators of a quantised model compute in 8-bit (or float16) and which stay float.

The int8 census reads one profiled run of the result with the fusions ONNX Runtime applies
when serving it (``ORT_ENABLE_EXTENDED``), so its counts name the kernels that really run;
the float16 census describes the stored graph (ORT's CPU provider casts most float16 ops
back to float32 at load). Ops that only move or (de)quantise data are not counted; a float
node ORT fuses into another (a Relu into a float Gemm) is not listed on its own.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Final

import onnx

__all__ = ["Census", "float16_census", "int8_census"]

Census = tuple[dict[str, int], dict[str, list[str]]]
"""(kernels or nodes computing in the low precision, by op type; source nodes left float,
by op type)."""

# fmt: off
_PLUMBING: Final = frozenset({
    "Cast", "Concat", "Constant", "ConstantOfShape", "DequantizeLinear", "DynamicQuantizeLinear",
    "Expand", "Flatten", "Gather", "Identity", "QuantizeLinear", "Reshape", "Shape", "Size",
    "Slice", "Split", "Squeeze", "Tile", "Transpose", "Unsqueeze",
})
# fmt: on
"""Ops that move, reshape or (de)quantise data: neither quantised nor float compute."""
_RENAMES: Final = ("/MatMulAddFusion", "_quant", "_MatMul", "_Add")
_INTEGER: Final = frozenset({"int8", "uint8", "int16", "uint16", "int4", "uint4"})


def _types(tensors: list[dict[str, Any]]) -> set[str]:
    return {dtype for tensor in tensors for dtype in tensor}


def _origin(name: str, source_ops: dict[str, str]) -> str | None:
    """The source node an executed node stems from, through the renames of ORT's fusions
    (``fused <name>``, ``<name>/MatMulAddFusion``) and of the dynamic quantiser
    (``<name>_MatMul``, ``<name>_Add``, ``<name>_quant``); None for nodes they added."""
    name = name.removeprefix("fused ")
    while name not in source_ops:
        suffix = next((s for s in _RENAMES if name.endswith(s)), None)
        if suffix is None:
            return None
        name = name.removesuffix(suffix)
    return name


def int8_census(events: list[dict[str, Any]], source_ops: dict[str, str]) -> Census:
    """Executed kernels on 8-bit tensors by op; source nodes none of whose kernels are."""
    quantized: Counter[str] = Counter()
    integer_by_origin: dict[str, bool] = {}
    for event in {e["name"]: e for e in events}.values():  # one per node
        args = event["args"]
        op, dtypes = args["op_name"], _types(args["input_type_shape"] + args["output_type_shape"])
        if op in _PLUMBING:
            continue
        integer = bool(dtypes & _INTEGER)
        quantized[op] += integer
        origin = _origin(event["name"].removesuffix("_kernel_time"), source_ops)
        if origin is not None and (integer or "float" in dtypes):
            integer_by_origin[origin] = integer_by_origin.get(origin, False) or integer
    floats: dict[str, list[str]] = {}
    for name, op_type in source_ops.items():
        if integer_by_origin.get(name) is False:
            floats.setdefault(op_type, []).append(name)
    return +quantized, floats


def float16_census(target: Path, source_ops: dict[str, str]) -> Census:
    """Nodes with float16 inputs by op; source nodes whose inputs are still float32."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(target)))
    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.input]}
    types.update({t.name: t.data_type for t in graph.initializer})
    half, single = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    quantized: Counter[str] = Counter()
    floats: dict[str, list[str]] = {}
    for node in graph.node:
        dtypes = {types.get(name) for name in node.input if name}
        if node.op_type in _PLUMBING:
            continue
        if half in dtypes:
            quantized[node.op_type] += 1
        elif single in dtypes and node.name in source_ops:
            floats.setdefault(node.op_type, []).append(node.name)
    return dict(quantized), floats
