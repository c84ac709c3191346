"""Stacking requests into a batch and splitting the outputs back, on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest

from maas.errors import InvalidInputError, MaasError
from maas.scheduling.stacking import batch_key, request_rows, split, stack


def test_round_trip_with_numbers_and_bytes() -> None:
    feeds = [
        {
            "x": np.arange(n * 2, dtype=np.float32).reshape(n, 2) + n,
            "s": np.array([[f"r{n}-{i}".encode()] for i in range(n)], dtype=object),
        }
        for n in (1, 3, 2)
    ]
    merged, rows = stack(feeds)
    assert rows == [1, 3, 2]
    assert merged["x"].shape == (6, 2)
    assert merged["s"].dtype == object
    pieces = split(merged, rows)
    for feed, piece in zip(feeds, pieces, strict=True):
        np.testing.assert_array_equal(piece["x"], feed["x"])
        assert piece["s"].tolist() == feed["s"].tolist()


def test_batch_key_separates_dtype_and_inner_shape_but_not_rows() -> None:
    a = batch_key({"x": np.zeros((1, 4), np.float32)})
    assert a == batch_key({"x": np.zeros((7, 4), np.float32)})
    assert a != batch_key({"x": np.zeros((1, 5), np.float32)})
    assert a != batch_key({"x": np.zeros((1, 4), np.float64)})
    two = batch_key({"x": np.zeros((1, 4)), "y": np.zeros((1, 2))})
    assert two == batch_key({"y": np.zeros((3, 2)), "x": np.zeros((3, 4))})


def test_output_rows_must_match_input_rows() -> None:
    with pytest.raises(MaasError, match="not batchable"):
        split({"y": np.zeros((4, 1))}, [2, 3])


def test_inputs_must_agree_on_rows() -> None:
    with pytest.raises(InvalidInputError, match="batch dim"):
        request_rows({"x": np.zeros((2, 1)), "y": np.zeros((3, 1))})
