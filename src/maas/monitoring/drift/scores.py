"""PSI and Kolmogorov-Smirnov scores of live rows against a reference, and the summary
score (see ``maas.monitoring.drift``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from maas.monitoring.drift.features import FeatureStats, shares
from maas.monitoring.drift.reference import Reference

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_ROWS",
    "DriftReport",
    "FeatureDrift",
    "ks_statistic",
    "psi",
    "score",
]

DEFAULT_THRESHOLD: Final = 0.2
MIN_ROWS: Final = 300


def psi(stats: FeatureStats, column: np.ndarray, reference_rows: int) -> float:
    """Population stability index of ``column`` against the feature's reference bins.

    Both sides' shares are smoothed by half a row in each bin (``(count + 0.5) / (rows +
    bins / 2)``): a bin that is empty by chance in a small sample would otherwise weigh
    ``ln(share / epsilon)``, which in 100 held-out digits rows alone scored 0.7."""
    bins = len(stats.edges) + 1
    live = (shares(stats.edges, column) * len(column) + 0.5) / (len(column) + bins / 2)
    ref = (stats.proportions * reference_rows + 0.5) / (reference_rows + bins / 2)
    return float(np.sum((live - ref) * np.log(live / ref)))


def ks_statistic(quantiles: np.ndarray, column: np.ndarray) -> float:
    """The largest gap between ``column``'s empirical CDF and the reference's, read from
    its quantiles as a step function (within one quantile step, 1 %, of the exact one).
    Both are steps, so the gap is largest at a step: each side's limits are compared at
    every reference quantile and live value."""
    live = np.sort(column)
    points = np.concatenate([quantiles, live])
    steps, n = len(quantiles) - 1, len(live)
    gap = 0.0
    for side in ("left", "right"):
        ref_cdf = np.clip((np.searchsorted(quantiles, points, side=side) - 1) / steps, 0.0, 1.0)
        live_cdf = np.searchsorted(live, points, side=side) / n
        gap = max(gap, float(np.max(np.abs(live_cdf - ref_cdf))))
    return gap


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    name: str
    psi: float
    ks: float


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-feature PSI and KS of a window against a reference. ``score``: the largest
    PSI, None below ``min_rows`` rows; ``drifted``: the score is above ``threshold``."""

    score: float | None
    threshold: float
    rows: int
    min_rows: int
    features: tuple[FeatureDrift, ...] = field(default=())

    @property
    def drifted(self) -> bool | None:
        return None if self.score is None else self.score > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "rows": self.rows,
            "min_rows": self.min_rows,
            "features": [{"name": f.name, "psi": f.psi, "ks": f.ks} for f in self.features],
        }


def score(
    reference: Reference,
    rows: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_rows: int = MIN_ROWS,
) -> DriftReport:
    """PSI and KS of every feature of ``rows`` (``reference.extract``'s shape) and the
    summary score (see the module docstring)."""
    count = len(rows)
    features: tuple[FeatureDrift, ...] = ()
    if count:
        features = tuple(
            FeatureDrift(
                stats.name,
                psi(stats, rows[:, j], reference.rows),
                ks_statistic(stats.quantiles, rows[:, j]),
            )
            for j, stats in enumerate(reference.features)
        )
    summary = max(f.psi for f in features) if features and count >= min_rows else None
    return DriftReport(summary, threshold, count, min_rows, features)
