from __future__ import annotations

import pytest
import torch

from maas.errors import InvalidInputError
from maas.training.datasets import Dataset
from maas.training.trainer import EpochReport, TrainConfig, train
from maas.training.zoo import build_mlp


def test_mlp_outputs_logits_per_class() -> None:
    model = build_mlp(64, 10, (32,))
    assert model(torch.zeros(5, 64)).shape == (5, 10)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 10)]


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    a, b = build_mlp(64, 10, seed=7), build_mlp(64, 10, seed=7)
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_default_config_learns_digits(
    training_run: tuple[torch.nn.Module, list[EpochReport], float],
) -> None:
    _, reports, seconds = training_run
    last = reports[-1]
    assert last.epoch == last.epochs == TrainConfig().epochs
    assert last.val_accuracy >= 0.95
    assert reports[0].train_loss > last.train_loss
    assert seconds < 30


def test_training_is_deterministic(digits: Dataset) -> None:
    def run() -> list[EpochReport]:
        config = TrainConfig(epochs=2, seed=5)
        return train(build_mlp(64, 10, seed=5), digits, config)

    first, second = run(), run()
    assert [r.train_loss for r in first] == [r.train_loss for r in second]
    assert [r.val_accuracy for r in first] == [r.val_accuracy for r in second]


def test_on_epoch_sees_every_epoch_in_order(digits: Dataset) -> None:
    seen: list[EpochReport] = []
    reports = train(build_mlp(64, 10, (16,), seed=0), digits, TrainConfig(epochs=3), seen.append)
    assert seen == reports
    assert [(r.epoch, r.epochs) for r in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(r.seconds >= 0 for r in seen)


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("batch_size", 0), ("learning_rate", 0.0), ("weight_decay", -1.0)],
)
def test_config_refuses_nonsense(field: str, value: float) -> None:
    with pytest.raises(InvalidInputError, match=field):
        TrainConfig(**{field: value})  # type: ignore[arg-type]  # parametrised field name
