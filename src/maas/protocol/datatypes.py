"""The V2 datatype names and their numpy equivalents, and the shapes a tensor may have.

BYTES tensors are numpy ``object`` arrays whose elements are ``bytes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from maas.errors import InvalidInputError

__all__ = [
    "DATATYPES",
    "MAX_ELEMENTS",
    "MAX_RANK",
    "check_rank",
    "check_shape",
    "datatype_of",
    "numpy_dtype",
]

#: The most dimensions a tensor may have: numpy's own limit (an array of more cannot
#: exist, so a request asking for more is refused before anything is built).
MAX_RANK: Final = 64
#: The most elements the non-zero dimensions of a shape may multiply to: numpy refuses
#: (ValueError) a shape whose size in bytes passes 2**63, even an empty one such as
#: ``[0, 2**62, 4]``, so such a shape is refused first, as the caller's mistake.
MAX_ELEMENTS: Final = 2**59

_TO_NUMPY: Final[dict[str, np.dtype]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_FROM_NUMPY: Final[dict[np.dtype, str]] = {v: k for k, v in _TO_NUMPY.items()}

DATATYPES: Final[frozenset[str]] = frozenset(_TO_NUMPY)


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype that holds elements of a V2 ``datatype``."""
    try:
        return _TO_NUMPY[datatype]
    except KeyError:
        raise InvalidInputError(
            f"unknown datatype {datatype!r}; expected one of {', '.join(sorted(DATATYPES))}"
        ) from None


def datatype_of(dtype: np.dtype) -> str:
    """The V2 datatype name of a numpy dtype (str and bytes arrays are BYTES)."""
    if dtype.kind in ("S", "U", "O"):
        return "BYTES"
    try:
        return _FROM_NUMPY[np.dtype(dtype)]
    except KeyError:
        raise InvalidInputError(f"numpy dtype {dtype} has no V2 datatype") from None


def check_rank(rank: int, where: str) -> None:
    """``InvalidInputError`` naming ``where`` when a shape has more than ``MAX_RANK`` dims."""
    if rank > MAX_RANK:
        raise InvalidInputError(
            f"{where}: shape has {rank} dimensions, more than the {MAX_RANK} a tensor may have",
            {"rank": rank, "max_rank": MAX_RANK},
        )


def check_shape(shape: Sequence[int], where: str) -> None:
    """``InvalidInputError`` naming ``where`` unless numpy can hold a tensor of ``shape``
    (non-negative dimensions, already checked by the caller): at most ``MAX_RANK``
    dimensions whose non-zero ones multiply to at most ``MAX_ELEMENTS``."""
    check_rank(len(shape), where)
    elements = 1
    for dim in shape:
        elements *= dim or 1
        if elements > MAX_ELEMENTS:
            raise InvalidInputError(
                f"{where}: shape {list(shape)} is too large for a tensor "
                f"(its dimensions multiply past {MAX_ELEMENTS})",
                {"max_elements": MAX_ELEMENTS},
            )
