"""Training ends in the registry: version 1 with honest metrics, lineage and a loadable artifact.

Uses the shared ``registry`` fixture (tests/conftest.py): a migrated ``Registry`` on a
fresh SQLite database and artifact folder.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

import maas
from maas.protocol.signature import Signature, TensorSpec
from maas.registry import Registry
from maas.training.datasets import load_digits
from maas.training.pipeline import train_job
from maas.training.spec import parse_spec
from maas.training.trainer import EpochReport, TrainConfig


def test_train_job_creates_a_servable_version(registry: Registry) -> None:
    epochs: list[int] = []

    def on_epoch(report: EpochReport) -> None:
        epochs.append(report.epoch)

    version = train_job(registry, parse_spec({}), on_epoch)

    config = TrainConfig()
    assert epochs == list(range(1, config.epochs + 1))
    assert (version.model_name, version.version, version.artifact_format) == ("digits", 1, "onnx")
    assert registry.get_version("digits", 1) == version
    assert version.signature == Signature(
        inputs=(TensorSpec("input", "FP32", (-1, 64)),),
        outputs=(TensorSpec("logits", "FP32", (-1, 10)), TensorSpec("label", "INT64", (-1,))),
    )

    metrics = version.metrics
    assert metrics["accuracy"] >= 0.95
    assert {"precision_macro", "recall_macro", "f1_macro", "val_loss"} <= metrics.keys()
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("precision_macro", "recall_macro", "f1_macro"))

    dataset = load_digits(seed=config.seed)
    lineage = version.lineage
    assert lineage["source"] == "train"
    assert lineage["dataset"] == {
        "name": "digits",
        "sha256": dataset.content_sha256,
        "train_rows": 1437,
        "validation_rows": 360,
        "test_rows": 0,
    }
    assert lineage["model"] == {"name": "mlp", "options": {}}
    hyperparameters = lineage["hyperparameters"]
    assert hyperparameters["epochs"] == config.epochs
    assert hyperparameters["batch_size"] == config.batch_size
    assert hyperparameters["learning_rate"] == config.learning_rate
    assert hyperparameters["optimizer"] == "adam"
    assert lineage["spec"]["model_name"] == "digits"
    evaluation = metrics["evaluation"]
    assert len(evaluation["confusion_matrix"]) == 10
    assert evaluation["parameter_count"] > 0
    assert lineage["seed"] == config.seed
    assert lineage["libraries"] == {
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "maas": maas.__version__,
    }

    session = ort.InferenceSession(
        str(registry.artifact_path(version)), providers=["CPUExecutionProvider"]
    )
    logits, label = session.run(["logits", "label"], {"input": dataset.x_val})
    np.testing.assert_array_equal(label, logits.argmax(axis=1))
    accuracy = float(np.mean(label == dataset.y_val))
    assert accuracy == metrics["accuracy"]
