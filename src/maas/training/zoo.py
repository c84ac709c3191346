"""Model builders, one function per family, each returning a module that outputs logits."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassifierHead", "build_mlp"]


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
