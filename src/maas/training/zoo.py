"""Model builders, one function per family, each returning a module that outputs logits.

``build_model`` is the one entry point a job spec names: ``mlp``, ``cnn``, ``resnet`` or
the user's own ``package.module:factory``. Every build runs inside ``fork_rng`` so a
seed makes the initial weights reproducible without touching the caller's RNG.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import torch
from torch import nn

from maas.errors import InvalidInputError, describe

__all__ = ["ClassifierHead", "build_mlp", "build_model", "parameter_count"]

_BUILTINS: Final = "mlp, cnn, resnet"


def build_mlp(
    in_features: int,
    num_classes: int,
    hidden: tuple[int, ...] = (128, 64),
    *,
    seed: int | None = None,
) -> nn.Module:
    """A Linear/ReLU stack; ``seed`` makes the initial weights reproducible.

    The seed is applied inside ``torch.random.fork_rng`` so building a model never
    disturbs the caller's global RNG.

    >>> build_mlp(64, 10)(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        return nn.Sequential(*layers)


class ClassifierHead(nn.Module):
    """Wraps a logits model so the served graph also answers the predicted class.

    Clients then read ``label`` instead of taking an argmax themselves.

    >>> [t.shape for t in ClassifierHead(build_mlp(64, 10))(torch.zeros(2, 64))]
    [torch.Size([2, 10]), torch.Size([2])]
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return logits, torch.argmax(logits, dim=1)


class _BasicBlock(nn.Module):
    """Two 3x3 convs plus a shortcut (a 1x1 conv when the shape changes), as in ResNet."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def _ints(options: Mapping[str, Any], key: str, default: Sequence[int]) -> list[int]:
    value = options.get(key, default)
    if (
        not isinstance(value, Sequence)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise InvalidInputError(
            f"model.options.{key}: expected a non-empty list of positive integers, got {value!r}",
            {"field": f"model.options.{key}", "value": repr(value)},
        )
    return list(value)


def _check_options(name: str, options: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidInputError(
            f"model.options: unknown option {unknown[0]!r} for {name}; "
            f"known: {', '.join(sorted(allowed)) or 'none'}",
            {"field": "model.options", "value": unknown[0]},
        )


def _image_input(
    name: str, input_shape: tuple[int, ...], min_side: int
) -> tuple[list[nn.Module], int, int, int]:
    """Leading layers and (C, H, W) for an image net.

    A 1-D input whose feature count is a perfect square (digits' 64) is read as a
    one-channel square image, so flat feature datasets can feed the conv nets as is.
    """
    prefix: list[nn.Module] = []
    shape = input_shape
    if len(shape) == 1 and math.isqrt(shape[0]) ** 2 == shape[0]:
        side = math.isqrt(shape[0])
        shape = (1, side, side)
        prefix.append(nn.Unflatten(1, shape))
    if len(shape) != 3 or min(shape[1:]) < min_side:
        raise InvalidInputError(
            f"model.input_shape: {name} needs (C, H, W) images with H, W >= {min_side} "
            f"or a square feature count, got {input_shape}",
            {"field": "model.input_shape", "value": list(input_shape)},
        )
    return prefix, shape[0], shape[1], shape[2]


def _cnn(input_shape: tuple[int, ...], num_classes: int, options: Mapping[str, Any]) -> nn.Module:
    _check_options("cnn", options, {"channels"})
    layers, width, height, side = _image_input("cnn", input_shape, 1)
    for channels in _ints(options, "channels", (32, 64)):
        layers += [nn.Conv2d(width, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU()]
        if min(height, side) >= 2:
            layers.append(nn.MaxPool2d(2))
            height, side = height // 2, side // 2
        width = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]
    return nn.Sequential(*layers)


def _resnet(
    input_shape: tuple[int, ...], num_classes: int, options: Mapping[str, Any]
) -> nn.Module:
    _check_options("resnet", options, {"widths", "blocks"})
    layers, width, _, _ = _image_input("resnet", input_shape, 8)
    widths = _ints(options, "widths", (16, 32, 64))
    (blocks,) = _ints({"blocks": [options.get("blocks", 1)]}, "blocks", (1,))
    layers += [
        nn.Conv2d(width, widths[0], 3, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(),
    ]
    width = widths[0]
    for stage, channels in enumerate(widths):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(_BasicBlock(width, channels, stride))
            width = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes)]
    return nn.Sequential(*layers)


def _mlp(input_shape: tuple[int, ...], num_classes: int, options: Mapping[str, Any]) -> nn.Module:
    _check_options("mlp", options, {"hidden"})
    hidden = tuple(_ints(options, "hidden", (128, 64)))
    return nn.Sequential(
        nn.Flatten(), *build_mlp(math.prod(input_shape), num_classes, hidden).children()
    )


_FAMILIES: Final[dict[str, Callable[[tuple[int, ...], int, Mapping[str, Any]], nn.Module]]] = {
    "mlp": _mlp,
    "cnn": _cnn,
    "resnet": _resnet,
}


def _factory(name: str) -> Callable[..., Any]:
    module_name, _, attribute = name.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInputError(
            f"model.name: cannot load factory {name!r}: {describe(exc)}",
            {"field": "model.name", "value": name},
        ) from exc
    if not callable(factory):
        raise InvalidInputError(
            f"model.name: {name!r} is not callable", {"field": "model.name", "value": name}
        )
    return factory  # type: ignore[no-any-return]  # getattr on a user module is Any


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    options: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
) -> nn.Module:
    """Build a logits model by zoo name or ``package.module:factory``, seeded if asked.

    A factory is called as ``factory(input_shape=..., num_classes=..., **options)``
    and must return an ``nn.Module``.

    >>> build_model("cnn", (64,), 10, seed=0)(torch.zeros(2, 64)).shape
    torch.Size([2, 10])
    """
    opts = dict(options or {})
    if name not in _FAMILIES and ":" not in name:
        raise InvalidInputError(
            f"model.name: unknown model {name!r}; choose {_BUILTINS} or package.module:factory",
            {"field": "model.name", "value": name},
        )
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if name in _FAMILIES:
            return _FAMILIES[name](tuple(input_shape), num_classes, opts)
        model = _factory(name)(input_shape=tuple(input_shape), num_classes=num_classes, **opts)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(
            f"model.name: factory {name!r} returned {type(model).__name__}, not a torch.nn.Module",
            {"field": "model.name", "value": name},
        )
    return model


def parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters, trainable or not (the evaluation report shows it)."""
    return sum(p.numel() for p in model.parameters())
