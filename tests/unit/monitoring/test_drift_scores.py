"""PSI and KS against a reference: zero for the reference's own rows, the textbook values
for known shifts, and a summary that waits for enough rows."""

from __future__ import annotations

import numpy as np
import pytest

from maas.monitoring.drift import (
    DEFAULT_THRESHOLD,
    MIN_ROWS,
    Reference,
    ReferenceSource,
    ks_statistic,
    psi,
    score,
)

SOURCE = ReferenceSource("dataset", "uniform numbers")


def _uniform(rows: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(rows, 1))


@pytest.fixture
def reference() -> Reference:
    return Reference.build({"x": _uniform(10_000)}, SOURCE)


def test_the_reference_rows_themselves_score_nothing(reference: Reference) -> None:
    rows = reference.extract([{"x": _uniform(10_000)}])
    stats = reference.features[0]
    assert psi(stats, rows[:, 0], reference.rows) == pytest.approx(0.0, abs=1e-9)
    assert ks_statistic(stats.quantiles, rows[:, 0]) <= 0.011  # one quantile step


def test_psi_matches_the_formula_on_a_known_shift(reference: Reference) -> None:
    stats = reference.features[0]
    shifted = np.random.default_rng(1).uniform(0.5, 1.5, size=100_000)  # half beyond the top
    live = np.bincount(np.searchsorted(stats.edges, shifted, side="right"), minlength=10)
    live_share = (live + 0.5) / (len(shifted) + 5)
    ref_share = (stats.proportions * reference.rows + 0.5) / (reference.rows + 5)
    expected = float(np.sum((live_share - ref_share) * np.log(live_share / ref_share)))
    assert psi(stats, shifted, reference.rows) == pytest.approx(expected)
    assert expected > 1.0


def test_ks_is_the_largest_cdf_gap(reference: Reference) -> None:
    stats = reference.features[0]
    shifted = np.random.default_rng(2).uniform(0.3, 1.3, size=50_000)
    assert ks_statistic(stats.quantiles, shifted) == pytest.approx(0.3, abs=0.015)
    constant = np.full(1000, 0.25)  # a step of 1 at 0.25, where the reference CDF is 0.25
    assert ks_statistic(stats.quantiles, constant) == pytest.approx(0.75, abs=0.015)


def test_ks_handles_discrete_features() -> None:
    reference = Reference.build({"x": np.repeat([[0.0], [1.0]], [700, 300], axis=0)}, SOURCE)
    stats = reference.features[0]
    same = np.repeat([0.0, 1.0], [70, 30])
    assert ks_statistic(stats.quantiles, same) == pytest.approx(0.0, abs=0.011)
    flipped = np.repeat([0.0, 1.0], [30, 70])
    assert ks_statistic(stats.quantiles, flipped) == pytest.approx(0.4, abs=0.011)


def test_the_summary_is_the_largest_feature_psi_once_there_are_enough_rows() -> None:
    rng = np.random.default_rng(3)
    reference = Reference.build({"x": rng.normal(size=(5000, 3))}, SOURCE)
    live = rng.normal(size=(MIN_ROWS, 3))
    live[:, 2] += 1.0  # one feature moved
    report = score(reference, reference.extract([{"x": live}]))
    assert [f.name for f in report.features] == ["x[0]", "x[1]", "x[2]"]
    assert report.score == max(f.psi for f in report.features) == report.features[2].psi
    assert report.drifted is True and report.threshold == DEFAULT_THRESHOLD
    assert report.features[0].psi < 0.1 and report.features[2].ks > 0.3
    few = score(reference, reference.extract([{"x": live[: MIN_ROWS - 1]}]))
    assert few.score is None and few.drifted is None and len(few.features) == 3
    empty = score(reference, reference.extract([]))
    assert empty.to_dict() == {
        "score": None,
        "threshold": DEFAULT_THRESHOLD,
        "drifted": None,
        "rows": 0,
        "min_rows": MIN_ROWS,
        "features": [],
    }
