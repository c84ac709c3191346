from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from maas.errors import InvalidArtifactError
from maas.protocol.signature import Signature, TensorSpec
from maas.runtimes.base import LoadOptions
from maas.runtimes.discovery import load_runtime, runtime_class
from maas.runtimes.torchscript import TorchScriptRuntime

SIGNATURE = Signature(
    (TensorSpec("features", "FP32", (-1, 4)), TensorSpec("scale", "FP64", (-1, 1))),
    (TensorSpec("logits", "FP32", (-1, 3)), TensorSpec("label", "INT64", (-1,))),
)


class TwoHeads(nn.Module):
    """Two inputs, a tuple of two outputs of different dtypes."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 3)

    def forward(
        self, features: torch.Tensor, scale: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.linear(features) * scale.float()
        return logits, logits.argmax(dim=1)


@pytest.fixture
def module() -> TwoHeads:
    return TwoHeads().eval()


@pytest.fixture
def scripted_path(tmp_path: Path, module: TwoHeads) -> Path:
    path = tmp_path / "model.pt"
    with warnings.catch_warnings():
        # torch 2.9+ deprecates torch.jit.script/save for torch.export; we test archives
        # users already hold, so the deprecation is not this test's concern.
        warnings.filterwarnings("ignore", r"`torch\.jit\.(script|save)`", DeprecationWarning)
        torch.jit.save(torch.jit.script(module), str(path))
    return path


def test_predict_equals_the_module(scripted_path: Path, module: TwoHeads) -> None:
    runtime = TorchScriptRuntime.load(scripted_path, LoadOptions(signature=SIGNATURE))
    features = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    scale = np.full((5, 1), 2.0)
    features.flags.writeable = False  # decoded request buffers are read-only
    outputs = runtime.predict({"features": features, "scale": scale})
    with torch.inference_mode():
        logits, label = module(torch.from_numpy(features.copy()), torch.from_numpy(scale))
    np.testing.assert_allclose(outputs["logits"], logits.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(outputs["label"], label.numpy())
    assert outputs["logits"].dtype == np.float32
    assert outputs["label"].dtype == np.int64
    assert runtime.signature == SIGNATURE
    assert runtime.batchable


def test_found_by_format_and_threads_honoured(scripted_path: Path) -> None:
    assert runtime_class("torchscript") is TorchScriptRuntime
    options = LoadOptions(intra_op_threads=1, signature=SIGNATURE)
    runtime = load_runtime("torchscript", scripted_path, options)
    outputs = runtime.predict({"features": np.ones((2, 4), np.float32), "scale": np.ones((2, 1))})
    assert outputs["logits"].shape == (2, 3)


def test_runs_in_worker_processes() -> None:
    assert TorchScriptRuntime.releases_gil is False
    assert TorchScriptRuntime.platform == "pytorch_libtorch"


def test_a_missing_signature_is_refused(scripted_path: Path) -> None:
    with pytest.raises(InvalidArtifactError, match="need a signature"):
        TorchScriptRuntime.load(scripted_path)


def test_a_bytes_signature_is_refused(scripted_path: Path) -> None:
    signature = Signature((TensorSpec("text", "BYTES", (-1,)),), SIGNATURE.outputs)
    with pytest.raises(InvalidArtifactError, match="BYTES"):
        TorchScriptRuntime.load(scripted_path, LoadOptions(signature=signature))


def test_a_renamed_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"weights": [1.0]}, protocol=2))
    with pytest.raises(InvalidArtifactError, match="pickle"):
        TorchScriptRuntime.load(path, LoadOptions(signature=SIGNATURE))


def test_a_torch_save_zip_is_refused(tmp_path: Path, module: TwoHeads) -> None:
    path = tmp_path / "model.pt"
    torch.save(module.state_dict(), path)  # a zip of pickles, not TorchScript
    with pytest.raises(InvalidArtifactError, match="not a TorchScript archive"):
        TorchScriptRuntime.load(path, LoadOptions(signature=SIGNATURE))


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a model at all")
    with pytest.raises(InvalidArtifactError, match="not a TorchScript archive"):
        TorchScriptRuntime.load(path, LoadOptions(signature=SIGNATURE))


def test_a_wrong_output_count_is_an_error(scripted_path: Path) -> None:
    signature = Signature(SIGNATURE.inputs, SIGNATURE.outputs[:1])
    runtime = TorchScriptRuntime.load(scripted_path, LoadOptions(signature=signature))
    with pytest.raises(Exception, match="returned 2 outputs"):
        runtime.predict({"features": np.ones((1, 4), np.float32), "scale": np.ones((1, 1))})
