"""Evaluate any registered version, trained or uploaded, on a labelled dataset.

Which rows: the dataset is loaded and split exactly as a training run with the same
dataset section and seed would split it, and the report is measured on the rows such a
run holds out — the test split when there is one (``test_path`` or ``test_fraction``),
else the validation split. A version trained on that dataset is thus measured on rows it
never trained on, and evaluating it with its own spec and seed reproduces its recorded
metrics.

Needs scikit-learn (the ``torch`` or ``sklearn`` extra) but not torch: the report runs
the ONNX artifact in ONNX Runtime; torch only counts parameters when the version has a
TorchScript artifact and torch is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from maas.errors import InvalidInputError
from maas.protocol.signature import Signature
from maas.registry.entities import ModelVersion
from maas.training.datasets import Dataset, load_dataset
from maas.training.report import SCALAR_METRICS, evaluation_report
from maas.training.spec import DatasetSpec

__all__ = ["ArtifactReader", "HeldOut", "audit_details", "evaluate_version", "held_out"]

_FLOAT_TYPES: Final = frozenset({"FP16", "FP32", "FP64"})


class ArtifactReader(Protocol):
    """The one registry read evaluation needs: a version's verified artifact path."""

    def artifact_path(self, version: ModelVersion, artifact_format: str | None = None) -> Path: ...


@dataclass(frozen=True, slots=True)
class HeldOut:
    """The rows a report is measured on, and where they came from."""

    x: np.ndarray
    y: np.ndarray
    split: str
    dataset: Dataset


def held_out(spec: DatasetSpec, seed: int) -> HeldOut:
    """Load ``spec`` split with ``seed``: its test split if it has one, else validation."""
    dataset = load_dataset(spec, seed)
    if dataset.x_test is not None and dataset.y_test is not None:
        return HeldOut(dataset.x_test, dataset.y_test, "test", dataset)
    return HeldOut(dataset.x_val, dataset.y_val, "validation", dataset)


def _input_name(signature: Signature, x: np.ndarray) -> str:
    """The signature's one input, once the dataset's samples are known to fit it."""
    if len(signature.inputs) != 1:
        names = ", ".join(spec.name for spec in signature.inputs)
        raise InvalidInputError(
            f"the version takes {len(signature.inputs)} inputs ({names}); "
            "evaluation feeds one tensor of samples",
            {"inputs": [spec.name for spec in signature.inputs]},
        )
    spec = signature.inputs[0]
    sample_shape = tuple(int(side) for side in x.shape[1:])
    details = {
        "input": spec.name,
        "signature_shape": list(spec.shape),
        "dataset_shape": list(x.shape),
    }
    if spec.datatype not in _FLOAT_TYPES:
        raise InvalidInputError(
            f"input {spec.name!r} is {spec.datatype}; evaluation feeds float samples", details
        )
    fits = len(spec.shape) == 1 + len(sample_shape) and all(
        want in (-1, have) for want, have in zip(spec.shape[1:], sample_shape, strict=True)
    )
    if not fits:
        raise InvalidInputError(
            f"the dataset's samples are {list(sample_shape)} but input {spec.name!r} takes "
            f"{list(spec.shape)} (first dimension: the batch)",
            details,
        )
    if spec.shape[0] != -1:
        raise InvalidInputError(
            f"input {spec.name!r} has a fixed batch of {spec.shape[0]}; "
            "evaluation needs a variable batch dimension (-1)",
            details,
        )
    return spec.name


def _parameter_count(registry: ArtifactReader, version: ModelVersion) -> int | None:
    """Counted from the TorchScript artifact when there is one and torch is installed."""
    if "torchscript" not in version.artifacts:
        return None
    try:
        from maas.training.export import load_torchscript
    except ImportError:
        return None
    module = load_torchscript(registry.artifact_path(version, "torchscript"))
    return int(sum(p.numel() for p in module.parameters()))


def evaluate_version(
    registry: ArtifactReader, version: ModelVersion, rows: HeldOut
) -> dict[str, Any]:
    """The full evaluation report of ``version`` on ``rows``, plus ``dataset`` (name,
    sha256, split, rows) saying what it was measured on.

    ``InvalidInputError`` when the samples do not fit the version's signature, when it has
    no ONNX artifact, or when the labels do not fit its outputs.

    >>> rows = held_out(DatasetSpec(kind="digits"), seed=0)  # doctest: +SKIP
    >>> evaluate_version(registry, version, rows)["accuracy"]  # doctest: +SKIP
    0.97
    """
    if "onnx" not in version.artifacts and version.artifact_format != "onnx":
        raise InvalidInputError(
            f"evaluation runs ONNX artifacts; version {version.version} of "
            f"{version.model_name!r} has: {', '.join(sorted(version.artifacts))}",
            {"formats": sorted(version.artifacts)},
        )
    input_name = _input_name(version.signature, rows.x)
    report = evaluation_report(
        registry.artifact_path(version, "onnx"),
        rows.x,
        rows.y,
        class_names=rows.dataset.class_names,
        parameter_count=_parameter_count(registry, version),
        input_name=input_name,
    )
    report["dataset"] = {
        "name": rows.dataset.name,
        "sha256": rows.dataset.content_sha256,
        "split": rows.split,
        "rows": len(rows.y),
    }
    return report


def audit_details(report: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a report: the dataset and the scalar metrics."""
    return {
        "dataset": report["dataset"],
        "metrics": {k: report[k] for k in SCALAR_METRICS if report.get(k) is not None},
    }
