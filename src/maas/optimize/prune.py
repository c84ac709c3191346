"""Pruning with torch: channel pruning that really shrinks a model, or magnitude zeroing.

Structured pruning finds *prunable groups* with ``torch.fx``: a producer ``Conv2d``
(groups=1) or ``Linear`` whose output reaches exactly one consumer ``Conv2d``/``Linear``
only through channel-wise ops (batch norm, activations, pooling, dropout, a flatten of a
1x1 map), each with a single user. Removing a channel there slices the producer's
out-dim, the norms' parameters and buffers, and the consumer's in-dim, so the exported
graph is smaller and nothing else changes shape. A channel feeding an add, a cat or the
output is left alone: in a ResNet only each block's inner conv1 -> bn -> relu -> conv2
channels qualify.

``amount`` is a fraction of the model's *parameters*, not of its channels: one uniform
channel fraction is applied to every group, the smallest one that removes enough, found
by bisection over parameter counts computed without building anything.

Unstructured pruning zeroes the smallest weights globally; the parameter count stays, the
non-zero count drops (a win only for sparse kernels or compression).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Final, TypeAlias, TypeGuard, cast

import torch
import torch.fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F
from torch.nn.utils import parametrize, prune

from maas.errors import InvalidInputError, describe

__all__ = ["PruningResult", "apply_structure", "prune_structured", "prune_unstructured"]

_Layer: TypeAlias = nn.Conv2d | nn.Linear
_Norm: TypeAlias = nn.BatchNorm1d | nn.BatchNorm2d
_LAYERS: Final = (nn.Conv2d, nn.Linear)
_NORMS: Final = (nn.BatchNorm1d, nn.BatchNorm2d)
_CHANNELWISE_MODULES: Final = (
    *_NORMS,
    *(nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish),
    *(nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Softplus, nn.Identity),
    *(nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout),
    *(nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten),
)
_CHANNELWISE_FUNCTIONS: Final[frozenset[Any]] = frozenset(
    {torch.relu, torch.sigmoid, torch.tanh, torch.flatten, F.relu, F.relu6, F.leaky_relu}
    | {F.elu, F.gelu, F.silu, F.mish, F.sigmoid, F.tanh, F.hardswish, F.hardtanh, F.dropout}
    | {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d}
)
_CHANNELWISE_METHODS: Final = frozenset({"relu", "sigmoid", "tanh", "flatten"})
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


@dataclass(frozen=True, slots=True)
class _Group:
    """A producer whose output channels only one consumer reads, through ``norms``."""

    producer: str
    consumer: str
    norms: tuple[str, ...]
    channels: int


def prune_structured(model: nn.Module, amount: float, sample: torch.Tensor) -> PruningResult:
    """Remove channels in place until at least ``amount`` of the parameters are gone.

    Each group keeps the channels with the largest L1 weight norm (times |gamma| of a
    following batch norm), in their original order.

    >>> from maas.training.zoo import ClassifierHead, build_model
    >>> head = ClassifierHead(build_model("mlp", (64,), 10, seed=0))
    >>> prune_structured(head, 0.5, torch.zeros(2, 64)).structure
    {'model.1': 78, 'model.3': 39}
    """
    _check_amount(amount)
    groups = _groups(model, sample, "method")
    if not groups:
        raise InvalidInputError(
            "method: structured pruning found no prunable channels: no Conv2d/Linear output "
            "reaches exactly one Conv2d/Linear through channel-wise ops only",
            {"field": "method"},
        )
    before, nonzero_before = _parameters(model), _nonzero(model)
    candidates = sorted({Fraction(j, g.channels) for g in groups for j in range(1, g.channels)})

    def reaches(fraction: Fraction) -> bool:
        return before - _count(model, groups, _keep(groups, fraction)) >= amount * before

    at = bisect.bisect_left(candidates, True, key=reaches)
    if at == len(candidates):
        least = _count(model, groups, dict.fromkeys((g.producer for g in groups), 1))
        most = math.floor((before - least) / before * 100) / 100
        raise InvalidInputError(
            f"amount: channel pruning can remove at most {most:.2f} of this model's "
            f"parameters (asked {amount:g}); ask less or use unstructured pruning",
            {"field": "amount", "value": amount, "max": most},
        )
    keep = _keep(groups, candidates[at])
    indices = {g.producer: _strongest(model, g, keep[g.producer]) for g in groups}
    _shrink(model, groups, indices)
    pruned = [g for g in groups if keep[g.producer] < g.channels]
    return PruningResult(
        method="structured",
        amount=amount,
        structure={g.producer: keep[g.producer] for g in pruned},
        layers=[
            {"layer": g.producer, "before": g.channels, "after": keep[g.producer]} for g in pruned
        ],
        parameters_before=before,
        parameters_after=_parameters(model),
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
    groups = {g.producer: g for g in _groups(model, sample, "structure")}
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
            structure[g.producer], device=_get_layer(model, g.producer).weight.device
        )
        for g in chosen
    }
    _shrink(model, chosen, first)


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
    before, nonzero_before = _parameters(model), _nonzero(model)
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
        parameters_after=_parameters(model),
        nonzero_before=nonzero_before,
        nonzero_after=_nonzero(model),
    )


def _check_amount(amount: float) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not 0 < amount < 1:
        raise InvalidInputError(
            f"amount: must be a fraction between 0 and 1 (both excluded), got {amount!r}",
            {"field": "amount", "value": repr(amount)},
        )


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _nonzero(model: nn.Module) -> int:
    return sum(int(torch.count_nonzero(p)) for p in model.parameters())


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad while the sample runs, so batch-norm statistics stay put."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _groups(model: nn.Module, sample: torch.Tensor, field: str) -> list[_Group]:
    """Trace ``model``, run ``sample`` for shapes, and list its prunable groups."""
    try:
        graph = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types on untraceable Python
        raise InvalidInputError(
            f"{field}: structured pruning needs a model torch.fx can trace: {describe(exc)}",
            {"field": field},
        ) from exc
    try:
        with _evaluating(model):
            ShapeProp(graph).propagate(sample)
    except Exception as exc:  # the model's own error on the sample rows
        raise InvalidInputError(
            f"{field}: the traced model failed on the sample rows: {describe(exc)}",
            {"field": field},
        ) from exc
    calls = Counter(n.target for n in graph.graph.nodes if n.op == "call_module")
    modules = dict(model.named_modules())
    found = []
    for node in graph.graph.nodes:
        if node.op == "call_module" and calls[node.target] == 1:
            group = _group_from(node, modules, calls)
            if group is not None:
                found.append(group)
    return found


def _layer(module: nn.Module | None) -> TypeGuard[_Layer]:
    return (
        isinstance(module, _LAYERS)
        and not parametrize.is_parametrized(module)
        and (not isinstance(module, nn.Conv2d) or module.groups == 1)
    )


def _shape(node: torch.fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return None if shape is None else tuple(shape)


def _group_from(
    node: torch.fx.Node, modules: Mapping[str, nn.Module], calls: Counter[Any]
) -> _Group | None:
    """The group ``node`` produces, or None when its channels reach anything else."""
    producer = modules.get(str(node.target))
    shape = _shape(node)
    if not _layer(producer) or shape is None or len(shape) != _rank(producer):
        return None
    channels, norms, current = shape[1], list[str](), node
    while len(current.users) == 1:
        (user,) = current.users
        if user.all_input_nodes != [current]:
            return None
        target = modules.get(str(user.target)) if user.op == "call_module" else None
        if _layer(target) and calls[user.target] == 1:
            width = target.in_channels if isinstance(target, nn.Conv2d) else target.in_features
            if width != channels or len(_shape(current) or ()) != _rank(target):
                return None
            return _Group(str(node.target), str(user.target), tuple(norms), channels)
        if not _channelwise(user, target, calls, channels):
            return None
        if isinstance(target, _NORMS):
            norms.append(str(user.target))
        current = user
    return None


def _rank(layer: nn.Module | None) -> int:
    """The rank a layer's output has when its channels are dim 1 (batched)."""
    return 4 if isinstance(layer, nn.Conv2d) else 2


def _channelwise(
    node: torch.fx.Node, module: nn.Module | None, calls: Counter[Any], channels: int
) -> bool:
    """Whether ``node`` maps channel c to channel c only, keeping dim 1 the channel dim."""
    if node.op == "call_module":
        known = isinstance(module, _CHANNELWISE_MODULES) and calls[node.target] == 1
        if isinstance(module, _NORMS) and module.num_features != channels:
            return False
    elif node.op == "call_function":
        known = node.target in _CHANNELWISE_FUNCTIONS
    else:
        known = node.op == "call_method" and node.target in _CHANNELWISE_METHODS
    (source,) = node.all_input_nodes
    before, after = _shape(source), _shape(node)
    if not known or before is None or after is None or before[:2] != after[:2]:
        return False
    flattened = len(after) == 2 and math.prod(before[2:]) == 1
    return len(after) == len(before) or flattened


def _keep(groups: list[_Group], fraction: Fraction) -> dict[str, int]:
    """Channels each group keeps when ``fraction`` of them go (at least one stays)."""
    return {
        g.producer: g.channels - min(g.channels - 1, math.floor(fraction * g.channels))
        for g in groups
    }


def _count(model: nn.Module, groups: list[_Group], keep: Mapping[str, int]) -> int:
    """The parameter count ``model`` would have after keeping ``keep`` channels."""
    outs = {g.producer: keep[g.producer] for g in groups}
    ins = {g.consumer: keep[g.producer] for g in groups}
    total = _parameters(model)
    for name in outs.keys() | ins.keys():
        layer = _get_layer(model, name)
        out_now, in_now = layer.weight.shape[0], layer.weight.shape[1]
        out_new, in_new = outs.get(name, out_now), ins.get(name, in_now)
        per_pair = layer.weight.numel() // (out_now * in_now)
        has_bias = layer.bias is not None
        total -= per_pair * out_now * in_now + (out_now if has_bias else 0)
        total += per_pair * out_new * in_new + (out_new if has_bias else 0)
    for g in groups:
        for norm in g.norms:
            per_channel = sum(p.numel() for p in _get_norm(model, norm).parameters()) // g.channels
            total -= per_channel * (g.channels - keep[g.producer])
    return total


def _strongest(model: nn.Module, group: _Group, width: int) -> torch.Tensor:
    """Indices, in order, of the ``width`` channels with the largest L1 x |gamma| score."""
    with torch.no_grad():
        weight = _get_layer(model, group.producer).weight
        score = weight.abs().flatten(1).sum(dim=1)
        for name in group.norms:
            gamma = _get_norm(model, name).weight
            if gamma is not None:
                score = score * gamma.abs()
        return torch.topk(score, width).indices.sort().values


def _shrink(model: nn.Module, groups: list[_Group], indices: Mapping[str, torch.Tensor]) -> None:
    """Replace every layer and norm the groups touch by a copy sliced to ``indices``.

    ``indices`` live on the producer's device (the model is assumed to sit on one device).
    """
    outs = {g.producer: indices[g.producer] for g in groups}
    ins = {g.consumer: indices[g.producer] for g in groups}
    for name in outs.keys() | ins.keys():
        _replace(model, name, _sliced_layer(_get_layer(model, name), outs.get(name), ins.get(name)))
    for g in groups:
        for name in g.norms:
            _replace(model, name, _sliced_norm(_get_norm(model, name), indices[g.producer]))


def _get_layer(model: nn.Module, name: str) -> _Layer:
    return cast(_Layer, model.get_submodule(name))  # a group names only Conv2d/Linear layers


def _get_norm(model: nn.Module, name: str) -> _Norm:
    return cast(_Norm, model.get_submodule(name))  # and only batch norms between them


def _sliced_layer(layer: _Layer, outs: torch.Tensor | None, ins: torch.Tensor | None) -> _Layer:
    new = copy.deepcopy(layer)
    with torch.no_grad():
        weight = layer.weight.detach()
        if outs is not None:
            weight = weight.index_select(0, outs)
            if layer.bias is not None:
                new.bias = _parameter(layer.bias, layer.bias.index_select(0, outs))
        if ins is not None:
            weight = weight.index_select(1, ins)
        new.weight = _parameter(layer.weight, weight)
    out_width, in_width = weight.shape[0], weight.shape[1]
    if isinstance(new, nn.Conv2d):
        new.out_channels, new.in_channels = out_width, in_width
    else:
        new.out_features, new.in_features = out_width, in_width
    return new


def _sliced_norm(norm: _Norm, keep: torch.Tensor) -> _Norm:
    new = copy.deepcopy(norm)
    with torch.no_grad():
        if norm.weight is not None and norm.bias is not None:
            new.weight = _parameter(norm.weight, norm.weight.index_select(0, keep))
            new.bias = _parameter(norm.bias, norm.bias.index_select(0, keep))
        if norm.running_mean is not None and norm.running_var is not None:
            new.running_mean = norm.running_mean.index_select(0, keep).clone()
            new.running_var = norm.running_var.index_select(0, keep).clone()
    new.num_features = len(keep)
    return new


def _parameter(old: torch.Tensor, value: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad)


def _replace(model: nn.Module, qualified: str, new: nn.Module) -> None:
    parent, _, child = qualified.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)
