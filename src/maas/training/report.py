"""Evaluation reports for an exported ONNX classifier: quality, speed and size in one JSON dict.

The report is measured on the artifact that is served, not on the eager torch model, so
what the registry stores describes exactly what clients will get.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort

from maas.errors import InvalidInputError
from maas.training.compare import SCALAR_METRICS, compare_reports
from maas.training.evaluation import evaluate

__all__ = ["SCALAR_METRICS", "compare_reports", "evaluation_report"]  # the first two re-exported


_INFERENCE_BATCH: Final = 256
_LATENCY_BATCHES: Final[tuple[int, ...]] = (1, 32)
_LATENCY_BUDGET_S: Final = 0.45  # per batch size: the whole timing stays near 1 s
_WARMUP_RUNS: Final = 3
_MIN_TIMED_RUNS: Final = 5
_MAX_TIMED_RUNS: Final = 200
_NUMPY_DTYPES: Final[dict[str, type[np.generic]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return probs


def _auc(is_class: np.ndarray, scores: np.ndarray) -> float | None:
    """One-vs-rest ROC-AUC, or None when y holds only one side (AUC is undefined)."""
    from sklearn.metrics import roc_auc_score

    if is_class.all() or not is_class.any():
        return None
    value = float(roc_auc_score(is_class, scores))
    return value if np.isfinite(value) else None


def _time_runs(session: ort.InferenceSession, input_name: str, batch: np.ndarray) -> float:
    """Median ms per sample over timed runs after warm-up, bounded by the time budget."""
    feeds = {input_name: batch}
    for _ in range(_WARMUP_RUNS):
        session.run(None, feeds)
    timings: list[float] = []
    deadline = time.perf_counter() + _LATENCY_BUDGET_S
    while len(timings) < _MAX_TIMED_RUNS and (
        len(timings) < _MIN_TIMED_RUNS or time.perf_counter() < deadline
    ):
        started = time.perf_counter()
        session.run(None, feeds)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000.0 / len(batch)


def _latencies(session: ort.InferenceSession, input_name: str, x: np.ndarray) -> dict[str, float]:
    result: dict[str, float] = {}
    for size in _LATENCY_BATCHES:
        rows = np.resize(x, (size, *x.shape[1:])) if len(x) < size else x[:size]
        batch = np.ascontiguousarray(rows)
        result[f"latency_ms_per_sample_batch_{size}"] = _time_runs(session, input_name, batch)
    return result


def evaluation_report(
    onnx_path: Path,
    x: np.ndarray,
    y: np.ndarray,
    *,
    class_names: Sequence[str] = (),
    parameter_count: int | None = None,
    input_name: str | None = None,
) -> dict[str, Any]:
    """Run the ONNX classifier at ``onnx_path`` on labelled ``x``/``y`` and describe it.

    Scores come from the ``logits`` output (the first output when none is so named);
    class ``k`` is column ``k``. The result holds only JSON-safe values (no NaN):

    - ``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``: as ``evaluate``;
    - ``roc_auc_macro``: mean one-vs-rest ROC-AUC over classes where it is defined, or None;
    - ``per_class``: one dict per class: ``class`` (name), ``precision``, ``recall``,
      ``f1``, ``support`` (rows of that class in ``y``), ``roc_auc`` (None when the class
      is absent from ``y`` or is all of it);
    - ``confusion_matrix``: list of rows, row = true class, column = predicted class;
    - ``latency_ms_per_sample_batch_1`` / ``_batch_32``: median ONNX Runtime (CPU) ms per
      sample over timed runs after warm-up (rows of ``x``, repeated if fewer than 32);
    - ``throughput_per_s_batch_32``: samples per second at batch 32 on one session;
    - ``size_bytes``: the artifact's file size; ``parameter_count``: as given, else None;
    - ``num_samples``: ``len(y)``; ``input_name`` / ``output_name``: the tensors used.

    >>> evaluation_report(Path("digits.onnx"), x_val, y_val)["accuracy"]  # doctest: +SKIP
    0.97
    """
    y_true = np.asarray(y).astype(np.int64).reshape(-1)
    if len(x) != len(y_true) or len(y_true) == 0:
        raise InvalidInputError(
            f"x has {len(x)} rows and y has {len(y_true)}; need the same, non-zero count",
            {"x_rows": len(x), "y_rows": len(y_true)},
        )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    model_input = session.get_inputs()[0]
    name = input_name or model_input.name
    outputs = [o.name for o in session.get_outputs()]
    output_name = "logits" if "logits" in outputs else outputs[0]
    features = np.asarray(x)
    if model_input.type in _NUMPY_DTYPES:
        features = features.astype(_NUMPY_DTYPES[model_input.type], copy=False)
    logits = np.concatenate(
        [
            np.asarray(session.run([output_name], {name: features[i : i + _INFERENCE_BATCH]})[0])
            for i in range(0, len(features), _INFERENCE_BATCH)
        ]
    )
    num_classes = int(logits.shape[1])
    if y_true.min() < 0 or y_true.max() >= num_classes:
        raise InvalidInputError(
            f"labels must lie in [0, {num_classes}) for a model with {num_classes} outputs",
            {"num_classes": num_classes},
        )
    names = list(class_names) or [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise InvalidInputError(
            f"{len(names)} class names given for a model with {num_classes} classes",
            {"class_names": len(names), "num_classes": num_classes},
        )
    report: dict[str, Any] = dict(evaluate(logits, y_true))
    report.update(_per_class(logits, y_true, names))
    report.update(_latencies(session, name, features))
    report["throughput_per_s_batch_32"] = 1000.0 / report["latency_ms_per_sample_batch_32"]
    report["size_bytes"] = onnx_path.stat().st_size
    report["parameter_count"] = None if parameter_count is None else int(parameter_count)
    report["num_samples"] = len(y_true)
    report["input_name"] = name
    report["output_name"] = output_name
    return report


def _per_class(logits: np.ndarray, y_true: np.ndarray, names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(names)))
    y_pred = logits.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    probs = _softmax(logits)
    aucs = [_auc(y_true == k, probs[:, k]) for k in labels]
    defined = [a for a in aucs if a is not None]
    per_class = [
        {
            "class": names[k],
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
            "roc_auc": aucs[k],
        }
        for k in labels
    ]
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "roc_auc_macro": float(np.mean(defined)) if defined else None,
        "per_class": per_class,
        "confusion_matrix": [[int(v) for v in row] for row in matrix],
    }
