"""Datasets as fixed, hashed train/validation splits, so a run can be reproduced and traced."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "content_sha256", "load_digits"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/validation split; arrays are read-only so the frozen promise holds.

    ``content_sha256`` identifies the source data, not the split: the same data split
    with another seed keeps the same hash, and lineage records the seed beside it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    content_sha256: str

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


def content_sha256(*arrays: np.ndarray) -> str:
    """sha256 over each array's dtype, shape and C-order bytes (so a reshape changes it)."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def load_digits(seed: int = 0, validation_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits (no download), scaled to [0, 1], split stratified.

    >>> ds = load_digits()
    >>> ds.x_train.shape[1], ds.num_classes
    (64, 10)
    """
    from sklearn.datasets import load_digits as _sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = _sklearn_digits()
    x_raw = np.asarray(bunch.data)
    y_raw = np.asarray(bunch.target)
    x = (x_raw / 16.0).astype(np.float32)
    y = y_raw.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_fraction, random_state=seed, stratify=y
    )
    arrays = [np.ascontiguousarray(a) for a in (x_train, y_train, x_val, y_val)]
    for array in arrays:
        array.setflags(write=False)
    return Dataset(
        name="digits",
        x_train=arrays[0],
        y_train=arrays[1],
        x_val=arrays[2],
        y_val=arrays[3],
        num_classes=int(np.unique(y).size),
        content_sha256=content_sha256(x_raw, y_raw),
    )
