"""How many channels each prunable group keeps, so that enough parameters go.

``amount`` is a fraction of the model's parameters, and a channel of one group holds
more of them than a channel of another, so the widths are searched on parameter counts
computed from the groups' shapes without building anything. Two steps: the smallest
uniform channel fraction (the same for every group, each keeping at least one channel)
that removes ``amount``, by bisection over the fractions the widths allow; then each
width is rounded *up* to a multiple of ``multiple`` (a layer not wider than ``multiple``
keeps its width) and, while that removes too little, ``multiple`` channels go from one
layer at a time: the cut that reaches ``amount`` removing the fewest parameters (the
least overshoot) when one does, else the cut that frees the most parameters per channel
(so the fewest channels go). With ``multiple=1`` the rounding is a no-op and nothing is
cut, leaving the exact uniform fraction.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from fractions import Fraction

from torch import nn

from maas.errors import InvalidInputError
from maas.optimize.channels import Group, get_layer, get_norm

__all__ = ["count_parameters", "kept_widths"]


def kept_widths(
    model: nn.Module, groups: list[Group], amount: float, multiple: int
) -> dict[str, int]:
    """The channels each group's producer keeps so that at least ``amount`` of the parameters go.

    Refused (field ``amount``, naming the most that can go) when even every group at its
    narrowest width, ``multiple`` channels or its own when not wider, removes too little.

    >>> import torch
    >>> from maas.optimize.channels import find_groups
    >>> from maas.training.zoo import ClassifierHead, build_model
    >>> head = ClassifierHead(build_model("mlp", (64,), 10, seed=0))
    >>> kept_widths(head, find_groups(head, torch.zeros(2, 64), "method"), 0.5, 8)
    {'model.1': 80, 'model.3': 32}
    """
    before = count_parameters(model)
    least = {g.producer: multiple if g.channels > multiple else g.channels for g in groups}
    removable = before - _count(model, groups, least)
    if removable < amount * before:
        raise _unreachable(amount, math.floor(removable / before * 100) / 100, multiple)
    return _on_multiples(model, groups, _uniform(model, groups, amount), multiple, amount)


def count_parameters(model: nn.Module) -> int:
    """The scalar parameters ``model`` holds, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def _unreachable(amount: float, most: float, multiple: int) -> InvalidInputError:
    under = f" with widths in multiples of {multiple}" if multiple > 1 else ""
    other = ", a smaller channel multiple" if multiple > 1 else ""
    return InvalidInputError(
        f"amount: channel pruning can remove at most {most:.2f} of this model's "
        f"parameters{under} (asked {amount:g}); ask less{other} or use unstructured pruning",
        {"field": "amount", "value": amount, "max": most, "multiple": multiple},
    )


def _reaches(model: nn.Module, groups: list[Group], keep: Mapping[str, int], amount: float) -> bool:
    before = count_parameters(model)
    return before - _count(model, groups, keep) >= amount * before


def _uniform(model: nn.Module, groups: list[Group], amount: float) -> dict[str, int]:
    """The widths of the smallest uniform channel fraction that removes ``amount``.

    The caller has checked that some widths reach it, so one channel a group does.
    """
    candidates = sorted({Fraction(j, g.channels) for g in groups for j in range(1, g.channels)})
    at = bisect.bisect_left(
        candidates, True, key=lambda f: _reaches(model, groups, _keep(groups, f), amount)
    )
    return _keep(groups, candidates[at])


def _keep(groups: list[Group], fraction: Fraction) -> dict[str, int]:
    """Channels each group keeps when ``fraction`` of them go (at least one stays)."""
    return {
        g.producer: g.channels - min(g.channels - 1, math.floor(fraction * g.channels))
        for g in groups
    }


def _on_multiples(
    model: nn.Module, groups: list[Group], keep: Mapping[str, int], multiple: int, amount: float
) -> dict[str, int]:
    """``keep`` rounded up to multiples, then cut ``multiple`` at a time until ``amount``.

    The caller has checked that every group at its narrowest width reaches ``amount``,
    so the loop ends.
    """
    widths = {
        g.producer: min(g.channels, -(-keep[g.producer] // multiple) * multiple) for g in groups
    }
    while not _reaches(model, groups, widths, amount):
        now = _count(model, groups, widths)
        cuts = {
            name: {**widths, name: lower}
            for name, width in widths.items()
            if (lower := (width - 1) // multiple * multiple) >= multiple
        }
        freed = {name: now - _count(model, groups, cut) for name, cut in cuts.items()}
        reaching = [name for name, cut in cuts.items() if _reaches(model, groups, cut, amount)]
        if reaching:
            return cuts[min(reaching, key=freed.__getitem__)]
        best = max(cuts, key=lambda n: Fraction(freed[n], widths[n] - cuts[n][n]))
        widths = cuts[best]
    return widths


def _count(model: nn.Module, groups: list[Group], keep: Mapping[str, int]) -> int:
    """The parameter count ``model`` would have after keeping ``keep`` channels."""
    outs = {g.producer: keep[g.producer] for g in groups}
    ins = {g.consumer: keep[g.producer] for g in groups}
    total = count_parameters(model)
    for name in outs.keys() | ins.keys():
        layer = get_layer(model, name)
        out_now, in_now = layer.weight.shape[0], layer.weight.shape[1]
        out_new, in_new = outs.get(name, out_now), ins.get(name, in_now)
        per_pair = layer.weight.numel() // (out_now * in_now)
        has_bias = layer.bias is not None
        total -= per_pair * out_now * in_now + (out_now if has_bias else 0)
        total += per_pair * out_new * in_new + (out_new if has_bias else 0)
    for g in groups:
        for norm in g.norms:
            per_channel = sum(p.numel() for p in get_norm(model, norm).parameters()) // g.channels
            total -= per_channel * (g.channels - keep[g.producer])
    return total
