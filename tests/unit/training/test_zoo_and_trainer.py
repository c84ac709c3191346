"""The model zoo's builders and the trainer's optimisers, schedules, early stopping and resume."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from maas.errors import InvalidInputError
from maas.training.datasets import Dataset
from maas.training.trainer import EpochReport, TrainConfig, train
from maas.training.zoo import build_model, parameter_count

_FACTORY = "tests.unit.training.test_zoo_and_trainer"


def make_model(*, input_shape: tuple[int, ...], num_classes: int, width: int = 8) -> nn.Module:
    """A user factory, loaded by the zoo through ``package.module:factory``."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(np.prod(input_shape)), width),
        nn.ReLU(),
        nn.Linear(width, num_classes),
    )


def not_a_model(*, input_shape: tuple[int, ...], num_classes: int) -> str:
    return "no"


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
@pytest.mark.parametrize("shape", [(64,), (3, 32, 32)])
def test_builtin_models_output_logits(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, shape, 7, seed=0).eval()
    assert model(torch.zeros(2, *shape)).shape == (2, 7)
    assert parameter_count(model) > 0


def test_seeded_build_is_reproducible() -> None:
    a, b = (
        build_model("resnet", (3, 16, 16), 4, seed=3),
        build_model("resnet", (3, 16, 16), 4, seed=3),
    )
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_options_shape_the_model() -> None:
    mlp = build_model("mlp", (64,), 10, {"hidden": [5]})
    assert parameter_count(mlp) == 64 * 5 + 5 + 5 * 10 + 10
    cnn = build_model("cnn", (1, 8, 8), 10, {"channels": [4]})
    assert [m.out_channels for m in cnn.modules() if isinstance(m, nn.Conv2d)] == [4]


def test_custom_factory_gets_shape_classes_and_options() -> None:
    model = build_model(f"{_FACTORY}:make_model", (64,), 10, {"width": 3}, seed=1)
    assert model(torch.zeros(2, 64)).shape == (2, 10)
    assert parameter_count(model) == 64 * 3 + 3 + 3 * 10 + 10


@pytest.mark.parametrize(
    "name",
    [
        "nope",
        f"{_FACTORY}:not_a_model",
        f"{_FACTORY}:missing",
        "no_such_pkg.mod:f",
        f"{_FACTORY}:_FACTORY",
    ],
)
def test_bad_model_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^model\.name: ") as caught:
        build_model(name, (64,), 10)
    assert caught.value.details["field"] == "model.name"


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(
        InvalidInputError, match=re.escape("choose mlp, cnn, resnet or package.module:factory")
    ):
        build_model("x", (64,), 10)


@pytest.mark.parametrize(
    ("name", "shape", "options", "field"),
    [
        ("cnn", (10,), {}, "model.input_shape"),
        ("resnet", (3, 4, 4), {}, "model.input_shape"),
        ("mlp", (64,), {"depth": 3}, "model.options"),
        ("cnn", (64,), {"channels": [0]}, "model.options.channels"),
    ],
)
def test_bad_shapes_and_options_are_refused(
    name: str, shape: tuple[int, ...], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError, match=rf"^{field}"):
        build_model(name, shape, 10, options)


def test_cnn_learns_digits(digits: Dataset) -> None:
    """A real learning check: the 64 features are read as 1x8x8 images."""
    model = build_model("cnn", (64,), digits.num_classes, {"channels": [16, 32]}, seed=0)
    reports = train(model, digits, TrainConfig(epochs=5, batch_size=32, learning_rate=3e-3))
    assert reports[-1].val_accuracy >= 0.95


def _mlp(seed: int = 0) -> nn.Module:
    return build_model("mlp", (64,), 10, {"hidden": [32]}, seed=seed)


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(epochs=4, optimizer="sgd", learning_rate=0.05, schedule="step", step_size=2),
        TrainConfig(epochs=4, optimizer="adamw", weight_decay=0.01, schedule="cosine"),
    ],
)
def test_optimisers_and_schedules_reduce_the_loss(digits: Dataset, config: TrainConfig) -> None:
    reports = train(_mlp(), digits, config)
    assert reports[-1].train_loss < reports[0].train_loss
    assert reports[-1].val_loss < reports[0].val_loss


def test_early_stopping_stops_on_a_plateau_and_restores_best_weights(digits: Dataset) -> None:
    config = TrainConfig(
        epochs=30,
        learning_rate=1e-9,
        early_stopping_metric="val_accuracy",
        early_stopping_patience=2,
    )
    weights: dict[int, dict[str, torch.Tensor]] = {}
    model = _mlp()
    reports = train(
        model, digits, config, checkpoint=lambda e, s: weights.__setitem__(e, s["model"])
    )
    assert len(reports) < config.epochs
    best = max(reports, key=lambda r: r.val_accuracy).epoch
    assert len(reports) == best + config.early_stopping_patience
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[best][key])


def test_early_stopping_on_val_loss_keeps_improving_when_learning(digits: Dataset) -> None:
    config = TrainConfig(epochs=3, early_stopping_metric="val_loss", early_stopping_patience=1)
    assert len(train(_mlp(), digits, config)) == 3


def _run_with_checkpoints(
    digits: Dataset, config: TrainConfig
) -> tuple[nn.Module, list[EpochReport], dict[int, dict[str, Any]]]:
    states: dict[int, dict[str, Any]] = {}
    model = _mlp()
    reports = train(model, digits, config, checkpoint=states.__setitem__)
    return model, reports, states


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(epochs=4, seed=3, optimizer="sgd", schedule="step", step_size=1, gamma=0.5),
        TrainConfig(epochs=4, seed=3, schedule="cosine", early_stopping_metric="val_loss"),
    ],
)
def test_resume_from_a_checkpoint_matches_an_uninterrupted_run(
    digits: Dataset, config: TrainConfig
) -> None:
    full, full_reports, states = _run_with_checkpoints(digits, config)
    assert sorted(states) == [1, 2, 3, 4]
    assert [r["epoch"] for r in states[2]["history"]] == [1, 2]
    resumed = _mlp(seed=99)  # the checkpoint, not the fresh weights, must decide
    seen: list[EpochReport] = []
    reports = train(resumed, digits, config, seen.append, resume_from=states[2])
    assert [r.epoch for r in seen] == [3, 4]
    assert [r.val_loss for r in reports] == [r.val_loss for r in full_reports]
    for (key, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), key


def _images(rows: int = 64) -> Dataset:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    x = rng.normal(size=(rows, 3, 8, 8)).astype(np.float32) + y[:, None, None, None].astype(
        np.float32
    )
    return Dataset("images", x[:48], y[:48], x[48:], y[48:], 2, "0" * 64)


def test_image_tensors_train_with_augmentation_deterministically() -> None:
    config = TrainConfig(epochs=2, batch_size=16, augment_flip=True, augment_crop=2, seed=1)

    def run() -> list[float]:
        model = build_model("cnn", (3, 8, 8), 2, {"channels": [4]}, seed=0)
        return [r.train_loss for r in train(model, _images(), config)]

    assert run() == run()
    plain = build_model("cnn", (3, 8, 8), 2, {"channels": [4]}, seed=0)
    assert [r.train_loss for r in train(plain, _images(), replace(config, augment_crop=0))] != run()


def test_training_leaves_the_callers_rng_alone(digits: Dataset) -> None:
    state = torch.random.get_rng_state()
    train(_mlp(), digits, TrainConfig(epochs=1))
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("optimizer", "rmsprop"),
        ("schedule", "linear"),
        ("early_stopping_metric", "loss"),
        ("device", "tpu"),
        ("momentum", 1.0),
        ("step_size", 0),
        ("gamma", 0.0),
        ("early_stopping_patience", 0),
        ("augment_crop", -1),
    ],
)
def test_new_config_fields_are_validated_by_name(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=rf"^{field} ") as caught:
        TrainConfig(**{field: value})  # type: ignore[arg-type]  # parametrised field name
    assert caught.value.details["field"] == field
