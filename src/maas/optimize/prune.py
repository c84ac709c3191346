"""Pruning with torch: channel pruning that really shrinks a model, or magnitude zeroing.

Structured pruning removes whole channels where only one layer reads them
(``maas.optimize.channels`` finds those groups with ``torch.fx`` and slices the layers
and norms), so the exported graph is smaller and nothing else changes shape.

``amount`` is a fraction of the model's *parameters*, not of its channels
(``maas.optimize.widths`` searches the widths). Every kept width is a multiple of
``multiple`` (default 16) or the layer's original width, because ONNX Runtime's CPU
convolutions work on blocks of channels (MLAS's NCHWc block: 8 with AVX2, 16 with
AVX-512) and an odd width falls off that path. A digits CNN pruned 32/64 -> 22/44 ran
1.28x slower than unpruned at batch 1 and 2.5x at batch 32 on an AVX-512 EPYC; 24/40
(multiple 8) still 1.17x and 1.32x there, 16/48 (multiple 16) 0.88x and 0.64x: hence
16, which suits AVX2 too. ``multiple=1`` is the exact uniform fraction.

Unstructured pruning zeroes the smallest weights globally; the parameter count stays, the
non-zero count drops (a win only for sparse kernels or compression).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

import torch
from torch import nn
from torch.nn.utils import prune

from maas.errors import InvalidInputError
from maas.optimize.channels import find_groups, get_layer, shrink, strongest
from maas.optimize.widths import count_parameters, kept_widths

__all__ = ["PruningResult", "apply_structure", "prune_structured", "prune_unstructured"]

_UNSTRUCTURED: Final = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True, slots=True)
class PruningResult:
    """What a pruning run did, for the version's report and for rebuilding it.

    ``structure`` maps each pruned producer (a name from ``model.named_modules()``) to the
    channels or features it kept; ``apply_structure`` rebuilds the shape from it.
    """

    method: str
    amount: float
    structure: dict[str, int]
    layers: list[dict[str, Any]]
    parameters_before: int
    parameters_after: int
    nonzero_before: int
    nonzero_after: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prune_structured(
    model: nn.Module, amount: float, sample: torch.Tensor, *, multiple: int = 16
) -> PruningResult:
    """Remove channels in place until at least ``amount`` of the parameters are gone.

    Each group keeps the channels with the largest L1 weight norm (times |gamma| of a
    following batch norm), in their original order. Each kept width is a multiple of
    ``multiple`` (at least ``multiple``) or, for a layer left alone, its original width;
    a layer not wider than ``multiple`` is never cut. Of the widths that remove
    ``amount``, the search (``maas.optimize.widths``) picks ones that overshoot little.

    >>> from maas.training.zoo import ClassifierHead, build_model
    >>> head = ClassifierHead(build_model("mlp", (64,), 10, seed=0))
    >>> prune_structured(head, 0.5, torch.zeros(2, 64)).structure
    {'model.1': 80, 'model.3': 32}
    """
    _check_amount(amount)
    _check_multiple(multiple)
    groups = find_groups(model, sample, "method")
    if not groups:
        raise InvalidInputError(
            "method: structured pruning found no prunable channels: no Conv2d/Linear output "
            "reaches exactly one Conv2d/Linear through channel-wise ops only",
            {"field": "method"},
        )
    before, nonzero_before = count_parameters(model), _nonzero(model)
    keep = kept_widths(model, groups, amount, multiple)
    indices = {g.producer: strongest(model, g, keep[g.producer]) for g in groups}
    shrink(model, groups, indices)
    pruned = [g for g in groups if keep[g.producer] < g.channels]
    return PruningResult(
        method="structured",
        amount=amount,
        structure={g.producer: keep[g.producer] for g in pruned},
        layers=[
            {"layer": g.producer, "before": g.channels, "after": keep[g.producer]} for g in pruned
        ],
        parameters_before=before,
        parameters_after=count_parameters(model),
        nonzero_before=nonzero_before,
        nonzero_after=_nonzero(model),
    )


def apply_structure(model: nn.Module, structure: Mapping[str, int], sample: torch.Tensor) -> None:
    """Shrink a freshly built ``model`` in place to the widths a pruning run recorded.

    The first channels are kept; load the pruned weights afterwards with
    ``load_state_dict(strict=True)``.

    >>> apply_structure(fresh, result.structure, sample)  # doctest: +SKIP
    >>> fresh.load_state_dict(pruned.state_dict(), strict=True)  # doctest: +SKIP
    """
    if not structure:
        return
    groups = {g.producer: g for g in find_groups(model, sample, "structure")}
    for name, width in structure.items():
        group = groups.get(name)
        if group is None:
            known = ", ".join(groups) or "none"
            raise InvalidInputError(
                f"structure: {name!r} is not a prunable layer of this model (prunable: {known})",
                {"field": "structure", "value": name},
            )
        if (
            isinstance(width, bool)
            or not isinstance(width, int)
            or not 1 <= width <= group.channels
        ):
            raise InvalidInputError(
                f"structure: {name!r} has {group.channels} channels, cannot keep {width!r}",
                {"field": "structure", "value": name},
            )
    chosen = [groups[name] for name in structure]
    first = {
        g.producer: torch.arange(
            structure[g.producer], device=get_layer(model, g.producer).weight.device
        )
        for g in chosen
    }
    shrink(model, chosen, first)


def prune_unstructured(model: nn.Module, amount: float) -> PruningResult:
    """Zero the ``amount`` smallest-magnitude Conv/Linear weights, counted over all of them.

    >>> from maas.training.zoo import ClassifierHead, build_model
    >>> head = ClassifierHead(build_model("mlp", (64,), 10, seed=0))
    >>> prune_unstructured(head, 0.5).layers[0]
    {'layer': 'model.1', 'sparsity': 0.4258}
    """
    _check_amount(amount)
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, _UNSTRUCTURED) and isinstance(module.weight, nn.Parameter)
    ]
    if not targets:
        raise InvalidInputError(
            "method: unstructured pruning needs Conv or Linear weights; this model has none",
            {"field": "method"},
        )
    before, nonzero_before = count_parameters(model), _nonzero(model)
    prune.global_unstructured(
        [(module, "weight") for _, module in targets],
        pruning_method=prune.L1Unstructured,
        amount=amount,
    )
    for _, module in targets:
        prune.remove(module, "weight")  # type: ignore[no-untyped-call]  # unannotated in torch
    layers = [
        {"layer": name, "sparsity": round(float((module.weight == 0).float().mean()), 4)}
        for name, module in targets
    ]
    return PruningResult(
        method="unstructured",
        amount=amount,
        structure={},
        layers=layers,
        parameters_before=before,
        parameters_after=count_parameters(model),
        nonzero_before=nonzero_before,
        nonzero_after=_nonzero(model),
    )


def _check_amount(amount: float) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < 1:
        raise InvalidInputError(
            f"amount: must be a fraction between 0 and 1 (both excluded), got {amount!r}",
            {"field": "amount", "value": repr(amount)},
        )


def _check_multiple(multiple: int) -> None:
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise InvalidInputError(
            f"multiple: must be a positive integer, got {multiple!r}",
            {"field": "multiple", "value": repr(multiple)},
        )


def _nonzero(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())
