"""The request every version must answer, within its signature, before it takes traffic.

Loading proves a file is a model; only running it proves the model answers: a version
that raises, returns NaN, or returns outputs that contradict its signature fails here
and never serves. The request is one row (the batch dim, and every other variable dim,
is 1 unless the version's config gives ``warmup.shapes``); floats are seeded values in
[0, 1) (not zeros, which hide a division by the input), integers 0, BOOL false and BYTES
empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from maas.errors import InvalidInputError, ModelError
from maas.protocol.datatypes import numpy_dtype
from maas.protocol.signature import Signature
from maas.protocol.validation import OutputChecker

__all__ = ["MAX_WARMUP_ELEMENTS", "check_warmup_outputs", "warmup_feed", "warmup_shapes"]

_SEED = 20260501
#: The largest warm-up tensor (elements) a config may ask for: 64 Mi elements.
MAX_WARMUP_ELEMENTS = 1 << 26


def warmup_shapes(
    signature: Signature, shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, tuple[int, ...]]:
    """The shape of each input's warm-up tensor; ``InvalidInputError`` naming the field
    when a given shape does not fit the signature (checked when a config is set)."""
    given = dict(shapes or {})
    found: dict[str, tuple[int, ...]] = {}
    for spec in signature.inputs:
        field = f"warmup.shapes.{spec.name}"
        shape = tuple(given.pop(spec.name, [1 if d < 0 else d for d in spec.shape]))
        if len(shape) != len(spec.shape) or any(
            want >= 0 and got != want for got, want in zip(shape, spec.shape, strict=True)
        ):
            raise InvalidInputError(
                f"{field}: {list(shape)} does not fit the input's shape {list(spec.shape)}",
                {"field": field},
            )
        if math.prod(shape) > MAX_WARMUP_ELEMENTS:
            raise InvalidInputError(
                f"{field}: {list(shape)} holds more than {MAX_WARMUP_ELEMENTS} elements",
                {"field": field},
            )
        found[spec.name] = shape
    if given:
        name = sorted(given)[0]
        raise InvalidInputError(
            f"warmup.shapes.{name}: the version has no input {name!r}",
            {"field": f"warmup.shapes.{name}"},
        )
    return found


def warmup_feed(
    signature: Signature, shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, np.ndarray]:
    """One warm-up tensor per input.

    >>> from maas.protocol.signature import TensorSpec
    >>> warmup_feed(Signature((TensorSpec("x", "FP32", (-1, 4)),), ()))["x"].shape
    (1, 4)
    """
    rng = np.random.default_rng(_SEED)
    feed: dict[str, np.ndarray] = {}
    resolved = warmup_shapes(signature, shapes)
    for spec in signature.inputs:
        shape = resolved[spec.name]
        dtype = numpy_dtype(spec.datatype)
        if dtype.kind == "f":
            feed[spec.name] = rng.random(shape).astype(dtype)
        elif dtype.kind == "O":
            array = np.empty(shape, dtype=object)
            array.fill(b"")
            feed[spec.name] = array
        else:
            feed[spec.name] = np.zeros(shape, dtype)
    return feed


def check_warmup_outputs(
    signature: Signature, feed: Mapping[str, np.ndarray], outputs: dict[str, np.ndarray]
) -> None:
    """``ModelError`` naming the output unless the outputs fit the signature and hold no NaN."""
    rows = next((int(a.shape[0]) for a in feed.values() if a.ndim), None)
    OutputChecker(signature).check(outputs, rows)
    for spec in signature.outputs:
        array = outputs[spec.name]
        if array.dtype.kind in "fc" and np.isnan(array).any():
            raise ModelError(
                f"output {spec.name!r} is NaN for the warm-up request", {"output": spec.name}
            )
