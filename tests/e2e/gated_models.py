"""A model factory whose training can be held at a gate, so a test can act on a job while it
is known to be mid-training (imported by the job's worker process, as a user's factory is)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from maas.training.zoo import build_mlp


class _Gated(nn.Module):
    """An MLP whose forward waits while the file ``gate`` exists (never while exporting)."""

    def __init__(self, inner: nn.Module, gate: Path) -> None:
        super().__init__()
        self.inner = inner
        self.gate = gate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tracing = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]  # untyped
        if not torch.compiler.is_exporting() and not tracing:
            while self.gate.exists():
                time.sleep(0.01)
        result: torch.Tensor = self.inner(x)
        return result


def gated_mlp(input_shape: tuple[int, ...], num_classes: int, gate: str) -> nn.Module:
    return _Gated(
        nn.Sequential(nn.Flatten(), build_mlp(math.prod(input_shape), num_classes, (32,))),
        Path(gate),
    )
