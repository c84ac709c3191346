"""The optimisation job specs: quantise, prune or distil a registered version into a new one.

A job document names its ``kind``; ``parse_job`` reads any kind, training included, so every
route (CLI flags, a spec file, ``POST /api/jobs``) refuses a bad document with the same
message, which starts with the field path and carries it in ``details["field"]``. Torch-free:
the server parses these.

Fields left out that the parent knows are filled in at submission (``maas.optimize.parents``):
the data sets default to the parent's training data, ``split_seed`` to the parent's seed, so
the report's held-out rows are rows the parent never trained on.

>>> parse_job({"kind": "quantize", "parent": "digits:3", "method": "static"}).method
'static'
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from maas.errors import InvalidInputError
from maas.training.spec import (
    _MODEL_NAME,
    _VERSION_REF,
    DATASET_PATH_FIELDS,
    DatasetSpec,
    Hyperparameters,
    JobSpec,
    ModelSpec,
    _document_of,
    _refusal,
    _Strict,
)

__all__ = [
    "JOB_KINDS",
    "AnyJobSpec",
    "DistillSpec",
    "OptimizeSpec",
    "PruneSpec",
    "QuantizeSpec",
    "TrainSpec",
    "dataset_fields",
    "job_epochs",
    "load_job",
    "parse_job",
    "source",
]

JOB_KINDS: Final[tuple[str, ...]] = ("train", "quantize", "prune", "distill")
_VERSION: Final = re.compile(f"{_MODEL_NAME}:{_VERSION_REF}")


def _version_ref(value: str) -> str:
    if not _VERSION.fullmatch(value):
        raise ValueError(
            f"expected NAME:VERSION or NAME:ALIAS (e.g. digits:3, digits:production), got {value!r}"
        )
    return value


class TrainSpec(JobSpec):
    """A training job (``maas.training.spec.JobSpec``) tagged with its kind."""

    kind: Literal["train"] = "train"


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
AnyJobSpec: TypeAlias = TrainSpec | OptimizeSpec
_ADAPTER: Final = TypeAdapter[AnyJobSpec](Annotated[AnyJobSpec, Field(discriminator="kind")])


def parse_job(document: dict[str, Any]) -> AnyJobSpec:
    """Validate a job document of any kind (``kind`` defaults to ``train``)."""
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"spec: expected a mapping, got {type(document).__name__}", {"field": "spec"}
        )
    kind = document.get("kind", "train")
    if kind not in JOB_KINDS:
        raise InvalidInputError(
            f"kind: unknown job kind {kind!r}; choose one of {', '.join(JOB_KINDS)}",
            {"field": "kind"},
        )
    try:
        return _ADAPTER.validate_python({**document, "kind": kind})
    except ValidationError as error:
        raise _without_kind_tag(_refusal(error)) from None


def _without_kind_tag(error: InvalidInputError) -> InvalidInputError:
    """Pydantic prefixes a tagged union's field paths with the tag (``quantize.method``)."""
    problems = []
    for problem in error.details.get("errors", []):
        field = str(problem["field"])
        head, _, rest = field.partition(".")
        problems.append({**problem, "field": rest if head in JOB_KINDS and rest else field})
    if not problems:
        return error
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return InvalidInputError(text, {"field": problems[0]["field"], "errors": problems})


def source(spec: OptimizeSpec) -> tuple[str, str]:
    """The field naming the version the result is made from, and its ``NAME:REF``."""
    if isinstance(spec, DistillSpec):
        return "teacher", spec.teacher
    return "parent", spec.parent


def dataset_fields(spec: JobSpec | OptimizeSpec) -> dict[str, DatasetSpec]:
    """The spec's data sets by field name (``dataset``, ``calibration``, ``evaluation``)."""
    names = ("dataset", "calibration", "evaluation")
    return {n: d for n in names if isinstance(d := getattr(spec, n, None), DatasetSpec)}


def job_epochs(spec: AnyJobSpec) -> int:
    """How many epochs the job will train (its progress bar); 0 when it trains none."""
    if isinstance(spec, TrainSpec | DistillSpec):
        return spec.hyperparameters.epochs
    if isinstance(spec, PruneSpec) and spec.fine_tune is not None:
        return spec.fine_tune.epochs
    return 0


def load_job(path: Path) -> AnyJobSpec:
    """Read a job file of any kind; relative data set paths are taken from its folder."""
    spec = parse_job(_document_of(path))
    base = path.resolve().parent
    updates = {}
    for field, dataset in dataset_fields(spec).items():
        paths = {
            name: base / value
            for name in DATASET_PATH_FIELDS
            if (value := getattr(dataset, name)) is not None and not value.is_absolute()
        }
        if paths:
            updates[field] = dataset.model_copy(update=paths)
    return spec.model_copy(update=updates) if updates else spec
