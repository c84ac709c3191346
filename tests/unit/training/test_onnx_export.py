from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from maas.errors import MaasError
from maas.protocol.signature import Signature, TensorSpec
from maas.training.datasets import Dataset
from maas.training.export import export_onnx, verify_onnx
from maas.training.signature import onnx_signature
from maas.training.zoo import build_mlp


@pytest.fixture(scope="module")
def exported(
    trained_model: torch.nn.Module, digits: Dataset, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("export") / "digits.onnx"
    export_onnx(trained_model, torch.from_numpy(digits.x_val[:7].copy()), path)
    return path


@pytest.mark.parametrize("rows", [1, 7])
def test_round_trip_matches_torch(
    trained_model: torch.nn.Module, digits: Dataset, exported: Path, rows: int
) -> None:
    sample = torch.from_numpy(digits.x_val[-rows:].copy())
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    (actual,) = session.run(["logits"], {"input": sample.numpy()})
    with torch.no_grad():
        expected = trained_model(sample).numpy()
    assert actual.shape == (rows, 10)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    assert verify_onnx(trained_model, sample, exported) <= 1e-5


def test_export_from_a_single_row_sample_keeps_batch_dynamic(tmp_path: Path) -> None:
    model = build_mlp(64, 10, (8,), seed=0)
    path = tmp_path / "one.onnx"
    export_onnx(model, torch.rand(1, 64), path)
    verify_onnx(model, torch.rand(5, 64), path)
    assert onnx_signature(path).inputs[0].shape == (-1, 64)


def test_export_is_one_self_contained_file(exported: Path) -> None:
    assert [p.name for p in exported.parent.iterdir()] == ["digits.onnx"]


def test_verification_catches_a_model_that_computes_something_else(exported: Path) -> None:
    other = build_mlp(64, 10, seed=123)
    with pytest.raises(MaasError, match="max abs difference") as caught:
        verify_onnx(other, torch.rand(4, 64), exported)
    assert caught.value.details["max_abs_diff"] > 1e-5


def test_signature_is_read_from_the_graph(exported: Path) -> None:
    assert onnx_signature(exported) == Signature(
        inputs=(TensorSpec("input", "FP32", (-1, 64)),),
        outputs=(TensorSpec("logits", "FP32", (-1, 10)),),
    )


def test_custom_tensor_names(tmp_path: Path) -> None:
    path = tmp_path / "named.onnx"
    export_onnx(build_mlp(4, 3, (5,)), torch.rand(3, 4), path, input_name="x", output_names=("y",))
    signature = onnx_signature(path)
    assert [t.name for t in signature.inputs] == ["x"]
    assert [t.name for t in signature.outputs] == ["y"]
