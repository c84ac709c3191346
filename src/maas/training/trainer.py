"""The training loop: Adam on cross-entropy, deterministic for a given seed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from maas.errors import InvalidInputError
from maas.training.datasets import Dataset

__all__ = ["EpochReport", "TrainConfig", "predict_logits", "train"]


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyper-parameters; every field is recorded in the version's lineage."""

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    hidden: tuple[int, ...] = (128, 64)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InvalidInputError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise InvalidInputError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise InvalidInputError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not self.hidden or any(size < 1 for size in self.hidden):
            raise InvalidInputError(f"hidden sizes must be >= 1, got {self.hidden}")


@dataclass(frozen=True, slots=True)
class EpochReport:
    """Progress after one epoch, handed to ``on_epoch`` so callers can show it live."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float


def predict_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's logits for ``x`` in eval mode, without tracking gradients."""
    model.eval()
    with torch.no_grad():
        # A copy: ``x`` may be read-only, which torch.from_numpy warns about.
        logits: np.ndarray = model(torch.from_numpy(np.array(x))).numpy()
    return logits


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> list[EpochReport]:
    """Train ``model`` in place on ``dataset``'s train split; report each epoch.

    Shuffling draws from a generator seeded with ``config.seed``; the global torch RNG
    is seeded inside ``fork_rng`` so the caller's RNG state is left as it was.
    Thread count is left alone: determinism here does not need one thread.
    """
    # Copies: the dataset's arrays are read-only and torch warns on non-writable memory.
    x_val = torch.from_numpy(np.array(dataset.x_val))
    y_val = torch.from_numpy(np.array(dataset.y_val))
    loader = DataLoader(
        TensorDataset(
            torch.from_numpy(np.array(dataset.x_train)), torch.from_numpy(np.array(dataset.y_train))
        ),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    optimiser = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    loss_fn = nn.CrossEntropyLoss()
    reports: list[EpochReport] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            started = time.monotonic()
            model.train()
            total_loss, rows = 0.0, 0
            for features, labels in loader:
                optimiser.zero_grad()
                loss = loss_fn(model(features), labels)
                loss.backward()
                optimiser.step()
                total_loss += loss.item() * len(labels)
                rows += len(labels)
            model.eval()
            with torch.no_grad():
                val_logits = model(x_val)
                val_loss = float(loss_fn(val_logits, y_val))
                val_accuracy = float((val_logits.argmax(dim=1) == y_val).float().mean())
            report = EpochReport(
                epoch=epoch,
                epochs=config.epochs,
                train_loss=total_loss / rows,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                seconds=time.monotonic() - started,
            )
            reports.append(report)
            if on_epoch is not None:
                on_epoch(report)
    model.eval()
    return reports
