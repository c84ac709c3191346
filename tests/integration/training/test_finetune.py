"""Every trained version keeps a TorchScript copy beside its ONNX; ``init_from`` starts from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from maas.control.uploads import register_upload
from maas.errors import InvalidInputError
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.training.datasets import load_digits
from maas.training.export import load_torchscript
from maas.training.pipeline import train_job
from maas.training.spec import parse_spec


def _spec(name: str, epochs: int, learning_rate: float = 1e-3, **extra: Any) -> Any:
    return parse_spec(
        {
            "model_name": name,
            "model": {"name": "mlp", "options": extra.pop("options", {"hidden": [64]})},
            "dataset": {"kind": "digits"},
            "hyperparameters": {"epochs": epochs, "learning_rate": learning_rate},
            **extra,
        }
    )


def test_a_trained_version_stores_torchscript_that_matches_its_onnx(registry: Registry) -> None:
    version = train_job(registry, _spec("digits", epochs=2))
    assert set(version.artifacts) == {"onnx", "torchscript"}
    assert version.artifacts["onnx"]["sha256"] == version.artifact_sha256
    assert version.artifact_format == "onnx"  # the served artifact is still the ONNX one

    x = load_digits().x_val
    session = ort.InferenceSession(
        str(registry.artifact_path(version)), providers=["CPUExecutionProvider"]
    )
    onnx_logits, onnx_label = session.run(["logits", "label"], {"input": x})
    scripted = load_torchscript(registry.artifact_path(version, "torchscript"))
    with torch.no_grad():
        logits, label = scripted(torch.from_numpy(np.array(x)))
    np.testing.assert_allclose(logits.numpy(), onnx_logits, atol=1e-5)
    np.testing.assert_array_equal(label.numpy(), onnx_label)


def test_init_from_starts_from_the_parents_weights(registry: Registry) -> None:
    parent = train_job(registry, _spec("digits", epochs=10))
    assert parent.metrics["accuracy"] >= 0.9

    tuned = train_job(registry, _spec("digits", epochs=1, learning_rate=1e-4, init_from="digits:1"))
    scratch = train_job(registry, _spec("scratch", epochs=1, learning_rate=1e-4))

    assert tuned.version == 2
    assert tuned.lineage["parent"] == {
        "model": "digits",
        "version": 1,
        "artifact_format": "torchscript",
        "artifact_sha256": parent.artifacts["torchscript"]["sha256"],
    }
    assert tuned.lineage["spec"]["init_from"] == "digits:1"
    # One epoch at a tiny learning rate: only carried weights explain v1's accuracy.
    assert tuned.metrics["accuracy"] >= parent.metrics["accuracy"] - 0.02
    assert scratch.metrics["accuracy"] < 0.6
    assert "parent" not in scratch.lineage


def test_init_from_an_uploaded_onnx_version_is_refused(registry: Registry, tmp_path: Path) -> None:
    linear = write_linear_model(tmp_path / "linear.onnx", in_features=64, out_features=10)
    register_upload(registry, "uploaded", linear, actor="test")
    with pytest.raises(InvalidInputError, match="no TorchScript artifact") as refused:
        train_job(registry, _spec("digits", epochs=1, init_from="uploaded:1"))
    assert refused.value.message.startswith("init_from: ")
    assert refused.value.details["field"] == "init_from"
    assert [m.name for m in registry.list_models()] == ["uploaded"]


@pytest.mark.parametrize(
    "options",
    [{"hidden": [32]}, {"hidden": [64, 64]}],
    ids=["other-width", "other-depth"],
)
def test_init_from_weights_that_do_not_fit_is_refused(
    registry: Registry, options: dict[str, Any]
) -> None:
    train_job(registry, _spec("digits", epochs=1))
    with pytest.raises(InvalidInputError, match="do not fit this model") as refused:
        train_job(registry, _spec("digits", epochs=1, init_from="digits:1", options=options))
    assert refused.value.details["field"] == "init_from"
    assert [v.version for v in registry.list_versions("digits")] == [1]


def test_init_from_a_missing_version_names_the_field(registry: Registry) -> None:
    with pytest.raises(InvalidInputError, match="init_from: model 'nothing' not found"):
        train_job(registry, _spec("digits", epochs=1, init_from="nothing:1"))
    assert registry.list_models() == []
