"""Fine-tuning: start a run from a registered version's weights (``init_from: NAME:VERSION``).

The weights come from the parent's TorchScript artifact, read with ``torch.jit.load`` from
the registry's own content-addressed store on a hash-verified path: a file maas wrote
when it trained the parent, never a pickle of a user's upload. A parent with no such
artifact (an uploaded ONNX, say) or whose weights do not fit the new model is refused
with an ``InvalidInputError`` naming the ``init_from`` field, before any training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Protocol

from torch import nn

from maas.errors import InvalidInputError, NotFoundError
from maas.registry.entities import ModelVersion
from maas.training.export import load_torchscript

__all__ = ["TORCHSCRIPT", "VersionReader", "load_parent_weights"]

TORCHSCRIPT: Final = "torchscript"
"""The artifact format of the TorchScript file stored beside every trained version."""


class VersionReader(Protocol):
    """The registry reads fine-tuning needs: find a version, then its verified artifact."""

    def resolve(self, name: str, ref: str | int | None = None) -> ModelVersion: ...

    def artifact_path(self, version: ModelVersion, artifact_format: str | None = None) -> Path: ...


def _refuse(message: str, **details: Any) -> InvalidInputError:
    return InvalidInputError(f"init_from: {message}", {"field": "init_from", **details})


def load_parent_weights(
    registry: VersionReader, init_from: str, model: nn.Module
) -> dict[str, Any]:
    """Load the weights of version ``init_from`` (``NAME:VERSION`` or ``NAME:ALIAS``) into
    ``model`` (a ``ClassifierHead``, the module every trained version is exported from)
    and return the lineage entry naming the parent.

    >>> load_parent_weights(registry, "digits:1", ClassifierHead(model))  # doctest: +SKIP
    {'model': 'digits', 'version': 1, 'artifact_format': 'torchscript', 'artifact_sha256': ...}
    """
    name, _, ref = init_from.partition(":")
    try:
        parent = registry.resolve(name, ref)
    except NotFoundError as error:
        raise _refuse(error.message, value=init_from) from None
    artifact = parent.artifacts.get(TORCHSCRIPT)
    if artifact is None:
        raise _refuse(
            f"version {parent.version} of {name!r} has no TorchScript artifact to start from "
            f"(it has: {', '.join(sorted(parent.artifacts) or [parent.artifact_format])}); "
            "only versions trained by maas can be fine-tuned",
            value=init_from,
        )
    loaded = load_torchscript(registry.artifact_path(parent, TORCHSCRIPT))
    try:
        model.load_state_dict(loaded.state_dict(), strict=True)
    except RuntimeError as error:
        problems = "; ".join(line.strip() for line in str(error).splitlines()[1:] if line.strip())
        raise _refuse(
            f"the weights of {name} version {parent.version} do not fit this model "
            f"(another architecture or class count?): {problems or error}",
            value=init_from,
        ) from None
    return {
        "model": name,
        "version": parent.version,
        "artifact_format": TORCHSCRIPT,
        "artifact_sha256": artifact["sha256"],
    }
