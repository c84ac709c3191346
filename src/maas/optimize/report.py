"""The optimised version against its parent: same held-out rows, same machine, one report.

Both ONNX artifacts are evaluated in the job's process, one after the other, with the
evaluation report every trained version gets (``maas.training.report``), so quality,
latency and size are measured the same way for both; the report adds how often the two
agree on a row's class and the deltas and ratios a gate or a person reads.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort

from maas.training.report import evaluation_report
from maas.training.version_report import HeldOut

__all__ = ["DELTA_METRICS", "RATIO_METRICS", "comparison", "flat_metrics", "machine"]

_BATCH: Final = 256
DELTA_METRICS: Final[tuple[str, ...]] = ("accuracy", "f1_macro", "precision_macro", "recall_macro")
"""Quality metrics reported as candidate - parent (negative: the candidate is worse)."""
RATIO_METRICS: Final[dict[str, str]] = {
    "latency_ms_per_sample_batch_1": "latency_ratio_batch_1",
    "latency_ms_per_sample_batch_32": "latency_ratio_batch_32",
    "throughput_per_s_batch_32": "throughput_ratio_batch_32",
    "size_bytes": "size_ratio",
    "parameter_count": "parameter_ratio",
}
"""Cost metrics reported as candidate / parent (below 1: smaller or faster, but throughput)."""
_SIDE_METRICS: Final = (
    *DELTA_METRICS,
    "roc_auc_macro",
    *RATIO_METRICS,
    "num_samples",
)


def machine() -> dict[str, Any]:
    """Where the figures were measured: they only compare within one machine."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "onnxruntime": ort.__version__,
    }


def _labels(path: Path, x: np.ndarray, input_name: str, output_name: str) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = [
        np.asarray(session.run([output_name], {input_name: x[i : i + _BATCH]})[0])
        for i in range(0, len(x), _BATCH)
    ]
    labels: np.ndarray = np.concatenate(logits).argmax(axis=1)
    return labels


def _ratio(candidate: Any, parent: Any) -> float | None:
    if not isinstance(candidate, int | float) or not isinstance(parent, int | float) or not parent:
        return None
    return float(candidate) / float(parent)


def comparison(
    parent_onnx: Path,
    candidate_onnx: Path,
    rows: HeldOut,
    *,
    parent_parameters: int | None,
    candidate_parameters: int | None,
    class_names: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate's own evaluation report, and the comparison with its parent.

    The comparison holds ``parent`` and ``candidate`` (their scalar metrics), ``delta``
    (candidate - parent, for quality), ``ratio`` (candidate / parent, for cost),
    ``agreement`` (the fraction of rows both give the same class), ``dataset`` and
    ``machine``.
    """
    names = class_names or rows.dataset.class_names
    x = np.asarray(rows.x, dtype=np.float32)
    parent_report = evaluation_report(
        parent_onnx, x, rows.y, class_names=names, parameter_count=parent_parameters
    )
    report = evaluation_report(
        candidate_onnx, x, rows.y, class_names=names, parameter_count=candidate_parameters
    )
    agree = _labels(parent_onnx, x, parent_report["input_name"], parent_report["output_name"])
    labels = _labels(candidate_onnx, x, report["input_name"], report["output_name"])
    dataset = {
        "name": rows.dataset.name,
        "sha256": rows.dataset.content_sha256,
        "split": rows.split,
        "rows": len(rows.y),
    }
    result = {
        "parent": {k: parent_report.get(k) for k in _SIDE_METRICS},
        "candidate": {k: report.get(k) for k in _SIDE_METRICS},
        "delta": {k: report[k] - parent_report[k] for k in DELTA_METRICS},
        "ratio": {
            name: _ratio(report.get(k), parent_report.get(k)) for k, name in RATIO_METRICS.items()
        },
        "agreement": float(np.mean(agree == labels)),
        "dataset": dataset,
        "machine": machine(),
    }
    report["dataset"] = dataset
    return report, result


def flat_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The comparison's headline figures as top-level version metrics, for the gate and
    ``maas models compare``: ``accuracy_delta_vs_parent``, ``agreement_with_parent``,
    ``size_ratio_vs_parent``, ``latency_ratio_batch_1_vs_parent``, ..."""
    flat = {f"{k}_delta_vs_parent": v for k, v in result["delta"].items()}
    flat |= {f"{k}_vs_parent": v for k, v in result["ratio"].items() if v is not None}
    flat["agreement_with_parent"] = result["agreement"]
    return flat
