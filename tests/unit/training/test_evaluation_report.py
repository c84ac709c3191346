from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from maas.errors import MaasError
from maas.training import report as report_module
from maas.training.datasets import Dataset
from maas.training.export import export_onnx, export_torchscript, verify_torchscript
from maas.training.report import SCALAR_METRICS, compare_reports, evaluation_report
from maas.training.zoo import ClassifierHead, build_mlp

NAMES = [f"digit-{k}" for k in range(10)]


@pytest.fixture(scope="module")
def mlp() -> nn.Module:
    """Untrained but seeded: the report's arithmetic does not need a good model."""
    return build_mlp(64, 10, (16,), seed=0)


@pytest.fixture(scope="module")
def onnx_path(mlp: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "mlp.onnx"
    export_onnx(ClassifierHead(mlp), torch.rand(4, 64), path, output_names=("logits", "label"))
    return path


@pytest.fixture(scope="module")
def report(onnx_path: Path, mlp: nn.Module, digits: Dataset) -> dict[str, Any]:
    count = sum(p.numel() for p in mlp.parameters())
    return evaluation_report(
        onnx_path, digits.x_val, digits.y_val, class_names=NAMES, parameter_count=count
    )


def _ort_predictions(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": x})
    predictions: np.ndarray = np.asarray(logits).argmax(axis=1)
    return predictions


def test_keys_and_value_types(report: dict[str, Any], mlp: nn.Module, onnx_path: Path) -> None:
    for key in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc_macro"):
        assert isinstance(report[key], float), key
    assert report["size_bytes"] == onnx_path.stat().st_size
    assert report["parameter_count"] == 64 * 16 + 16 + 16 * 10 + 10
    assert report["output_name"] == "logits"
    assert report["input_name"] == "input"
    assert [c["class"] for c in report["per_class"]] == NAMES
    for row in report["per_class"]:
        assert set(row) == {"class", "precision", "recall", "f1", "support", "roc_auc"}
        assert isinstance(row["support"], int)
        assert all(isinstance(row[k], float) for k in ("precision", "recall", "f1", "roc_auc"))


def test_accuracy_matches_an_independent_argmax(
    report: dict[str, Any], onnx_path: Path, digits: Dataset
) -> None:
    predictions = _ort_predictions(onnx_path, digits.x_val)
    assert report["accuracy"] == pytest.approx(float(np.mean(predictions == digits.y_val)))


def test_confusion_matrix_is_consistent(report: dict[str, Any], digits: Dataset) -> None:
    matrix = np.array(report["confusion_matrix"])
    assert matrix.shape == (10, 10)
    assert int(matrix.sum()) == len(digits.y_val) == report["num_samples"]
    assert np.trace(matrix) / matrix.sum() == pytest.approx(report["accuracy"])
    assert matrix.sum(axis=1).tolist() == [c["support"] for c in report["per_class"]]


def test_auc_lies_in_unit_interval(report: dict[str, Any]) -> None:
    assert 0.0 <= report["roc_auc_macro"] <= 1.0
    assert all(0.0 <= c["roc_auc"] <= 1.0 for c in report["per_class"])


def test_latencies_are_positive(report: dict[str, Any]) -> None:
    assert report["latency_ms_per_sample_batch_1"] > 0
    assert report["latency_ms_per_sample_batch_32"] > 0


def test_report_is_strict_json(report: dict[str, Any]) -> None:
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_class_absent_from_y_gets_no_auc(onnx_path: Path, digits: Dataset) -> None:
    keep = digits.y_val != 3
    # A tiny x also exercises the latency batch being padded up to 32 rows.
    result = evaluation_report(onnx_path, digits.x_val[keep][:20], digits.y_val[keep][:20])
    absent = result["per_class"][3]
    assert absent["class"] == "3"
    assert absent["support"] == 0
    assert absent["roc_auc"] is None
    assert result["roc_auc_macro"] is not None
    assert result["parameter_count"] is None
    json.dumps(result, allow_nan=False)


def test_bad_inputs_are_refused(onnx_path: Path, digits: Dataset) -> None:
    with pytest.raises(MaasError, match="class names"):
        evaluation_report(onnx_path, digits.x_val, digits.y_val, class_names=["a", "b"])
    with pytest.raises(MaasError, match="rows"):
        evaluation_report(onnx_path, digits.x_val, digits.y_val[:-1])


def test_compare_reports_lines_up_scalars() -> None:
    a = {"accuracy": 0.9, "size_bytes": 100, "parameter_count": None, "val_loss": 0.5}
    b = {"accuracy": 0.95, "size_bytes": 80, "roc_auc_macro": 0.99, "per_class": []}
    rows = {metric: (left, right, delta) for metric, left, right, delta in compare_reports(a, b)}
    assert rows["accuracy"][:2] == (0.9, 0.95)
    assert rows["accuracy"][2] == pytest.approx(0.05)
    assert rows["size_bytes"] == (100, 80, -20)
    assert rows["parameter_count"] == (None, None, None)
    assert rows["roc_auc_macro"] == (None, 0.99, None)
    assert rows["val_loss"] == (0.5, None, None)
    assert "per_class" not in rows
    assert [m for m, *_ in compare_reports(a, b)][:4] == [
        k for k in SCALAR_METRICS if k in a or k in b
    ]


def test_latency_timing_is_bounded() -> None:
    assert report_module._LATENCY_BUDGET_S * len(report_module._LATENCY_BATCHES) <= 1.0


def test_torchscript_round_trip_equals_eager(mlp: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    head = ClassifierHead(mlp)
    export_torchscript(head, torch.rand(4, 64), path)
    sample = torch.rand(9, 64)
    assert verify_torchscript(head, sample, path) <= 1e-5


def test_torchscript_verification_catches_another_model(mlp: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "mlp.pt"
    export_torchscript(mlp, torch.rand(4, 64), path)
    with pytest.raises(MaasError, match="TorchScript export check failed") as caught:
        verify_torchscript(build_mlp(64, 10, (16,), seed=1), torch.rand(3, 64), path)
    assert caught.value.details["max_abs_diff"] > 1e-5
    with pytest.raises(MaasError, match="outputs"):
        verify_torchscript(ClassifierHead(mlp), torch.rand(3, 64), path)
