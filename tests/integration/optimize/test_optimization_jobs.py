"""Each optimisation, run as its job runs it, on a digits CNN trained here: a new version with
lineage naming its parent and a report that measures both on the same held-out rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from maas.jobs.kinds import parse_job
from maas.optimize.jobs import run_optimization
from maas.optimize.spec import OptimizeSpec
from maas.registry import Registry
from maas.registry.entities import ModelVersion
from maas.registry.gate import failed_rules
from maas.store import LocalStore
from maas.training.datasets import load_digits
from maas.training.pipeline import train_job
from maas.training.spec import parse_spec


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """One registry for the module, holding the parent every test optimises (version 1)."""
    home = tmp_path_factory.mktemp("optimize")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    spec = {
        "model_name": "digits",
        "model": {"name": "cnn", "options": {"channels": [32, 64]}},
        "hyperparameters": {"epochs": 8, "seed": 3},
    }
    train_job(registry, parse_spec(spec))
    yield registry
    registry.close()


@pytest.fixture(scope="module")
def parent(registry: Registry) -> ModelVersion:
    return registry.get_version("digits", 1)


def _optimise(registry: Registry, document: dict[str, Any]) -> ModelVersion:
    spec = parse_job(document)
    assert not isinstance(spec, type(None))
    return run_optimization(registry, spec)  # type: ignore[arg-type]  # an OptimizeSpec here


def _report(version: ModelVersion) -> dict[str, Any]:
    report: dict[str, Any] = version.metrics["optimization"]
    return report


def test_static_int8_stays_within_two_points_and_shrinks(
    registry: Registry, parent: ModelVersion
) -> None:
    version = _optimise(
        registry,
        {"kind": "quantize", "parent": "digits:1", "method": "static", "per_channel": True},
    )
    report = _report(version)
    assert version.lineage["parent"]["version"] == 1
    assert version.lineage["method"] == "quantize/static"
    assert version.lineage["parameters"]["calibration"]["sha256"] == load_digits().content_sha256
    assert version.lineage["seed"] == 3  # the parent's split: its held-out rows, unseen by it
    assert report["dataset"]["rows"] == report["candidate"]["num_samples"] > 300
    assert report["parent"]["accuracy"] == pytest.approx(parent.metrics["accuracy"])
    assert version.metrics["accuracy"] >= parent.metrics["accuracy"] - 0.02, report
    assert version.metrics["accuracy_delta_vs_parent"] == pytest.approx(
        version.metrics["accuracy"] - parent.metrics["accuracy"]
    )
    assert report["agreement"] >= 0.95
    assert report["ratio"]["size_ratio"] < 0.75, report["ratio"]  # scales, zero points: a small net
    assert version.metrics["latency_ms_per_sample_batch_1"] > 0
    assert isinstance(report["details"]["float_ops"], list)
    assert version.metrics["parameter_count"] == parent.metrics["parameter_count"]
    assert registry.references.get("digits", version.version) is not None


def test_dynamic_int8_needs_no_data_and_names_what_stayed_float(registry: Registry) -> None:
    version = _optimise(registry, {"kind": "quantize", "parent": "digits:1"})
    report = _report(version)
    assert report["details"]["method"] == "dynamic"
    assert report["details"]["calibration_rows"] == 0
    left = {op["op_type"] for op in report["details"]["float_ops"]}
    assert left, "a CNN keeps some float ops under dynamic quantisation (e.g. BatchNorm, ReLU)"
    assert set(version.artifacts) == {"onnx"}  # no TorchScript: int8 lives in the ONNX file


def test_structured_pruning_removes_the_fraction_asked_and_fine_tunes(
    registry: Registry, parent: ModelVersion
) -> None:
    version = _optimise(
        registry,
        {"kind": "prune", "parent": "digits:1", "amount": 0.5, "fine_tune": {"epochs": 3}},
    )
    before, after = parent.metrics["parameter_count"], version.metrics["parameter_count"]
    assert after <= 0.5 * before, (before, after)
    saved = parent.metrics["size_bytes"] - version.metrics["size_bytes"]
    assert saved >= 0.9 * 4 * (before - after), "the file loses ~4 bytes per removed float32"
    assert version.lineage["structure"], "the pruned widths are recorded to rebuild it"
    assert version.lineage["training_data"]["seed"] == 3
    assert set(version.artifacts) == {"onnx", "torchscript"}
    assert version.metrics["accuracy"] >= parent.metrics["accuracy"] - 0.1, _report(version)

    again = _optimise(registry, {"kind": "prune", "parent": f"digits:{version.version}"})
    assert again.metrics["parameter_count"] <= 0.5 * after  # rebuilt from its structure


def test_unstructured_pruning_zeroes_weights_fine_tuning_keeps_them_zero(
    registry: Registry,
) -> None:
    version = _optimise(
        registry,
        {
            "kind": "prune",
            "parent": "digits:1",
            "method": "unstructured",
            "amount": 0.6,
            "fine_tune": {"epochs": 1},
        },
    )
    details = _report(version)["details"]
    assert details["nonzero_after"] <= 0.5 * details["nonzero_before"]
    assert details["parameters_after"] == details["parameters_before"]
    session = ort.InferenceSession(
        str(registry.artifact_path(version, "onnx")), providers=["CPUExecutionProvider"]
    )
    assert session.run(None, {"input": np.zeros((1, 64), np.float32)})[0].shape == (1, 10)


def test_a_distilled_student_reaches_ninety_percent_of_its_teacher(
    registry: Registry, parent: ModelVersion
) -> None:
    version = _optimise(
        registry,
        {
            "kind": "distill",
            "teacher": "digits:1",
            "model_name": "digits-student",
            "student": {"name": "mlp", "options": {"hidden": [32]}},
            "hyperparameters": {"epochs": 30},
        },
    )
    assert version.model_name == "digits-student" and version.version == 1
    teacher = parent.metrics["accuracy"]
    assert version.metrics["accuracy"] >= 0.9 * teacher, _report(version)
    assert version.metrics["parameter_count"] < parent.metrics["parameter_count"]
    assert version.lineage["parent"] == {
        "model": "digits",
        "version": 1,
        "artifact_format": "onnx",
        "artifact_sha256": parent.artifact_sha256,
    }
    assert version.lineage["model"]["name"] == "mlp"


def test_the_gate_bounds_the_drop_against_the_parent(registry: Registry) -> None:
    version = _optimise(registry, {"kind": "prune", "parent": "digits:1", "amount": 0.8})
    drop = -version.metrics["accuracy_delta_vs_parent"]
    assert drop > 0.01, "pruning 80% without fine-tuning costs accuracy"
    loose = [{"metric": "accuracy", "max_drop_vs_parent": drop + 0.01}]
    strict = [{"metric": "accuracy", "max_drop_vs_parent": 0.01}]
    assert failed_rules(loose, version.metrics, None) == []
    (failure,) = failed_rules(strict, version.metrics, None)
    assert "below its parent's" in failure
    trained = registry.get_version("digits", 1)
    assert failed_rules(strict, trained.metrics, None) == []  # no parent: the rule passes


def test_unknown_parent_is_refused_naming_the_field(registry: Registry) -> None:
    from maas.errors import InvalidInputError

    spec: OptimizeSpec = parse_job({"kind": "quantize", "parent": "digits:99"})  # type: ignore[assignment]
    with pytest.raises(InvalidInputError) as refused:
        run_optimization(registry, spec)
    assert refused.value.details["field"] == "parent"


def test_the_report_is_measured_where_the_user_says(registry: Registry, tmp_path: Path) -> None:
    digits = load_digits(seed=3)
    path = tmp_path / "holdout.npz"
    np.savez(path, x=digits.x_val, y=digits.y_val)
    version = _optimise(
        registry,
        {
            "kind": "quantize",
            "parent": "digits:1",
            "evaluation": {"kind": "npz", "path": str(path), "validation_fraction": 0.5},
        },
    )
    assert _report(version)["dataset"]["name"] == "holdout.npz"
