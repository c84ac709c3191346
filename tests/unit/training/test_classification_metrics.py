from __future__ import annotations

import numpy as np
import pytest

from maas.training.evaluation import evaluate


def _one_hot(predictions: list[int], classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[predictions]


def test_hand_made_example() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    logits = _one_hot([0, 1, 1, 1, 2, 0], 3)
    metrics = evaluate(logits, y_true)
    # precision per class: 1/2, 2/3, 1; recall: 1/2, 1, 1/2; F1: 1/2, 4/5, 2/3
    assert metrics == pytest.approx(
        {
            "accuracy": 4 / 6,
            "precision_macro": (1 / 2 + 2 / 3 + 1) / 3,
            "recall_macro": (1 / 2 + 1 + 1 / 2) / 3,
            "f1_macro": (1 / 2 + 4 / 5 + 2 / 3) / 3,
        }
    )
    assert all(type(v) is float for v in metrics.values())


def test_class_never_predicted_counts_as_zero_without_warning() -> None:
    metrics = evaluate(_one_hot([0, 0], 2), np.array([0, 1]))
    assert metrics["accuracy"] == 0.5
    assert metrics["precision_macro"] == pytest.approx(0.25)
