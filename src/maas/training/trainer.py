"""The training loop: cross-entropy with a chosen optimiser, deterministic for a given seed.

Every RNG the loop draws from (shuffling, augmentation, the global torch RNG used by
dropout) is seeded from ``config.seed`` and saved in each checkpoint, so a run resumed
from epoch k's checkpoint ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from maas.errors import InvalidInputError
from maas.training.datasets import Dataset

__all__ = [
    "EpochReport",
    "TrainConfig",
    "TrainingLoss",
    "predict_logits",
    "refuse_failed",
    "resolve_device",
    "train",
]

_CHOICES: Final[dict[str, tuple[Any, ...]]] = {
    "optimizer": ("adam", "sgd", "adamw"),
    "schedule": ("none", "step", "cosine"),
    "early_stopping_metric": (None, "val_loss", "val_accuracy"),
    "device": ("auto", "cpu", "cuda"),
}
_EVAL_ROWS: Final = 1024

TrainingLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(logits, labels, batch_indices)`` -> a scalar to minimise.

``batch_indices`` are the batch's rows of ``dataset.x_train`` (on the training device),
so a loss can look up per-row targets, as distillation does with a teacher's logits.
"""


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Hyper-parameters; every field is recorded in the version's lineage.

    ``augment_flip``/``augment_crop`` (random horizontal flip, random crop after
    ``augment_crop`` pixels of zero padding) apply to (N, C, H, W) tensors only.
    """

    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    hidden: tuple[int, ...] = (128, 64)
    optimizer: str = "adam"
    momentum: float = 0.9
    schedule: str = "none"
    step_size: int = 10
    gamma: float = 0.1
    early_stopping_metric: str | None = None
    early_stopping_patience: int = 5
    device: str = "auto"
    augment_flip: bool = False
    augment_crop: int = 0

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("epochs", self.epochs >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("hidden", bool(self.hidden) and min(self.hidden) >= 1, "sizes must be >= 1"),
            ("momentum", 0 <= self.momentum < 1, "must be in [0, 1)"),
            ("step_size", self.step_size >= 1, "must be >= 1"),
            ("gamma", 0 < self.gamma <= 1, "must be in (0, 1]"),
            ("early_stopping_patience", self.early_stopping_patience >= 1, "must be >= 1"),
            ("augment_crop", self.augment_crop >= 0, "must be >= 0"),
        ]
        checks += [
            (name, getattr(self, name) in choices, f"must be one of {list(choices)}")
            for name, choices in _CHOICES.items()
        ]
        checks.append(("device", self.device != "cuda" or torch.cuda.is_available(), "has no GPU"))
        refuse_failed(self, checks)

    def resolved_device(self) -> torch.device:
        return resolve_device(self.device)


def refuse_failed(settings: object, checks: list[tuple[str, bool, str]]) -> None:
    """``InvalidInputError`` for the first ``(field, ok, message)`` of ``settings`` not ok."""
    for name, ok, message in checks:
        if not ok:
            value = getattr(settings, name)
            raise InvalidInputError(
                f"{name} {message}, got {value!r}", {"field": name, "value": value}
            )


def resolve_device(device: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU."""
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    return torch.device("cuda" if cuda else "cpu")


@dataclass(frozen=True, slots=True)
class EpochReport:
    """Progress after one epoch, handed to ``on_epoch`` so callers can show it live."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    seconds: float


def _model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def predict_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's logits for ``x`` in eval mode, without tracking gradients."""
    model.eval()
    with torch.no_grad():
        # A copy: ``x`` may be read-only, which torch.from_numpy warns about.
        inputs = torch.from_numpy(np.array(x)).to(_model_device(model))
        logits: np.ndarray = model(inputs).cpu().numpy()
    return logits


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    lr, decay = config.learning_rate, config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=config.momentum, weight_decay=decay
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=decay)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=decay)


def _scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


def _augment(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random flip and padded crop on the batch's device; a no-op for feature vectors."""
    if x.dim() != 4:
        return x
    n, _, height, width = x.shape
    if config.augment_flip:
        flip = torch.rand(n, generator=generator, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = config.augment_crop
    if pad:
        padded = nn.functional.pad(x, (pad, pad, pad, pad))
        dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=x.device)
        rows = dy[:, None] + torch.arange(height, device=x.device)
        cols = dx[:, None] + torch.arange(width, device=x.device)
        index = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indices around a slice put the batch axes first: (N, H, W, C).
        x = padded[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return x


def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module
) -> tuple[float, float]:
    """Mean loss and accuracy, in chunks so large image sets fit in memory."""
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), _EVAL_ROWS):
            logits = model(x[start : start + _EVAL_ROWS])
            labels = y[start : start + _EVAL_ROWS]
            total_loss += float(loss_fn(logits, labels)) * len(labels)
            correct += int((logits.argmax(dim=1) == labels).sum())
    return total_loss / len(y), correct / len(y)


def _cpu_copy(value: Any) -> Any:
    """A detached CPU copy, so a checkpoint is not changed by later training steps."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _cpu_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_cpu_copy(v) for v in value)
    return value


@contextmanager
def _deterministic_cudnn() -> Iterator[None]:
    """cuDNN's default conv kernels vary run to run; a seed must fix the weights."""
    cudnn = torch.backends.cudnn
    saved = cudnn.deterministic, cudnn.benchmark
    cudnn.deterministic, cudnn.benchmark = True, False
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    # A copy: the dataset's arrays are read-only and torch warns on non-writable memory.
    return torch.from_numpy(np.array(array)).to(device)


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
    *,
    on_step: Callable[[int, int, int], None] | None = None,
    checkpoint: Callable[[int, dict[str, Any]], None] | None = None,
    resume_from: dict[str, Any] | None = None,
    loss: TrainingLoss | None = None,
) -> list[EpochReport]:
    """Train ``model`` in place on ``dataset``'s train split; report each epoch.

    Inputs may be 2-D features or (N, C, H, W) images. ``on_step(epoch, step, steps)``
    runs after every optimiser step (a job reports progress and stops there when
    cancelled, by raising). ``checkpoint(epoch, state)``
    gets, after every epoch, a CPU copy of everything needed to continue; pass that
    state as ``resume_from`` to carry on at the next epoch (the returned history then
    includes the earlier epochs). With ``early_stopping_metric`` set, training stops after
    ``early_stopping_patience`` epochs without improvement and the best weights are
    restored. ``loss`` replaces cross-entropy as the training objective (and so as
    ``train_loss``); ``val_loss`` stays cross-entropy, comparable across objectives.
    The model ends on the CPU, ready for export; the caller's RNG is untouched.

    >>> train(model, load_digits(), TrainConfig(epochs=2))  # doctest: +SKIP
    [EpochReport(epoch=1, ...), EpochReport(epoch=2, ...)]
    """
    device = config.resolved_device()
    model.to(device)
    x_train, y_train = _tensor(dataset.x_train, device), _tensor(dataset.y_train, device)
    x_val, y_val = _tensor(dataset.x_val, device), _tensor(dataset.y_val, device)
    optimizer = _optimizer(model, config)
    scheduler = _scheduler(optimizer, config)
    shuffle = torch.Generator().manual_seed(config.seed)
    augment = torch.Generator(device=device).manual_seed(config.seed + 1)
    loss_fn = nn.CrossEntropyLoss()
    objective = loss if loss is not None else lambda logits, labels, _: loss_fn(logits, labels)
    sign = -1.0 if config.early_stopping_metric == "val_loss" else 1.0
    best: dict[str, Any] = {"value": -float("inf"), "epoch": 0, "weights": None, "waited": 0}
    reports: list[EpochReport] = []
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), _deterministic_cudnn():
        torch.manual_seed(config.seed)
        if resume_from is not None:
            model.load_state_dict(resume_from["model"])
            optimizer.load_state_dict(resume_from["optimizer"])
            if scheduler is not None and resume_from["scheduler"] is not None:
                scheduler.load_state_dict(resume_from["scheduler"])
            rng = resume_from["rng"]
            shuffle.set_state(rng["shuffle"])
            augment.set_state(rng["augment"])
            torch.set_rng_state(rng["torch"])
            if device.type == "cuda" and rng.get("cuda") is not None:
                torch.cuda.set_rng_state(rng["cuda"], device)
            best = dict(resume_from["best"])
            reports = [EpochReport(**r) for r in resume_from["history"]]
        for epoch in range(len(reports) + 1, config.epochs + 1):  # history: one per epoch
            if config.early_stopping_metric and best["waited"] >= config.early_stopping_patience:
                break
            started, total_loss = time.monotonic(), 0.0
            model.train()
            order = torch.randperm(len(y_train), generator=shuffle).to(device)
            steps = -(-len(order) // config.batch_size)
            for step, start in enumerate(range(0, len(order), config.batch_size), start=1):
                batch = order[start : start + config.batch_size]
                features = _augment(x_train[batch], config, augment)
                optimizer.zero_grad()
                batch_loss = objective(model(features), y_train[batch], batch)
                batch_loss.backward()
                optimizer.step()
                total_loss += batch_loss.item() * len(batch)
                if on_step is not None:
                    on_step(epoch, step, steps)
            if scheduler is not None:
                scheduler.step()
            val_loss, val_accuracy = _evaluate(model, x_val, y_val, loss_fn)
            train_loss, seconds = total_loss / len(order), time.monotonic() - started
            report = EpochReport(epoch, config.epochs, train_loss, val_loss, val_accuracy, seconds)
            reports.append(report)
            if config.early_stopping_metric:
                value = sign * getattr(report, config.early_stopping_metric)
                if value > best["value"]:
                    weights = _cpu_copy(model.state_dict())
                    best = {"value": value, "epoch": epoch, "weights": weights, "waited": 0}
                else:
                    best["waited"] += 1
            if on_epoch is not None:
                on_epoch(report)
            if checkpoint is not None:
                cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                state = {
                    "epoch": epoch,
                    "model": _cpu_copy(model.state_dict()),
                    "optimizer": _cpu_copy(optimizer.state_dict()),
                    "scheduler": None if scheduler is None else _cpu_copy(scheduler.state_dict()),
                    "rng": {
                        "shuffle": shuffle.get_state(),
                        "augment": augment.get_state().cpu(),
                        "torch": torch.get_rng_state(),
                        "cuda": cuda_rng,
                    },
                    "best": _cpu_copy(best),
                    "history": [asdict(r) for r in reports],
                    "config": asdict(config),
                }
                checkpoint(epoch, state)
    if best["weights"] is not None:
        model.load_state_dict(best["weights"])
    model.to("cpu").eval()
    return reports
