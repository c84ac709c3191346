"""Rebuilding a registered version's network, to prune it or check a pruning request.

A version maas trained records the zoo model or factory it was built from (lineage
``model``) and, once pruned, the channel widths pruning left (lineage ``structure``). The
network is built from those, shrunk to the structure, and given the weights of the
version's TorchScript artifact — a file maas wrote, read from the store on a hash-verified
path, never a user's pickle.
"""

from __future__ import annotations

from pathlib import Path

import torch

from maas.errors import InvalidInputError
from maas.optimize.parents import Parent
from maas.optimize.prune import apply_structure
from maas.training.export import load_torchscript
from maas.training.zoo import ClassifierHead, build_model

__all__ = ["rebuild", "sample_input"]


def sample_input(parent: Parent, rows: int = 2) -> torch.Tensor:
    """Zeros shaped like ``rows`` of the parent's input (for tracing, not for checking)."""
    return torch.zeros((rows, *parent.input_shape), dtype=torch.float32)


def rebuild(parent: Parent, weights: Path | None = None) -> ClassifierHead:
    """The parent's network as a ``ClassifierHead``, with its weights when ``weights`` (its
    TorchScript artifact) is given; ``InvalidInputError`` naming ``parent`` when the
    recorded architecture cannot be rebuilt or the weights do not fit it."""
    model = parent.architecture.get("model", {})
    if parent.classes is None or not parent.input_shape:
        raise InvalidInputError(
            f"parent: version {parent.version} of {parent.model_name!r} has no fixed input "
            "shape or logits width to rebuild its network from",
            {"field": "parent"},
        )
    head = ClassifierHead(
        build_model(
            str(model.get("name", "")), parent.input_shape, parent.classes, model.get("options")
        )
    )
    structure = parent.architecture.get("structure") or {}
    if structure:
        apply_structure(head, structure, sample_input(parent))
    if weights is not None:
        try:
            head.load_state_dict(load_torchscript(weights).state_dict(), strict=True)
        except RuntimeError:
            raise InvalidInputError(
                f"parent: the weights of version {parent.version} of {parent.model_name!r} do "
                "not fit the architecture its lineage records",
                {"field": "parent"},
            ) from None
    return head.eval()
