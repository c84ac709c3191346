"""Check decoded tensors against a signature; compiled once per model version, not per request."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from maas.errors import InvalidInputError
from maas.protocol.signature import Signature, TensorSpec
from maas.protocol.types import RequestedOutput, Tensor

__all__ = ["SignatureValidator"]


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
