"""What an optimisation job learns from the version it starts from, at submission.

``resolve`` pins the parent (or teacher) to a version number, so the job does what was
asked even if an alias moves before it runs, checks the version holds what the method
needs, and fills the fields left out from the version's lineage: its training data for
calibration, fine-tuning, distillation and the report, and its split seed. Torch-free and
registry-agnostic: the server runs it with its registry; the job's worker runs it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from maas.errors import InvalidInputError, NotFoundError
from maas.optimize.spec import DistillSpec, OptimizeSpec, PruneSpec, QuantizeSpec, source
from maas.protocol.signature import Signature
from maas.registry.entities import ModelVersion
from maas.training.spec import DatasetSpec

__all__ = ["Parent", "VersionLookup", "resolve", "trained_data"]

TORCHSCRIPT: Final = "torchscript"
ONNX: Final = "onnx"


class VersionLookup(Protocol):
    """The one registry read resolution needs."""

    def resolve(self, name: str, ref: str | int | None = None) -> ModelVersion: ...


@dataclass(frozen=True, slots=True)
class Parent:
    """The facts about the source version that the job and its validation use.

    ``architecture`` is how to rebuild its network (``model``: the zoo or factory spec it
    was built from, ``structure``: the channel widths pruning left), for versions that
    hold TorchScript weights; ``input_shape``/``classes`` come from its signature.
    """

    model_name: str
    version: int
    formats: tuple[str, ...]
    input_shape: tuple[int, ...]
    classes: int | None
    architecture: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.model_name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "formats": list(self.formats),
            "input_shape": list(self.input_shape),
            "classes": self.classes,
            "architecture": self.architecture,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Parent:
        return cls(
            data["model_name"],
            int(data["version"]),
            tuple(data["formats"]),
            tuple(int(side) for side in data["input_shape"]),
            None if data["classes"] is None else int(data["classes"]),
            dict(data["architecture"]),
        )


def trained_data(version: ModelVersion) -> tuple[dict[str, Any], int] | None:
    """The data set (a ``DatasetSpec`` document) and split seed the version's weights were
    trained on, when maas made it; None for an upload."""
    lineage = version.lineage
    data = lineage.get("training_data")
    if isinstance(data, dict) and isinstance(data.get("dataset"), dict):
        return data["dataset"], int(data.get("seed", 0))
    spec = lineage.get("spec")
    if (
        lineage.get("source") == "train"
        and isinstance(spec, dict)
        and isinstance(spec.get("dataset"), dict)
    ):
        return spec["dataset"], int(lineage.get("seed", 0))
    return None


def _classes(signature: Signature) -> int | None:
    outputs = {t.name: t for t in signature.outputs}
    logits = outputs.get("logits") or (signature.outputs[0] if signature.outputs else None)
    if logits is None or len(logits.shape) != 2 or logits.shape[1] < 1:
        return None
    return logits.shape[1]


def _architecture(version: ModelVersion) -> dict[str, Any]:
    lineage = version.lineage
    model = lineage.get("model")
    if TORCHSCRIPT not in version.artifacts or not isinstance(model, dict):
        return {}
    structure = lineage.get("structure")
    return {"model": model, "structure": structure if isinstance(structure, dict) else {}}


def _refuse(field_name: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field_name}: {message}", {"field": field_name})


def _parent(lookup: VersionLookup, field_name: str, ref: str) -> tuple[Parent, ModelVersion]:
    name, _, version_ref = ref.partition(":")
    try:
        version = lookup.resolve(name, version_ref)
    except NotFoundError as error:
        raise _refuse(field_name, error.message) from None
    if version.archived is not None:
        raise _refuse(field_name, f"version {version.version} of {name!r} is archived")
    formats = tuple(sorted(set(version.artifacts) | {version.artifact_format}))
    inputs = version.signature.inputs
    parent = Parent(
        name,
        version.version,
        formats,
        tuple(inputs[0].shape[1:]) if len(inputs) == 1 else (),
        _classes(version.signature),
        _architecture(version),
    )
    return parent, version


def _default_data(
    spec: OptimizeSpec, field_name: str, version: ModelVersion, why: str
) -> DatasetSpec:
    """The data set ``field_name`` names, else the version's training data, else a refusal."""
    given = getattr(spec, field_name)
    if isinstance(given, DatasetSpec):
        return given
    data = trained_data(version)
    if data is None:
        raise _refuse(
            field_name,
            f"version {version.version} of {version.model_name!r} was not trained by maas, so "
            f"there is no training data to default to; name the data set {why}",
        )
    return DatasetSpec.model_validate(data[0])


def resolve(lookup: VersionLookup, spec: OptimizeSpec) -> tuple[OptimizeSpec, Parent]:
    """``spec`` pinned to a version number with its defaults filled, and that version's
    facts; ``InvalidInputError`` naming the field when the version cannot be the source."""
    field_name, ref = source(spec)
    parent, version = _parent(lookup, field_name, ref)
    where = f"version {parent.version} of {parent.model_name!r}"
    if len(version.signature.inputs) != 1:
        raise _refuse(
            field_name,
            f"{where} takes {len(version.signature.inputs)} inputs; "
            "optimisation handles models with one input tensor",
        )
    if isinstance(spec, QuantizeSpec | DistillSpec) and ONNX not in parent.formats:
        raise _refuse(
            field_name,
            f"{where} has no ONNX artifact (it has: {', '.join(parent.formats)}); "
            f"{'quantisation' if isinstance(spec, QuantizeSpec) else 'the teacher'} runs ONNX",
        )
    if isinstance(spec, PruneSpec) and not parent.architecture:
        raise _refuse(
            field_name,
            f"{where} has no TorchScript weights to prune (it has: {', '.join(parent.formats)}); "
            "only versions trained by maas have them",
        )
    if isinstance(spec, DistillSpec) and parent.classes is None:
        raise _refuse(field_name, f"{where} has no 2-D logits output to distil from")
    data = trained_data(version)
    updates: dict[str, Any] = {
        field_name: parent.ref,
        "model_name": spec.model_name or parent.model_name,
        "split_seed": spec.split_seed if spec.split_seed is not None else (data or ({}, 0))[1],
        "evaluation": _default_data(spec, "evaluation", version, "to measure the report on"),
    }
    if isinstance(spec, QuantizeSpec) and spec.method == "static":
        updates["calibration"] = _default_data(spec, "calibration", version, "to calibrate on")
    if isinstance(spec, PruneSpec) and spec.fine_tune is not None:
        updates["dataset"] = _default_data(spec, "dataset", version, "to fine-tune on")
    if isinstance(spec, DistillSpec):
        updates["dataset"] = _default_data(spec, "dataset", version, "to train the student on")
    return spec.model_copy(update=updates), parent
