"""The kinds of job and their specs: one parser for every document a job is submitted with.

``parse_job`` reads any kind (``kind`` defaults to ``train``), so every route (CLI flags, a
spec file, ``POST /api/jobs``) refuses a bad document with the same message, which starts
with the field path and carries it in ``details["field"]``. Torch-free: the server parses
these.

>>> parse_job({"kind": "quantize", "parent": "digits:3", "method": "static"}).method
'static'
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import Field, TypeAdapter, ValidationError

from maas.errors import InvalidInputError
from maas.optimize.spec import DistillSpec, PruneSpec, QuantizeSpec, dataset_fields
from maas.training.language.spec import LanguageModelSpec
from maas.training.spec import DATASET_PATH_FIELDS, JobSpec, _document_of, _refusal

__all__ = [
    "JOB_KINDS",
    "AnyJobSpec",
    "TrainSpec",
    "job_epochs",
    "load_job",
    "parse_job",
]

JOB_KINDS: Final[tuple[str, ...]] = ("train", "quantize", "prune", "distill", "language-model")


class TrainSpec(JobSpec):
    """A training job (``maas.training.spec.JobSpec``) tagged with its kind."""

    kind: Literal["train"] = "train"


AnyJobSpec: TypeAlias = TrainSpec | QuantizeSpec | PruneSpec | DistillSpec | LanguageModelSpec
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


def job_epochs(spec: AnyJobSpec) -> int:
    """How many epochs the job will train (its progress bar); 0 when it trains none. A
    language model trains one pass of ``steps`` optimiser steps."""
    if isinstance(spec, LanguageModelSpec):
        return 1
    if isinstance(spec, TrainSpec | DistillSpec):
        return spec.hyperparameters.epochs
    if isinstance(spec, PruneSpec) and spec.fine_tune is not None:
        return spec.fine_tune.epochs
    return 0


def load_job(path: Path) -> AnyJobSpec:
    """Read a job file of any kind; relative data set paths are taken from its folder."""
    spec = parse_job(_document_of(path))
    base = path.resolve().parent
    updates: dict[str, Any] = {}
    if isinstance(spec, LanguageModelSpec):
        corpus = spec.corpus.path
        if corpus is not None and not corpus.is_absolute():
            updates["corpus"] = spec.corpus.model_copy(update={"path": base / corpus})
    for field, dataset in dataset_fields(spec).items():
        paths = {
            name: base / value
            for name in DATASET_PATH_FIELDS
            if (value := getattr(dataset, name)) is not None and not value.is_absolute()
        }
        if paths:
            updates[field] = dataset.model_copy(update=paths)
    return spec.model_copy(update=updates) if updates else spec
