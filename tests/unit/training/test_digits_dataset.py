from __future__ import annotations

import numpy as np
import pytest

from maas.training.datasets import Dataset, content_sha256, load_digits

# sha256 of scikit-learn's bundled digits (X float64 1797x64, y int64): pins what "digits" means.
DIGITS_SHA256 = "0b3e4ee14f82503950f2fd8375b2e78056c1dd5ef2cb04e4cd0cc4827c0e6bb6"


def test_shapes_dtypes_and_scaling(digits: Dataset) -> None:
    assert digits.name == "digits"
    assert digits.num_classes == 10
    assert digits.num_features == 64
    assert len(digits.y_train) + len(digits.y_val) == 1797
    assert len(digits.y_val) == 360  # ceil(0.2 * 1797)
    assert digits.x_train.dtype == np.float32 and digits.x_val.dtype == np.float32
    assert digits.y_train.dtype == np.int64 and digits.y_val.dtype == np.int64
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() == 1.0


def test_split_is_deterministic_for_a_seed() -> None:
    a, b = load_digits(seed=3), load_digits(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)


def test_another_seed_gives_another_split_of_the_same_data() -> None:
    a, b = load_digits(seed=0), load_digits(seed=1)
    assert not np.array_equal(a.y_train, b.y_train)
    assert a.content_sha256 == b.content_sha256 == DIGITS_SHA256


def test_split_is_stratified(digits: Dataset) -> None:
    full = np.bincount(np.concatenate([digits.y_train, digits.y_val]), minlength=10)
    val = np.bincount(digits.y_val, minlength=10)
    assert np.all(np.abs(val - full * 0.2) <= 1)


def test_validation_fraction_is_honoured() -> None:
    assert len(load_digits(validation_fraction=0.5).y_val) == 899


def test_arrays_are_read_only(digits: Dataset) -> None:
    with pytest.raises(ValueError):
        digits.x_train[0, 0] = 1.0


def test_hash_covers_dtype_and_shape() -> None:
    x = np.arange(6, dtype=np.int64)
    assert content_sha256(x) == content_sha256(x.copy())
    assert content_sha256(x) != content_sha256(x.reshape(2, 3))
    assert content_sha256(x) != content_sha256(x.astype(np.int32))
