"""Train, evaluate, export and register in one call: the path from a job spec to a version.

``train_job`` is the one path; ``TrainOptions`` (the ``maas train`` flags) is turned into
a ``JobSpec`` and goes the same way.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import onnxruntime as ort
import torch

import maas
from maas.errors import InvalidInputError
from maas.protocol.signature import Signature
from maas.registry.entities import ModelVersion
from maas.training.datasets import Dataset, load_dataset
from maas.training.export import export_onnx
from maas.training.report import SCALAR_METRICS, evaluation_report
from maas.training.signature import onnx_signature
from maas.training.spec import DatasetSpec, Hyperparameters, JobSpec, ModelSpec
from maas.training.trainer import EpochReport, TrainConfig, train
from maas.training.zoo import ClassifierHead, build_model, parameter_count

__all__ = [
    "DATASETS",
    "MODELS",
    "TrainOptions",
    "VersionRegistrar",
    "train_and_register",
    "train_job",
]

DATASETS: Final[tuple[str, ...]] = ("digits",)
MODELS: Final[tuple[str, ...]] = ("mlp", "cnn", "resnet")

_EXPORT_SAMPLE_ROWS: Final = 16


class VersionRegistrar(Protocol):
    """The one registry call training needs; keeps training off registry internals."""

    def register_version(
        self,
        model_name: str,
        artifact_path: Path,
        /,
        *,
        artifact_format: str,
        signature: Signature,
        metrics: dict[str, Any],
        lineage: dict[str, Any],
        actor: str,
    ) -> ModelVersion: ...


def _check_choice(field_name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInputError(
            f"{field_name}: unknown {value!r}; choose one of: {', '.join(choices)}",
            {"field": field_name, "value": value, "choices": list(choices)},
        )


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """What ``maas train`` flags ask for; checked on construction."""

    model_name: str = "digits"
    dataset: str = "digits"
    model: str = "mlp"
    config: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("model", self.model, MODELS)

    def to_spec(self) -> JobSpec:
        c = self.config
        options = {"hidden": list(c.hidden)} if self.model == "mlp" else {}
        return JobSpec(
            model_name=self.model_name,
            model=ModelSpec(name=self.model, options=options),
            dataset=DatasetSpec(kind="digits"),
            hyperparameters=Hyperparameters(
                epochs=c.epochs,
                batch_size=c.batch_size,
                learning_rate=c.learning_rate,
                weight_decay=c.weight_decay,
                seed=c.seed,
            ),
        )


def _train_config(spec: JobSpec) -> TrainConfig:
    h = spec.hyperparameters
    return TrainConfig(
        epochs=h.epochs,
        batch_size=h.batch_size,
        learning_rate=h.learning_rate,
        weight_decay=h.weight_decay,
        seed=h.seed,
        optimizer=h.optimizer,
        momentum=h.momentum,
        schedule=h.schedule,
        step_size=h.step_size,
        gamma=h.gamma,
        early_stopping_metric=h.early_stopping.metric if h.early_stopping else None,
        early_stopping_patience=h.early_stopping.patience if h.early_stopping else 5,
        device=spec.device,
        augment_flip=spec.dataset.augment.flip,
        augment_crop=spec.dataset.augment.crop,
    )


def _lineage(spec: JobSpec, dataset: Dataset) -> dict[str, Any]:
    return {
        "source": "train",
        "dataset": {
            "name": dataset.name,
            "sha256": dataset.content_sha256,
            "train_rows": len(dataset.y_train),
            "validation_rows": len(dataset.y_val),
            "test_rows": 0 if dataset.y_test is None else len(dataset.y_test),
        },
        "model": spec.model.model_dump(mode="json"),
        "hyperparameters": spec.hyperparameters.model_dump(mode="json"),
        "seed": spec.hyperparameters.seed,
        "spec": spec.model_dump(mode="json"),
        "libraries": {
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "maas": maas.__version__,
        },
    }


def train_job(
    registry: VersionRegistrar,
    spec: JobSpec,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> ModelVersion:
    """Train what ``spec`` asks for and register the ONNX export with its evaluation.

    Metrics are measured on the test split when the spec has one, else on the
    validation split; ``metrics["evaluation"]`` holds the full report (per-class scores,
    ROC-AUC, confusion matrix, latency, size, parameter count).
    """
    dataset = load_dataset(spec.dataset, spec.hyperparameters.seed)
    model = build_model(
        spec.model.name,
        dataset.input_shape,
        dataset.num_classes,
        spec.model.options,
        seed=spec.hyperparameters.seed,
    )
    reports = train(model, dataset, _train_config(spec), on_epoch)
    x_eval, y_eval = dataset.x_val, dataset.y_val
    if dataset.x_test is not None and dataset.y_test is not None:
        x_eval, y_eval = dataset.x_test, dataset.y_test
    sample = torch.from_numpy(np.array(dataset.x_val[:_EXPORT_SAMPLE_ROWS]))
    with tempfile.TemporaryDirectory(prefix="maas-train-") as workdir:
        onnx_path = Path(workdir) / f"{spec.model_name}.onnx"
        export_onnx(ClassifierHead(model), sample, onnx_path, output_names=("logits", "label"))
        report = evaluation_report(
            onnx_path,
            x_eval,
            y_eval,
            class_names=dataset.class_names,
            parameter_count=parameter_count(model),
        )
        metrics: dict[str, Any] = {k: report[k] for k in SCALAR_METRICS if k in report}
        metrics["val_loss"] = reports[-1].val_loss
        metrics["evaluation"] = report
        return registry.register_version(
            spec.model_name,
            onnx_path,
            artifact_format="onnx",
            signature=onnx_signature(onnx_path),
            metrics=metrics,
            lineage=_lineage(spec, dataset),
            actor="train",
        )


def train_and_register(
    registry: VersionRegistrar,
    options: TrainOptions,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> ModelVersion:
    """``train_job`` for the ``maas train`` flags.

    >>> train_and_register(registry, TrainOptions(model_name="digits"))  # doctest: +SKIP
    ModelVersion(model_name='digits', version=1, ...)
    """
    return train_job(registry, options.to_spec(), on_epoch)
