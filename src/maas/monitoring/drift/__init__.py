"""Input drift: a version's reference statistics, a live window of its inputs, PSI and KS.

**Features.** A V2 input whose row (one sample, the batch axis left out) has at most
``MAX_ROW_FEATURES`` (256) elements gives one feature per element, named
``NAME[i]`` (``i``: the element's flat, C-order index in the row: ``input[12]``). A larger
row (an image, a wide table) is reduced along its first non-batch axis: one feature per
channel, the mean of that channel's values (``NAME[c0]``, ``NAME[c1]`` ... for a
``(C, H, W)`` image; height and width may vary between requests). Where that axis has
more than 256 entries they are split into 256 contiguous groups and each feature is the
mean of one group (``NAME[c0-2]``). BYTES inputs give no features. A reference holds at
most ``MAX_FEATURES`` (1024) features.

**Reference.** Per feature: ``QUANTILE_POINTS`` (101) quantiles at 0, 1, ..., 100 %
(the empirical CDF that the KS statistic compares against, to within 1 %), and PSI bins:
the cut points between about ten equally filled bins (the deciles, de-duplicated), with
the share of reference rows in each. A value that holds a decile or more of the rows (a
constant feature, the zeros of a sparse pixel) gets a bin of its own, so moving away from
it shows; a constant feature therefore has three bins: below, at and above its value.

**Scores.** PSI per feature is ``sum((live - ref) * ln(live / ref))`` over its bins, each
side's shares smoothed by half a row per bin (``psi``); KS is the largest gap between the
live and reference CDFs. The summary ``score`` is the largest per-feature PSI: PSI's rule
of thumb (below 0.1 stable, above 0.2 a significant shift, ``DEFAULT_THRESHOLD``) is read
per feature, and one shifted feature is enough to distrust a model's inputs, where a mean
would dilute it among the features that did not move. Below ``MIN_ROWS`` live rows there
is no score: PSI's sampling noise grows as 1/rows and would be read as drift (the largest
of 64 features' PSI over 100 held-out digits rows reached 0.5; over 300, 0.14). Calibrated
on scikit-learn's digits (``tests/unit/monitoring/test_drift_calibration.py``, ten
splits): the 360 held-out rows score 0.05-0.09; a window of rows with intensities scaled
by 1.3 scores 1.1-2.1, of only three of the ten classes 0.47-1.2, offset by 0.1 about 16.

Modules: ``features`` (rows as features, one feature's statistics), ``reference`` (the
reference and its document), ``scores`` (PSI, KS, the report), ``window`` (the live
window).

**Live window.** ``LiveWindow.offer`` runs on the inference hot path: it counts the
request and, unless sampling skips it or this interval's intake is full, keeps a
reference to the validated feed (no copy, no arithmetic on the tensors). Every
interval the server ``take``s what was kept (on the event loop: a swap) and ``absorb``s
it in a thread: features are extracted there into a ring of the newest ``rows`` rows,
which ``score`` reads. Sampling: when the last interval saw more requests than the
window has rows, only every k-th request is kept in the next (k = requests / rows), so a
busy version's window spans an interval's traffic rather than its first burst; the
intake of one interval is bounded by ``rows`` rows' worth of bytes (at 8 bytes an
element) and by ``MAX_PENDING_BYTES``, whichever is smaller.
"""

from __future__ import annotations

from maas.monitoring.drift.features import (
    MAX_ROW_FEATURES,
    QUANTILE_POINTS,
    FeatureStats,
    InputFeatures,
)
from maas.monitoring.drift.reference import FORMAT, MAX_FEATURES, Reference, ReferenceSource
from maas.monitoring.drift.scores import (
    DEFAULT_THRESHOLD,
    MIN_ROWS,
    DriftReport,
    FeatureDrift,
    ks_statistic,
    psi,
    score,
)
from maas.monitoring.drift.window import MAX_PENDING_BYTES, LiveWindow

__all__ = [
    "DEFAULT_THRESHOLD",
    "FORMAT",
    "MAX_FEATURES",
    "MAX_PENDING_BYTES",
    "MAX_ROW_FEATURES",
    "MIN_ROWS",
    "QUANTILE_POINTS",
    "DriftReport",
    "FeatureDrift",
    "FeatureStats",
    "InputFeatures",
    "LiveWindow",
    "Reference",
    "ReferenceSource",
    "ks_statistic",
    "psi",
    "score",
]
