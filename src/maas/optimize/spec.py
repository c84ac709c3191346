"""The optimisation job specs: quantise, prune or distil a registered version into a new one.

Documents of every kind are read by ``maas.jobs.kinds.parse_job``, so every route (CLI flags,
a spec file, ``POST /api/jobs``) refuses a bad one with the same message, which starts with
the field path and carries it in ``details["field"]``. Torch-free: the server parses these.

Fields left out that the parent knows are filled in at submission (``maas.optimize.parents``):
the data sets default to the parent's training data, ``split_seed`` to the parent's seed, so
the report's held-out rows are rows the parent never trained on.

>>> QuantizeSpec(kind="quantize", parent="digits:3", method="static").method
'static'
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal, TypeAlias

from pydantic import Field, field_validator

from maas.training.spec import (
    _MODEL_NAME,
    _VERSION_REF,
    DatasetSpec,
    Hyperparameters,
    ModelSpec,
    _Strict,
)

__all__ = ["DistillSpec", "OptimizeSpec", "PruneSpec", "QuantizeSpec", "dataset_fields", "source"]

_VERSION: Final = re.compile(f"{_MODEL_NAME}:{_VERSION_REF}")


def _version_ref(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise ValueError(
            f"expected NAME:VERSION or NAME:ALIAS (e.g. digits:3, digits:production), got {value!r}"
        )
    return value


class _Optimize(_Strict):
    """What every optimisation shares: where the result goes and how the report is measured."""

    model_name: str | None = Field(
        default=None,
        pattern=f"^{_MODEL_NAME}$",
        description="Register the result under this model; default: the parent's model.",
    )
    evaluation: DatasetSpec | None = Field(
        default=None,
        description="The labelled data the report is measured on (its held-out split); "
        "default: the parent's training data.",
    )
    split_seed: int | None = Field(
        default=None,
        ge=0,
        le=2**32 - 1,
        description="The seed that splits the data sets; default: the parent's seed.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"


class QuantizeSpec(_Optimize):
    """Int8 (dynamic, or static with calibration) or float16 with ONNX Runtime."""

    kind: Literal["quantize"]
    parent: str = Field(description="The version to quantise, NAME:VERSION or NAME:ALIAS.")
    method: Literal["dynamic", "static", "float16"] = "dynamic"
    per_channel: bool = False
    calibration: DatasetSpec | None = Field(
        default=None,
        description="Static only: rows whose activations set the int8 ranges (its train "
        "split); default: the parent's training data.",
    )
    calibration_rows: int = Field(default=512, ge=1, le=100_000)
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    exclude_op_types: list[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]] = Field(
        default_factory=list, max_length=64, description="ONNX op types left in float."
    )

    _parent = field_validator("parent")(_version_ref)


class PruneSpec(_Optimize):
    """Magnitude pruning of a version trained by maas, optionally fine-tuned afterwards."""

    kind: Literal["prune"]
    parent: str = Field(description="The version to prune, NAME:VERSION or NAME:ALIAS.")
    method: Literal["structured", "unstructured"] = "structured"
    amount: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="structured: the fraction of parameters to remove (whole channels); "
        "unstructured: the fraction of weights set to zero.",
    )
    channel_multiple: int = Field(
        default=16,
        ge=1,
        le=256,
        description="structured: kept channel counts are multiples of this or the layer's "
        "own width (ONNX Runtime's CPU convolutions work on blocks of 8 channels with AVX2 "
        "and 16 with AVX-512, and other widths run slower); 1 keeps the exact fraction",
    )
    dataset: DatasetSpec | None = Field(
        default=None, description="Fine-tuning data; default: the parent's training data."
    )
    fine_tune: Hyperparameters | None = Field(
        default=None, description="Fine-tune after pruning (omit for none)."
    )

    _parent = field_validator("parent")(_version_ref)


class DistillSpec(_Optimize):
    """A student trained on a teacher's temperature-softened outputs and the hard labels."""

    kind: Literal["distill"]
    teacher: str = Field(description="The teacher version, NAME:VERSION or NAME:ALIAS.")
    student: ModelSpec = Field(default_factory=ModelSpec)
    dataset: DatasetSpec | None = Field(
        default=None, description="Training data; default: the teacher's training data."
    )
    temperature: float = Field(default=2.0, gt=0.0, le=100.0)
    alpha: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the soft-target loss (1 - alpha: labels).",
    )
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)

    _teacher = field_validator("teacher")(_version_ref)

    @field_validator("dataset")
    @classmethod
    def _no_augment(cls, value: DatasetSpec | None) -> DatasetSpec | None:
        augment = None if value is None else value.augment
        if augment is not None and (augment.flip or augment.crop):
            raise ValueError(
                "augment is not used in distillation (the teacher's targets are "
                "computed once, on the rows as they are)"
            )
        return value


OptimizeSpec: TypeAlias = QuantizeSpec | PruneSpec | DistillSpec


def source(spec: OptimizeSpec) -> tuple[str, str]:
    """The field naming the version the result is made from, and its ``NAME:REF``."""
    if isinstance(spec, DistillSpec):
        return "teacher", spec.teacher
    return "parent", spec.parent


def dataset_fields(spec: object) -> dict[str, DatasetSpec]:
    """The spec's data sets by field name (``dataset``, ``calibration``, ``evaluation``)."""
    names = ("dataset", "calibration", "evaluation")
    return {n: d for n in names if isinstance(d := getattr(spec, n, None), DatasetSpec)}
