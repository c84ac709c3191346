"""Line two versions' metrics up side by side (``maas models compare``).

Pure and light on imports, so comparing works without the training extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeGuard

__all__ = ["SCALAR_METRICS", "compare_reports"]

SCALAR_METRICS: Final[tuple[str, ...]] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc_macro",
    "latency_ms_per_sample_batch_1",
    "latency_ms_per_sample_batch_32",
    "throughput_per_s_batch_32",
    "size_bytes",
    "parameter_count",
    "num_samples",
)
"""The report keys ``compare_reports`` lines up, in display order."""


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare_reports(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """``(metric, a, b, b - a)`` for each scalar metric in either report; for model compare.

    Known metrics come first in ``SCALAR_METRICS`` order, then other numeric keys (e.g.
    ``val_loss``) as they appear. A value missing from one side is None, and so is the
    delta unless both sides are numbers.

    >>> compare_reports({"accuracy": 0.9}, {"accuracy": 0.95})  # doctest: +ELLIPSIS
    [('accuracy', 0.9, 0.95, 0.0499...)]
    """
    extra = [k for r in (a, b) for k, v in r.items() if _is_number(v)]
    keys = [k for k in SCALAR_METRICS if k in a or k in b]
    keys += [k for k in dict.fromkeys(extra) if k not in SCALAR_METRICS]
    rows: list[tuple[str, Any, Any, Any]] = []
    for key in keys:
        left, right = a.get(key), b.get(key)
        delta = right - left if _is_number(left) and _is_number(right) else None
        rows.append((key, left, right, delta))
    return rows
