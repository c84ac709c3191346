"""Distillation: a digits CNN teaches a small MLP through its ONNX artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from maas.errors import InvalidInputError
from maas.optimize.distill import check_student, distillation_loss, teacher_logits
from maas.training.datasets import Dataset, load_digits
from maas.training.export import export_onnx
from maas.training.trainer import TrainConfig, predict_logits, train
from maas.training.zoo import ClassifierHead, build_model, parameter_count

_STUDENT = {"hidden": [32]}


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="module")
def teacher(digits: Dataset) -> tuple[nn.Module, float]:
    """The digits CNN (channels 32, 64) after 8 epochs, and its validation accuracy."""
    model = build_model("cnn", (64,), 10, {"channels": [32, 64]}, seed=0)
    reports = train(model, digits, TrainConfig(epochs=8))
    return model, reports[-1].val_accuracy


@pytest.fixture(scope="module")
def teacher_onnx(
    teacher: tuple[nn.Module, float], digits: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("teacher") / "teacher.onnx"
    sample = torch.from_numpy(digits.x_val[:8].copy())
    export_onnx(ClassifierHead(teacher[0]), sample, path, output_names=("logits", "label"))
    return path


@pytest.fixture(scope="module")
def soft_targets(teacher_onnx: Path, digits: Dataset) -> np.ndarray:
    return teacher_logits(teacher_onnx, digits.x_train)


def _student(seed: int = 0, num_classes: int = 10) -> nn.Module:
    return build_model("mlp", (64,), num_classes, _STUDENT, seed=seed)


def _refused(field: str) -> pytest.RaisesExc[InvalidInputError]:
    return pytest.raises(InvalidInputError, match=rf"^{field}: ")


def test_teacher_logits_are_the_artifacts_logits_in_batches(
    teacher: tuple[nn.Module, float], teacher_onnx: Path, digits: Dataset, soft_targets: np.ndarray
) -> None:
    assert soft_targets.shape == (len(digits.x_train), 10)
    assert soft_targets.dtype == np.float32
    np.testing.assert_allclose(soft_targets, predict_logits(teacher[0], digits.x_train), atol=1e-4)
    seen: list[tuple[int, int]] = []
    batched = teacher_logits(
        teacher_onnx, digits.x_train, batch_size=500, on_batch=lambda *a: seen.append(a)
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    np.testing.assert_allclose(batched, soft_targets, atol=1e-5)


def test_distilled_student_keeps_most_of_the_teachers_accuracy(
    teacher: tuple[nn.Module, float], digits: Dataset, soft_targets: np.ndarray
) -> None:
    config = TrainConfig(epochs=30)
    plain = train(_student(), digits, config)[-1].val_accuracy
    objective = distillation_loss(soft_targets, temperature=2.0, alpha=0.5)
    student = _student()
    distilled = train(student, digits, config, loss=objective)[-1].val_accuracy
    figures = (
        f"teacher {teacher[1]:.4f} ({parameter_count(teacher[0])} parameters), student "
        f"{distilled:.4f} distilled / {plain:.4f} plain ({parameter_count(student)} parameters)"
    )
    assert distilled >= 0.9 * teacher[1], figures
    assert parameter_count(student) * 5 < parameter_count(teacher[0]), figures


def test_alpha_zero_trains_exactly_as_plain_cross_entropy(
    digits: Dataset, soft_targets: np.ndarray
) -> None:
    config = TrainConfig(epochs=2, seed=3)
    plain, distilled = _student(seed=3), _student(seed=3)
    train(plain, digits, config)
    train(distilled, digits, config, loss=distillation_loss(soft_targets, temperature=4, alpha=0))
    for name, weights in plain.state_dict().items():
        assert torch.equal(weights, distilled.state_dict()[name]), name


def test_the_loss_is_hintons_objective() -> None:
    generator = torch.Generator().manual_seed(0)
    teacher_rows = torch.randn(6, 4, generator=generator)
    logits = torch.randn(3, 4, generator=generator)
    labels, rows = torch.tensor([0, 3, 1]), torch.tensor([5, 0, 2])
    objective = distillation_loss(teacher_rows.numpy(), temperature=3.0, alpha=0.3)
    p = torch.softmax(teacher_rows[rows] / 3, dim=1)
    kl = (p * (p.log() - torch.log_softmax(logits / 3, dim=1))).sum(dim=1).mean()
    expected = 0.3 * 9 * kl + 0.7 * nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(objective(logits, labels, rows), expected)
    same = distillation_loss(logits.numpy(), temperature=2.0, alpha=1.0)
    assert float(same(logits, labels, torch.arange(3))) == pytest.approx(0.0, abs=1e-6)


def test_a_custom_loss_sees_each_training_row_once_per_epoch(digits: Dataset) -> None:
    """The trainer's ``loss`` hook: batch rows given, ``train_loss`` is the objective's."""
    seen: list[torch.Tensor] = []

    def shifted(logits: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        seen.append(rows)
        assert torch.equal(labels, torch.from_numpy(digits.y_train.copy())[rows])
        return nn.functional.cross_entropy(logits, labels) + 5.0  # same gradients as plain

    config = TrainConfig(epochs=2)
    plain, custom = _student(), _student()
    plain_reports = train(plain, digits, config)
    reports = train(custom, digits, config, loss=shifted)
    rows = len(digits.x_train)
    assert sorted(torch.cat(seen[: len(seen) // 2]).tolist()) == list(range(rows))
    assert reports[-1].train_loss == pytest.approx(plain_reports[-1].train_loss + 5.0)
    assert reports[-1].val_loss == pytest.approx(plain_reports[-1].val_loss)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_distillation_follows_the_student_onto_the_gpu(
    digits: Dataset, soft_targets: np.ndarray
) -> None:
    student = _student()
    objective = distillation_loss(soft_targets, temperature=2.0, alpha=0.5)
    reports = train(student, digits, TrainConfig(epochs=3, device="cuda"), loss=objective)
    assert reports[-1].val_accuracy > 0.5
    assert next(student.parameters()).device.type == "cpu"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"temperature": 0.0, "alpha": 0.5}, "temperature"),
        ({"temperature": float("nan"), "alpha": 0.5}, "temperature"),
        ({"temperature": 2.0, "alpha": 1.5}, "alpha"),
        ({"temperature": 2.0, "alpha": -0.1}, "alpha"),
    ],
)
def test_distillation_loss_refuses_bad_settings(arguments: dict[str, float], field: str) -> None:
    with _refused(field):
        distillation_loss(np.zeros((4, 10), np.float32), **arguments)


@pytest.mark.parametrize(
    "logits", [np.zeros(10, np.float32), np.zeros((0, 10), np.float32), np.full((2, 3), np.inf)]
)
def test_distillation_loss_refuses_teacher_logits_that_are_not_a_table(logits: np.ndarray) -> None:
    with _refused("teacher"):
        distillation_loss(logits, temperature=2.0, alpha=0.5)


def test_check_student_accepts_a_matching_student_and_keeps_its_mode(digits: Dataset) -> None:
    student = _student().train()
    check_student(student, torch.from_numpy(digits.x_val[:4].copy()), 10)
    assert student.training


def test_check_student_refuses_another_class_count(digits: Dataset) -> None:
    sample = torch.from_numpy(digits.x_val[:4].copy())
    with _refused("student") as caught:
        check_student(_student(num_classes=3), sample, 10)
    assert "the student answers 3 classes but the teacher 10" in caught.value.message
    assert caught.value.details == {"field": "student"}


@pytest.mark.parametrize(
    "student",
    [
        ClassifierHead(build_model("mlp", (64,), 10, _STUDENT, seed=0)),  # a tuple
        nn.Sequential(nn.Linear(64, 10), nn.Flatten(0)),  # 1-D
        nn.Linear(32, 10),  # cannot take 64 features
    ],
)
def test_check_student_refuses_a_student_without_2d_logits(
    student: nn.Module, digits: Dataset
) -> None:
    with _refused("student"):
        check_student(student, torch.from_numpy(digits.x_val[:4].copy()), 10)


def _scores_model(path: Path) -> Path:
    """An ONNX model answering one score per row: (N, 64) -> (N,)."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["input", "axes"], ["score"], keepdims=0)],
        "scores",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_teacher_logits_refuses_a_teacher_without_2d_logits(
    tmp_path: Path, digits: Dataset
) -> None:
    with _refused("teacher") as caught:
        teacher_logits(_scores_model(tmp_path / "scores.onnx"), digits.x_train)
    assert "'score' output has shape" in caught.value.message


def test_teacher_logits_refuses_rows_the_teacher_cannot_take(
    teacher_onnx: Path, digits: Dataset
) -> None:
    images = digits.x_train[:4].reshape(4, 1, 8, 8)
    with _refused("teacher"):
        teacher_logits(teacher_onnx, images)
    with _refused("teacher"):
        teacher_logits(teacher_onnx, digits.x_train[:4, :32])
    with _refused("dataset"):
        teacher_logits(teacher_onnx, digits.x_train[:0])
    with _refused("batch_size"):
        teacher_logits(teacher_onnx, digits.x_train, batch_size=0)


def test_teacher_logits_refuses_a_broken_artifact_without_naming_its_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a model")
    with _refused("teacher") as caught:
        teacher_logits(path, np.zeros((2, 64), np.float32))
    assert str(tmp_path) not in caught.value.message
