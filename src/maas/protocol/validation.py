"""Check tensors against a signature, both ways; compiled once per model version, not per
request: ``SignatureValidator`` for what callers send, ``OutputChecker`` for what a model
returns (outputs that contradict the declared signature are never passed on)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from maas.errors import InvalidInputError, ModelError
from maas.protocol.datatypes import datatype_of, numpy_dtype
from maas.protocol.signature import Signature, TensorSpec
from maas.protocol.types import RequestedOutput, Tensor

__all__ = ["OutputChecker", "SignatureValidator"]


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("-1" if d < 0 else str(d) for d in shape) + "]"


class SignatureValidator:
    """Turns request tensors into the ``name -> array`` feed a runtime expects.

    >>> from maas.protocol.signature import TensorSpec
    >>> v = SignatureValidator(Signature((TensorSpec("x", "FP32", (-1, 2)),), ()))
    >>> v.feed([Tensor("x", "FP32", np.zeros((3, 2), np.float32))])["x"].shape
    (3, 2)
    """

    def __init__(self, signature: Signature) -> None:
        self._inputs: dict[str, TensorSpec] = {t.name: t for t in signature.inputs}
        self._outputs = frozenset(t.name for t in signature.outputs)

    def feed(self, tensors: Sequence[Tensor]) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        for tensor in tensors:
            spec = self._inputs.get(tensor.name)
            if spec is None:
                raise InvalidInputError(
                    f"unknown input {tensor.name!r}; the model expects "
                    f"{', '.join(repr(n) for n in self._inputs)}",
                    {"input": tensor.name},
                )
            if tensor.name in feed:
                raise InvalidInputError(f"input {tensor.name!r} is given twice")
            self._check(tensor, spec)
            feed[tensor.name] = tensor.data
        missing = [name for name in self._inputs if name not in feed]
        if missing:
            raise InvalidInputError(
                f"missing input {', '.join(repr(n) for n in missing)}", {"input": missing[0]}
            )
        return feed

    def check_feed(self, feed: Mapping[str, np.ndarray]) -> None:
        """The checks of ``feed`` for arrays already decoded (a copy sent to a shadow)."""
        self.feed([Tensor(name, datatype_of(a.dtype), a) for name, a in feed.items()])

    def check_outputs(self, requested: Sequence[RequestedOutput] | None) -> None:
        for output in requested or ():
            if output.name not in self._outputs:
                raise InvalidInputError(
                    f"unknown output {output.name!r}; the model has "
                    f"{', '.join(repr(n) for n in sorted(self._outputs))}",
                    {"output": output.name},
                )

    @staticmethod
    def _check(tensor: Tensor, spec: TensorSpec) -> None:
        if tensor.datatype != spec.datatype:
            raise InvalidInputError(
                f"input {spec.name!r}: datatype {tensor.datatype} given, {spec.datatype} expected",
                {"input": spec.name, "expected_datatype": spec.datatype},
            )
        shape = tensor.data.shape
        fits = len(shape) == len(spec.shape) and all(
            want < 0 or got == want for got, want in zip(shape, spec.shape, strict=True)
        )
        if not fits:
            raise InvalidInputError(
                f"input {spec.name!r}: shape {_shape_text(shape)} given, "
                f"{_shape_text(spec.shape)} expected (-1 = any size)",
                {"input": spec.name, "expected_shape": list(spec.shape)},
            )


class OutputChecker:
    """Refuses outputs that contradict the signature: a declared output missing, another
    datatype, another rank, a fixed dim of another size, or (batchable versions) a
    batch dim that is not the number of rows asked for.

    >>> from maas.protocol.signature import TensorSpec
    >>> c = OutputChecker(Signature((), (TensorSpec("y", "FP32", (-1, 3)),)))
    >>> c.check({"y": np.zeros((2, 3), np.float32)}, rows=2)
    """

    def __init__(self, signature: Signature) -> None:
        self._outputs = [(t, numpy_dtype(t.datatype)) for t in signature.outputs]
        self._batchable = signature.batchable

    def check(self, outputs: dict[str, np.ndarray], rows: int | None = None) -> None:
        for spec, dtype in self._outputs:
            array = outputs.get(spec.name)
            if array is None:
                raise ModelError(
                    f"the model returned no output {spec.name!r}, which its signature declares",
                    {"output": spec.name},
                )
            if array.dtype != dtype and not (dtype.kind == "O" and array.dtype.kind in "OSU"):
                raise ModelError(
                    f"output {spec.name!r}: the model returned {array.dtype} data, "
                    f"its signature declares {spec.datatype}",
                    {"output": spec.name, "declared_datatype": spec.datatype},
                )
            shape = array.shape
            fits = len(shape) == len(spec.shape) and all(
                want < 0 or got == want for got, want in zip(shape, spec.shape, strict=True)
            )
            if fits and self._batchable and rows is not None:
                fits = shape[0] == rows
            if not fits:
                raise ModelError(
                    f"output {spec.name!r}: the model returned shape {_shape_text(shape)}, "
                    f"its signature declares {_shape_text(spec.shape)}"
                    + (f" for {rows} row(s)" if self._batchable and rows is not None else ""),
                    {"output": spec.name, "declared_shape": list(spec.shape)},
                )
