"""One trained digits MLP shared by the training unit tests (training takes seconds)."""

from __future__ import annotations

import time

import pytest
from torch import nn

from maas.training.datasets import Dataset, load_digits
from maas.training.trainer import EpochReport, TrainConfig, train
from maas.training.zoo import build_mlp


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="session")
def training_run(digits: Dataset) -> tuple[nn.Module, list[EpochReport], float]:
    """The default config, trained once: the learning check and the export tests share it."""
    config = TrainConfig()
    model = build_mlp(digits.num_features, digits.num_classes, config.hidden, seed=config.seed)
    started = time.monotonic()
    reports = train(model, digits, config)
    return model, reports, time.monotonic() - started


@pytest.fixture(scope="session")
def trained_model(training_run: tuple[nn.Module, list[EpochReport], float]) -> nn.Module:
    return training_run[0]
