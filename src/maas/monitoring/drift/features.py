"""Input rows as features, and one feature's reference statistics (quantiles, PSI bins);
see ``maas.monitoring.drift`` for what each is and why."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from maas.errors import InvalidInputError

__all__ = [
    "MAX_EDGES",
    "MAX_ROW_FEATURES",
    "NUMERIC_KINDS",
    "QUANTILE_POINTS",
    "FeatureStats",
    "InputFeatures",
    "Reduce",
    "refuse",
    "shares",
]

QUANTILE_POINTS: Final = 101
PSI_BINS: Final = 10
MAX_ROW_FEATURES: Final = 256
#: Nine deciles, and as many bins of their own for values holding a decile or more.
MAX_EDGES: Final = 2 * (PSI_BINS - 1)
NUMERIC_KINDS: Final = "biuf"

Reduce = Literal["elements", "channel_mean"]

_PROBABILITIES: Final = np.linspace(0.0, 1.0, QUANTILE_POINTS)
_DECILES: Final = np.linspace(0.0, 1.0, PSI_BINS + 1)[1:-1]


def refuse(field: str, message: str) -> InvalidInputError:
    """The error for a bad reference document's ``field`` (named from ``reference.``)."""
    return InvalidInputError(f"reference.{field}: {message}", {"field": f"reference.{field}"})


def _groups(channels: int, count: int) -> np.ndarray:
    """Bounds of ``count`` contiguous, near-equal groups of ``channels`` (count + 1 ints)."""
    return np.linspace(0, channels, count + 1).astype(np.int64)


@dataclass(frozen=True, slots=True)
class InputFeatures:
    """How one V2 input's rows become features (see the module docstring)."""

    name: str
    row_shape: tuple[int, ...]
    reduce: Reduce
    features: int

    @classmethod
    def of(cls, name: str, row_shape: tuple[int, ...]) -> InputFeatures:
        size = math.prod(row_shape)
        if size <= MAX_ROW_FEATURES:
            return cls(name, row_shape, "elements", size)
        return cls(name, row_shape, "channel_mean", min(row_shape[0], MAX_ROW_FEATURES))

    def names(self) -> list[str]:
        if self.reduce == "elements":
            return [f"{self.name}[{i}]" for i in range(self.features)]
        channels = self.row_shape[0]
        if self.features == channels:
            return [f"{self.name}[c{i}]" for i in range(channels)]
        bounds = _groups(channels, self.features).tolist()
        return [f"{self.name}[c{a}-{b - 1}]" for a, b in itertools.pairwise(bounds)]

    def extract(self, array: np.ndarray) -> np.ndarray | None:
        """``(rows, features)`` as float64; None when ``array`` does not fit this input."""
        if array.dtype.kind not in NUMERIC_KINDS:
            return None
        if array.shape == self.row_shape:  # one row without a batch axis
            array = array[None]
        if self.reduce == "elements":
            if array.shape[1:] != self.row_shape:
                return None
            return array.reshape(len(array), -1).astype(np.float64)
        if array.ndim != len(self.row_shape) + 1 or array.shape[1] != self.row_shape[0]:
            return None
        means: np.ndarray = array.reshape(len(array), array.shape[1], -1).mean(
            axis=2, dtype=np.float64
        )
        if self.features == means.shape[1]:
            return means
        bounds = _groups(means.shape[1], self.features)
        return np.add.reduceat(means, bounds[:-1], axis=1) / np.diff(bounds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "row_shape": list(self.row_shape),
            "reduce": self.reduce,
            "features": self.features,
        }


@dataclass(frozen=True, slots=True, eq=False)
class FeatureStats:
    """One feature's reference: quantiles (its CDF), PSI cut points and bin shares."""

    name: str
    quantiles: np.ndarray
    edges: np.ndarray
    proportions: np.ndarray

    @classmethod
    def of(cls, name: str, column: np.ndarray) -> FeatureStats:
        cuts = np.quantile(column, _DECILES)
        values, counts = np.unique(cuts, return_counts=True)
        masses = values[counts > 1]  # a value holding a decile or more: a bin of its own
        edges = np.union1d(values, np.nextafter(masses, np.inf))
        return cls(name, np.quantile(column, _PROBABILITIES), edges, shares(edges, column))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "quantiles": self.quantiles.tolist(),
            "edges": self.edges.tolist(),
            "proportions": self.proportions.tolist(),
        }


def shares(edges: np.ndarray, column: np.ndarray) -> np.ndarray:
    """The share of ``column`` in each bin: below the first cut, between cuts, above."""
    bins = np.searchsorted(edges, column, side="right")
    return np.bincount(bins, minlength=len(edges) + 1) / max(1, len(column))
