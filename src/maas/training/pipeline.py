"""Train, evaluate, export and register in one call: the path from a job spec to a version.

``train_job`` is the one path: a job's worker process calls it with hooks that report
progress, and tests call it directly. Each phase is logged on ``maas.training`` (a job's
log shows them).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import onnxruntime as ort
import torch

import maas
from maas.monitoring.drift import Reference, ReferenceSource
from maas.protocol.signature import Signature
from maas.registry.entities import ModelVersion
from maas.training.datasets import Dataset, load_dataset
from maas.training.export import export_onnx, export_torchscript
from maas.training.finetune import TORCHSCRIPT, VersionReader, load_parent_weights
from maas.training.report import SCALAR_METRICS, evaluation_report
from maas.training.signature import onnx_signature
from maas.training.spec import Augment, Hyperparameters, JobSpec
from maas.training.trainer import EpochReport, TrainConfig, train
from maas.training.zoo import ClassifierHead, build_model, parameter_count

__all__ = [
    "TrainingHooks",
    "VersionRegistrar",
    "input_reference",
    "train_config",
    "train_job",
]


_EXPORT_SAMPLE_ROWS: Final = 16
_log = logging.getLogger("maas.training")


class VersionRegistrar(VersionReader, Protocol):
    """The registry calls training needs (``init_from`` reads the parent version through
    ``VersionReader``); keeps training off registry internals."""

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
        extra_artifacts: dict[str, Path] | None = None,
        input_reference: dict[str, Any] | None = None,
        reference_details: dict[str, Any] | None = None,
    ) -> ModelVersion: ...


@dataclass(frozen=True, slots=True)
class TrainingHooks:
    """How a caller watches, checkpoints and resumes a run (a job runner uses all of them).

    ``on_step(epoch, step, steps)`` may raise to stop the run (a cancelled job does);
    ``checkpoint(epoch, state)`` receives the trainer's resumable state after every
    epoch, and ``resume_from`` hands such a state back; ``lineage`` is merged into the
    version's lineage (a job records its id there).
    """

    on_epoch: Callable[[EpochReport], None] | None = None
    on_step: Callable[[int, int, int], None] | None = None
    checkpoint: Callable[[int, dict[str, Any]], None] | None = None
    resume_from: dict[str, Any] | None = None
    lineage: dict[str, Any] = field(default_factory=dict)


def train_config(
    h: Hyperparameters, *, device: str = "auto", augment: Augment | None = None
) -> TrainConfig:
    """The trainer's configuration for a spec's hyper-parameters (shared by every job kind
    that trains: training, fine-tuning after pruning, distillation)."""
    augment = augment or Augment()
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
        device=device,
        augment_flip=augment.flip,
        augment_crop=augment.crop,
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


def input_reference(dataset: Dataset, signature: Signature) -> Reference:
    """The statistics of the training split's inputs (``maas.monitoring.drift``), which the
    server compares the version's live inputs against."""
    source = ReferenceSource(
        "training",
        description=f"the training split of {dataset.name}",
        dataset=dataset.name,
        sha256=dataset.content_sha256,
        split="train",
    )
    return Reference.build({signature.inputs[0].name: dataset.x_train}, source)


def train_job(
    registry: VersionRegistrar,
    spec: JobSpec,
    on_epoch: Callable[[EpochReport], None] | None = None,
    *,
    hooks: TrainingHooks | None = None,
) -> ModelVersion:
    """Train what ``spec`` asks for and register the ONNX export with its evaluation.

    Metrics are measured on the test split when the spec has one, else on the
    validation split; ``metrics["evaluation"]`` holds the full report (per-class scores,
    ROC-AUC, confusion matrix, latency, size, parameter count). The same network is also
    stored as a ``torchscript`` artifact of the version, which ``spec.init_from`` reads
    to start a later run from these weights (lineage ``parent`` names it). The version's
    input reference for drift (``input_reference``) is stored with it.
    """
    dataset = load_dataset(spec.dataset, spec.hyperparameters.seed)
    _log.info(
        "dataset %s: %d train, %d validation, %d test rows, %d classes (sha256 %s)",
        dataset.name,
        len(dataset.y_train),
        len(dataset.y_val),
        0 if dataset.y_test is None else len(dataset.y_test),
        dataset.num_classes,
        dataset.content_sha256[:12],
    )
    model = build_model(
        spec.model.name,
        dataset.input_shape,
        dataset.num_classes,
        spec.model.options,
        seed=spec.hyperparameters.seed,
    )
    head = ClassifierHead(model)
    parent: dict[str, Any] = {}
    if spec.init_from is not None:
        parent = {"parent": load_parent_weights(registry, spec.init_from, head)}
    hooks = hooks or TrainingHooks(on_epoch=on_epoch)
    config = train_config(spec.hyperparameters, device=spec.device, augment=spec.dataset.augment)
    _log.info(
        "model %s: %d parameters%s; training %d epochs on %s",
        spec.model.name,
        parameter_count(model),
        f", starting from {spec.init_from}" if parent else "",
        config.epochs,
        config.resolved_device(),
    )
    reports = train(
        model,
        dataset,
        config,
        hooks.on_epoch or on_epoch,
        on_step=hooks.on_step,
        checkpoint=hooks.checkpoint,
        resume_from=hooks.resume_from,
    )
    x_eval, y_eval = dataset.x_val, dataset.y_val
    if dataset.x_test is not None and dataset.y_test is not None:
        x_eval, y_eval = dataset.x_test, dataset.y_test
    sample = torch.from_numpy(np.array(dataset.x_val[:_EXPORT_SAMPLE_ROWS]))
    _log.info("exporting ONNX and TorchScript, each checked against torch")
    with tempfile.TemporaryDirectory(prefix="maas-train-") as workdir:
        onnx_path = Path(workdir) / f"{spec.model_name}.onnx"
        export_onnx(head, sample, onnx_path, output_names=("logits", "label"))
        torchscript_path = Path(workdir) / f"{spec.model_name}.pt"
        export_torchscript(head, sample, torchscript_path)
        split = "test" if dataset.x_test is not None else "validation"
        _log.info("evaluating on the %s split (%d rows) with ONNX Runtime", split, len(y_eval))
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
        signature = onnx_signature(onnx_path)
        reference = input_reference(dataset, signature)
        _log.info(
            "input reference: %d features of %d training rows",
            len(reference.features),
            reference.rows,
        )
        return registry.register_version(
            spec.model_name,
            onnx_path,
            artifact_format="onnx",
            signature=signature,
            metrics=metrics,
            lineage=_lineage(spec, dataset) | parent | hooks.lineage,
            actor="train",
            extra_artifacts={TORCHSCRIPT: torchscript_path},
            input_reference=reference.to_dict(),
            reference_details=reference.summary(),
        )
