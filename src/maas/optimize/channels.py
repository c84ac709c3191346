"""Which channels of a model can go, and the surgery that takes them out.

A *prunable group* is a producer ``Conv2d`` (groups=1) or ``Linear`` whose output
reaches exactly one consumer ``Conv2d``/``Linear`` only through channel-wise ops (batch
norm, activations, pooling, dropout, a flatten of a 1x1 map), each with a single user.
Only there does dropping a channel slice nothing but the producer's out-dim, the norms'
parameters and buffers and the consumer's in-dim, so the rest of the graph keeps its
shapes; a channel feeding an add, a cat or the output is left alone (in a ResNet only
each block's inner conv1 -> bn -> relu -> conv2 channels qualify). ``torch.fx`` finds
the groups, since only the traced graph shows who reads a tensor. The single-user rule
is about graph nodes: a module that holds no parameters and no buffers (a ReLU, a pool)
is a function, so one reused at several call sites (torchvision's ``self.relu``) is
followed at each; a module with state reached from two call sites (a shared norm or
layer) is never pruned.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeGuard, cast

import torch
import torch.fx
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F
from torch.nn.utils import parametrize

from maas.errors import InvalidInputError, describe

__all__ = ["Group", "find_groups", "get_layer", "get_norm", "shrink", "strongest"]

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


@dataclass(frozen=True, slots=True)
class Group:
    """A producer whose output channels only one consumer reads, through ``norms``."""

    producer: str
    consumer: str
    norms: tuple[str, ...]
    channels: int


def find_groups(model: nn.Module, sample: torch.Tensor, field: str) -> list[Group]:
    """Trace ``model``, run ``sample`` for shapes, and list its prunable groups.

    A model fx cannot trace, or that fails on ``sample``, is refused naming ``field``.

    >>> from maas.training.zoo import ClassifierHead, build_model
    >>> head = ClassifierHead(build_model("mlp", (64,), 10, seed=0))
    >>> groups = find_groups(head, torch.zeros(2, 64), "method")
    >>> [(g.producer, g.consumer, g.channels) for g in groups]
    [('model.1', 'model.3', 128), ('model.3', 'model.5', 64)]
    """
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


def strongest(model: nn.Module, group: Group, width: int) -> torch.Tensor:
    """Indices, in order, of the ``width`` channels with the largest L1 x |gamma| score."""
    with torch.no_grad():
        weight = get_layer(model, group.producer).weight
        score = weight.abs().flatten(1).sum(dim=1)
        for name in group.norms:
            gamma = get_norm(model, name).weight
            if gamma is not None:
                score = score * gamma.abs()
        return torch.topk(score, width).indices.sort().values


def shrink(model: nn.Module, groups: list[Group], indices: Mapping[str, torch.Tensor]) -> None:
    """Replace every layer and norm the groups touch by a copy sliced to ``indices``.

    ``indices`` live on the producer's device (the model is assumed to sit on one device);
    each copy replaces the original through its owning parent's ``setattr``.
    """
    outs = {g.producer: indices[g.producer] for g in groups}
    ins = {g.consumer: indices[g.producer] for g in groups}
    for name in outs.keys() | ins.keys():
        _replace(model, name, _sliced_layer(get_layer(model, name), outs.get(name), ins.get(name)))
    for g in groups:
        for name in g.norms:
            _replace(model, name, _sliced_norm(get_norm(model, name), indices[g.producer]))


def get_layer(model: nn.Module, name: str) -> _Layer:
    """The producer or consumer a group names."""
    return cast(_Layer, model.get_submodule(name))  # a group names only Conv2d/Linear layers


def get_norm(model: nn.Module, name: str) -> _Norm:
    """One of the batch norms a group names."""
    return cast(_Norm, model.get_submodule(name))  # and only batch norms between them


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
) -> Group | None:
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
            return Group(str(node.target), str(user.target), tuple(norms), channels)
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
    """Whether ``node`` maps channel c to channel c only, keeping dim 1 the channel dim.

    A module called from several sites qualifies only when it is stateless.
    """
    if node.op == "call_module":
        known = isinstance(module, _CHANNELWISE_MODULES) and (
            calls[node.target] == 1 or _stateless(module)
        )
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


def _stateless(module: nn.Module) -> bool:
    """A module that holds nothing is a function: reusing it shares no channels.

    Norms are excluded even without state, since a group slices (and renames) them.
    """
    return (
        not isinstance(module, _NORMS)
        and next(module.parameters(), None) is None
        and next(module.buffers(), None) is None
    )


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
