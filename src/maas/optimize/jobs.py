"""One job per optimisation kind: from the parent version to a registered, reported version.

``run_optimization`` is the one path (a job's worker calls it with the training hooks that
report progress and checkpoints; tests call it directly): resolve the parent again (the
spec was pinned at submission), make the candidate with the method, export it, measure it
against the parent on the same held-out rows (``maas.optimize.report``), and register it
with lineage naming the parent, the method, its parameters and the data it used.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import onnxruntime as ort
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

import maas
from maas.optimize.architecture import rebuild
from maas.optimize.datasets import load_named
from maas.optimize.distill import check_student, distillation_loss, teacher_logits
from maas.optimize.parents import Parent, resolve, trained_data
from maas.optimize.prune import prune_structured, prune_unstructured
from maas.optimize.quantize import quantize_model
from maas.optimize.report import comparison, flat_metrics
from maas.optimize.spec import DistillSpec, OptimizeSpec, PruneSpec, QuantizeSpec
from maas.registry.entities import ModelVersion
from maas.training.datasets import Dataset
from maas.training.export import export_onnx, export_torchscript
from maas.training.finetune import TORCHSCRIPT
from maas.training.pipeline import TrainingHooks, VersionRegistrar, input_reference, train_config
from maas.training.report import SCALAR_METRICS
from maas.training.signature import onnx_signature
from maas.training.spec import DatasetSpec
from maas.training.trainer import TrainConfig, TrainingLoss, train
from maas.training.version_report import HeldOut
from maas.training.zoo import ClassifierHead, build_model, parameter_count

__all__ = ["OptimizationRegistry", "run_optimization"]

_log = logging.getLogger("maas.optimize")
_EXPORT_SAMPLE_ROWS: Final = 16


class OptimizationRegistry(VersionRegistrar, Protocol):
    """The registry calls an optimisation job needs (resolve, artifact paths, register)."""


@dataclass(frozen=True, slots=True)
class _Made:
    """What a method made: the artifacts to register and what to say about them."""

    onnx: Path
    parameters: int | None
    details: dict[str, Any]
    training_data: tuple[DatasetSpec, int] | None
    torchscript: Path | None = None
    architecture: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Job:
    registry: OptimizationRegistry
    parent: Parent
    version: ModelVersion
    rows: HeldOut
    workdir: Path
    hooks: TrainingHooks

    def step(self, done: int, total: int) -> None:
        """Progress of a phase that is not an epoch (calibration, the teacher's pass)."""
        if self.hooks.on_step is not None:
            self.hooks.on_step(1, done, total)

    def sample(self) -> torch.Tensor:
        return torch.from_numpy(np.array(self.rows.x[:_EXPORT_SAMPLE_ROWS], dtype=np.float32))

    def export(self, head: ClassifierHead, stem: str) -> tuple[Path, Path]:
        _log.info("exporting ONNX and TorchScript, each checked against torch")
        onnx_path, torchscript_path = self.workdir / f"{stem}.onnx", self.workdir / f"{stem}.pt"
        export_onnx(head, self.sample(), onnx_path, output_names=("logits", "label"))
        export_torchscript(head, self.sample(), torchscript_path)
        return onnx_path, torchscript_path


def _parent_parameters(version: ModelVersion) -> int | None:
    count = version.metrics.get("parameter_count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _trained_on(version: ModelVersion) -> tuple[DatasetSpec, int] | None:
    data = trained_data(version)
    return None if data is None else (DatasetSpec.model_validate(data[0]), data[1])


def _quantize(spec: QuantizeSpec, job: _Job) -> _Made:
    calibration: np.ndarray | None = None
    details: dict[str, Any] = {}
    if spec.method == "static":
        assert spec.calibration is not None  # resolve fills it for static
        data = load_named(spec.calibration, spec.split_seed or 0, "calibration")
        calibration = np.asarray(data.x_train[: spec.calibration_rows], dtype=np.float32)
        details["calibration"] = {
            "dataset": data.name,
            "sha256": data.content_sha256,
            "split": "train",
            "rows": len(calibration),
        }
        _log.info(
            "calibrating on %d rows of %s (%s)",
            len(calibration),
            data.name,
            spec.calibration_method,
        )
    target = job.workdir / "quantized.onnx"
    result = quantize_model(
        job.registry.artifact_path(job.version, "onnx"),
        target,
        method=spec.method,
        per_channel=spec.per_channel,
        calibration=calibration,
        calibration_method=spec.calibration_method,
        exclude_op_types=spec.exclude_op_types,
        on_batch=job.step,
    )
    left = ", ".join(f"{op['op_type']} ({len(op['nodes'])})" for op in result.float_ops)
    _log.info("quantised %s; left in float: %s", spec.method, left or "nothing")
    return _Made(
        onnx=target,
        parameters=_parent_parameters(job.version),
        details={**details, **result.to_dict()},
        training_data=_trained_on(job.version),
    )


@contextmanager
def _zeros_held(model: nn.Module) -> Iterator[None]:
    """While inside, the weights unstructured pruning zeroed stay zero (fine-tuning would
    otherwise regrow them): each is masked by torch's pruning hooks, removed on the way out."""
    masked = [module for module in model.modules() if isinstance(module, nn.Conv2d | nn.Linear)]
    for module in masked:
        torch_prune.custom_from_mask(module, "weight", module.weight.detach() != 0)  # type: ignore[no-untyped-call]  # torch leaves it untyped
    try:
        yield
    finally:
        for module in masked:
            torch_prune.remove(module, "weight")  # type: ignore[no-untyped-call]  # untyped


def _prune(spec: PruneSpec, job: _Job) -> _Made:
    head = rebuild(job.parent, job.registry.artifact_path(job.version, TORCHSCRIPT))
    if spec.method == "structured":
        result = prune_structured(head, spec.amount, job.sample(), multiple=spec.channel_multiple)
    else:
        result = prune_unstructured(head, spec.amount)
    _log.info(
        "pruned %s: %d -> %d parameters (%d -> %d non-zero)",
        spec.method,
        result.parameters_before,
        result.parameters_after,
        result.nonzero_before,
        result.nonzero_after,
    )
    training_data = _trained_on(job.version)
    details = result.to_dict()
    if spec.fine_tune is not None:
        assert spec.dataset is not None  # resolve fills it when fine-tuning
        dataset = load_named(spec.dataset, spec.split_seed or 0, "dataset")
        _log.info("fine-tuning %d epochs on %s", spec.fine_tune.epochs, dataset.name)
        config = train_config(spec.fine_tune, device=spec.device)
        holding = _zeros_held(head) if spec.method == "unstructured" else nullcontext()
        with holding:
            _fit(head.model, dataset, config, job.hooks)
        details["fine_tune"] = {
            "epochs": spec.fine_tune.epochs,
            "dataset": dataset.name,
            "sha256": dataset.content_sha256,
        }
        training_data = (spec.dataset, spec.split_seed or 0)
    onnx_path, torchscript_path = job.export(head, "pruned")
    structure = {**job.parent.architecture.get("structure", {}), **result.structure}
    return _Made(
        onnx=onnx_path,
        parameters=parameter_count(head),
        details=details,
        training_data=training_data,
        torchscript=torchscript_path,
        architecture={"model": job.parent.architecture["model"], "structure": structure},
    )


def _fit(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    hooks: TrainingHooks,
    loss: TrainingLoss | None = None,
) -> None:
    """Train with the job's hooks: progress, checkpoints, resumption, cancellation."""
    train(
        model,
        dataset,
        config,
        hooks.on_epoch,
        on_step=hooks.on_step,
        checkpoint=hooks.checkpoint,
        resume_from=hooks.resume_from,
        loss=loss,
    )


def _distill(spec: DistillSpec, job: _Job) -> _Made:
    assert spec.dataset is not None  # resolve fills it
    dataset = load_named(spec.dataset, spec.split_seed or 0, "dataset")
    h = spec.hyperparameters
    student = build_model(
        spec.student.name,
        dataset.input_shape,
        dataset.num_classes,
        spec.student.options,
        seed=h.seed,
    )
    assert job.parent.classes is not None  # resolve refuses a teacher without logits
    check_student(student, job.sample(), job.parent.classes)
    _log.info("the teacher labels %d training rows", len(dataset.y_train))
    soft = teacher_logits(
        job.registry.artifact_path(job.version, "onnx"), dataset.x_train, on_batch=job.step
    )
    _log.info(
        "training student %s (%d parameters) for %d epochs, temperature %g, alpha %g",
        spec.student.name,
        parameter_count(student),
        h.epochs,
        spec.temperature,
        spec.alpha,
    )
    config = train_config(h, device=spec.device)
    _fit(
        student,
        dataset,
        config,
        job.hooks,
        distillation_loss(soft, temperature=spec.temperature, alpha=spec.alpha),
    )
    head = ClassifierHead(student)
    onnx_path, torchscript_path = job.export(head, "student")
    return _Made(
        onnx=onnx_path,
        parameters=parameter_count(student),
        details={
            "student": spec.student.model_dump(mode="json"),
            "temperature": spec.temperature,
            "alpha": spec.alpha,
            "dataset": {
                "name": dataset.name,
                "sha256": dataset.content_sha256,
                "train_rows": len(dataset.y_train),
            },
        },
        training_data=(spec.dataset, spec.split_seed or 0),
        torchscript=torchscript_path,
        architecture={"model": spec.student.model_dump(mode="json"), "structure": {}},
    )


def _method(spec: OptimizeSpec) -> str:
    return f"{spec.kind}/{spec.method}" if isinstance(spec, QuantizeSpec | PruneSpec) else "distill"


def _held_out(spec: OptimizeSpec) -> HeldOut:
    assert spec.evaluation is not None  # resolve fills it
    dataset = load_named(spec.evaluation, spec.split_seed or 0, "evaluation")
    if dataset.x_test is not None and dataset.y_test is not None:
        return HeldOut(dataset.x_test, dataset.y_test, "test", dataset)
    return HeldOut(dataset.x_val, dataset.y_val, "validation", dataset)


def _reference(made: _Made, onnx_path: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The drift reference of the candidate: the training split its weights learnt from."""
    if made.training_data is None:
        return None
    dataset = load_named(made.training_data[0], made.training_data[1], "dataset")
    reference = input_reference(dataset, onnx_signature(onnx_path))
    return reference.to_dict(), reference.summary()


def run_optimization(
    registry: OptimizationRegistry, spec: OptimizeSpec, hooks: TrainingHooks | None = None
) -> ModelVersion:
    """Make, measure and register the version ``spec`` asks for; returns it."""
    hooks = hooks or TrainingHooks()
    spec, parent = resolve(registry, spec)
    version = registry.resolve(parent.model_name, parent.version)
    rows = _held_out(spec)
    _log.info(
        "%s of %s; the report is measured on %d %s rows of %s",
        _method(spec),
        parent.ref,
        len(rows.y),
        rows.split,
        rows.dataset.name,
    )
    with tempfile.TemporaryDirectory(prefix="maas-optimize-") as workdir:
        job = _Job(registry, parent, version, rows, Path(workdir), hooks)
        if isinstance(spec, QuantizeSpec):
            made = _quantize(spec, job)
        elif isinstance(spec, PruneSpec):
            made = _prune(spec, job)
        else:
            made = _distill(spec, job)
        _log.info("measuring the candidate against %s on the same rows", parent.ref)
        report, result = comparison(
            registry.artifact_path(version, "onnx"),
            made.onnx,
            rows,
            parent_parameters=_parent_parameters(version),
            candidate_parameters=made.parameters,
        )
        _log.info(
            "accuracy %.4f (%+.4f vs parent), agreement %.4f, size x%.3f, latency@1 x%.3f",
            report["accuracy"],
            result["delta"]["accuracy"],
            result["agreement"],
            result["ratio"]["size_ratio"] or float("nan"),
            result["ratio"]["latency_ratio_batch_1"] or float("nan"),
        )
        metrics: dict[str, Any] = {k: report[k] for k in SCALAR_METRICS if k in report}
        metrics |= flat_metrics(result)
        metrics["evaluation"] = report
        metrics["optimization"] = {"method": _method(spec), **result, "details": made.details}
        lineage: dict[str, Any] = {
            "source": spec.kind,
            "parent": {
                "model": parent.model_name,
                "version": parent.version,
                "artifact_format": "onnx",
                "artifact_sha256": version.artifacts.get("onnx", {}).get(
                    "sha256", version.artifact_sha256
                ),
            },
            "method": _method(spec),
            "parameters": made.details,
            "spec": spec.model_dump(mode="json"),
            "seed": spec.split_seed,
            "libraries": {
                "torch": torch.__version__,
                "onnxruntime": ort.__version__,
                "maas": maas.__version__,
            },
        }
        if made.training_data is not None:
            lineage["training_data"] = {
                "dataset": made.training_data[0].model_dump(mode="json"),
                "seed": made.training_data[1],
            }
        if made.architecture:
            lineage |= made.architecture
        reference = _reference(made, made.onnx)
        return registry.register_version(
            spec.model_name or parent.model_name,
            made.onnx,
            artifact_format="onnx",
            signature=onnx_signature(made.onnx),
            metrics=metrics,
            lineage=lineage | hooks.lineage,
            actor=spec.kind,
            extra_artifacts=None if made.torchscript is None else {TORCHSCRIPT: made.torchscript},
            input_reference=None if reference is None else reference[0],
            reference_details=None if reference is None else reference[1],
        )
