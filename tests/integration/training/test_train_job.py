"""Training from job specs: CSV and image-folder datasets, the CNN, and specs refused up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maas.errors import InvalidInputError
from maas.registry import Registry
from maas.training.datasets import load_digits
from maas.training.pipeline import train_job
from maas.training.spec import load_spec, parse_spec


def _digits_csv(path: Path) -> Path:
    digits = load_digits()
    x = np.concatenate([digits.x_train, digits.x_val])
    y = np.concatenate([digits.y_train, digits.y_val])
    header = ",".join([f"p{i}" for i in range(64)] + ["digit"])
    rows = [
        ",".join([*(f"{v:.4f}" for v in features), f"d{label}"])
        for features, label in zip(x, y, strict=True)
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_spec_trains_and_registers_with_an_evaluation_report(
    registry: Registry, tmp_path: Path
) -> None:
    _digits_csv(tmp_path / "digits.csv")
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(
        "model_name: csv-digits\n"
        "model: {name: mlp}\n"
        "dataset: {kind: csv, path: digits.csv, label_column: digit, test_fraction: 0.2}\n"
        "hyperparameters: {epochs: 25, optimizer: adamw, schedule: cosine, seed: 1}\n"
    )
    version = train_job(registry, load_spec(spec_file))
    assert version.model_name == "csv-digits"
    assert version.metrics["accuracy"] >= 0.93
    report = version.metrics["evaluation"]
    assert [c["class"] for c in report["per_class"]][:2] == ["d0", "d1"]
    assert report["roc_auc_macro"] > 0.95
    assert version.lineage["dataset"]["test_rows"] > 0


def test_cnn_on_an_image_folder(registry: Registry, tmp_path: Path) -> None:
    digits = load_digits()
    for index, (image, label) in enumerate(
        zip(digits.x_train[:600], digits.y_train[:600], strict=True)
    ):
        folder = tmp_path / "images" / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image.reshape(8, 8) * 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{index}.png")
    spec = parse_spec(
        {
            "model_name": "image-digits",
            "model": {"name": "cnn", "options": {"channels": [16, 32]}},
            "dataset": {"kind": "images", "path": str(tmp_path / "images"), "grayscale": True},
            "hyperparameters": {"epochs": 8, "batch_size": 32, "learning_rate": 0.003},
        }
    )
    version = train_job(registry, spec)
    assert version.signature.inputs[0].shape == (-1, 1, 8, 8)
    assert version.metrics["accuracy"] >= 0.85


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"dataset": {"kind": "csv", "path": "missing.csv", "label_column": "y"}}, "dataset.path"),
        ({"model": {"name": "transformer"}}, "model.name"),
        ({"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs"),
    ],
)
def test_bad_specs_are_refused_before_training_and_register_nothing(
    registry: Registry, document: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        train_job(registry, parse_spec(document))
    assert field in refused.value.message
    assert registry.list_models() == []
