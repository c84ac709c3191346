"""Pure stacking of several requests into one batch, and splitting the answer back.

Kept free of asyncio and runtimes so the rules (what may share a batch, one output row
per input row) are tested on plain arrays.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from maas.errors import InvalidInputError, MaasError

__all__ = ["batch_key", "request_rows", "split", "stack"]


def batch_key(feed: Mapping[str, np.ndarray]) -> Hashable:
    """What requests must agree on to be stacked: input names, dtypes and non-batch dims.

    Example::

        batch_key({"x": np.zeros((2, 4), np.float32)})  # (("x", dtype('float32'), (4,)),)
    """
    if len(feed) == 1:  # the common case, without sorting
        ((name, array),) = feed.items()
        return ((name, array.dtype, array.shape[1:]),)
    return tuple(sorted((name, a.dtype, a.shape[1:]) for name, a in feed.items()))


def request_rows(feed: Mapping[str, np.ndarray]) -> int:
    """The rows a request adds to a batch: the first dim, which every input must share."""
    rows = -1
    for name, array in feed.items():
        if array.ndim == 0:
            raise InvalidInputError(
                f"input {name!r} is a scalar; a batchable model needs a batch dim"
            )
        if rows == -1:
            rows = array.shape[0]
        elif array.shape[0] != rows:
            raise InvalidInputError(
                f"inputs disagree on the batch dim: input {name!r} has {array.shape[0]} rows, "
                f"another has {rows}"
            )
    return max(rows, 0)


def stack(
    feeds: Sequence[Mapping[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], list[int]]:
    """Concatenate requests of one ``batch_key`` along axis 0; also return rows per request."""
    first = feeds[0]
    rows = [request_rows(feed) for feed in feeds]
    if len(feeds) == 1:
        return dict(first), rows
    merged = {name: np.concatenate([feed[name] for feed in feeds], axis=0) for name in first}
    return merged, rows


def split(outputs: Mapping[str, np.ndarray], rows: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Cut every output along axis 0 into one piece per request (views, no copies).

    A model declared batchable must answer one output row per input row; when it does
    not, stacking was wrong for it and every request of the batch fails with that reason.
    """
    total = sum(rows)
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            got = "a scalar" if array.ndim == 0 else f"{array.shape[0]} rows"
            raise MaasError(
                f"output {name!r} has {got} for a batch of {total} input rows; the model "
                "is not batchable along its first dim as its signature declares",
                {"output": name, "batch_rows": total},
            )
    pieces: list[dict[str, np.ndarray]] = []
    start = 0
    for count in rows:
        end = start + count
        pieces.append({name: array[start:end] for name, array in outputs.items()})
        start = end
    return pieces
