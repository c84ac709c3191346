"""The checks of an optimisation spec that need its data or a network, before it is queued.

Run in the submission's throw-away validator process (``maas.jobs.validate``) with the
parent's facts the server resolved: every data set is read and must fit the parent's
input, a pruning request is tried on the rebuilt (weightless) network, a distillation
student is built and must answer as many classes as the teacher.
"""

from __future__ import annotations

from maas.errors import InvalidInputError
from maas.optimize.architecture import rebuild, sample_input
from maas.optimize.datasets import load_named
from maas.optimize.distill import check_student
from maas.optimize.parents import Parent
from maas.optimize.prune import prune_structured
from maas.optimize.spec import DistillSpec, OptimizeSpec, PruneSpec, dataset_fields
from maas.training.zoo import build_model

__all__ = ["validate_optimization"]


def _renamed(error: InvalidInputError, old: str, new: str) -> InvalidInputError:
    field = str(error.details.get("field", ""))
    if not field.startswith(old):
        return error
    renamed = new + field.removeprefix(old)
    return InvalidInputError(
        error.message.replace(field, renamed, 1), {**error.details, "field": renamed}
    )


def validate_optimization(spec: OptimizeSpec, parent: Parent) -> None:
    """``InvalidInputError`` naming the field when the job could not run as asked."""
    seed = spec.split_seed or 0
    where = f"version {parent.version} of {parent.model_name!r}"
    for field, dataset_spec in dataset_fields(spec).items():
        dataset = load_named(dataset_spec, seed, field)
        if parent.input_shape and dataset.input_shape != parent.input_shape:
            raise InvalidInputError(
                f"{field}: its samples are {list(dataset.input_shape)} but {where} takes "
                f"{list(parent.input_shape)}",
                {"field": field},
            )
        if parent.classes is not None and dataset.num_classes > parent.classes:
            raise InvalidInputError(
                f"{field}: it has {dataset.num_classes} classes but {where} answers "
                f"{parent.classes}",
                {"field": field},
            )
        if isinstance(spec, DistillSpec) and field == "dataset":
            try:
                student = build_model(
                    spec.student.name,
                    dataset.input_shape,
                    dataset.num_classes,
                    spec.student.options,
                    seed=spec.hyperparameters.seed,
                )
            except InvalidInputError as error:
                raise _renamed(_renamed(error, "model.", "student."), "model", "student") from None
            assert parent.classes is not None  # resolve refuses a teacher without logits
            check_student(student, sample_input(parent), parent.classes)
    if isinstance(spec, PruneSpec) and spec.method == "structured":
        prune_structured(
            rebuild(parent), spec.amount, sample_input(parent), multiple=spec.channel_multiple
        )
